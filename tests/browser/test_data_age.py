"""Every page with prices says how old the newest candle is, in headless Chromium: a clear warning
while the candles are years old (as with the offline data), and a plain line once a fresh one is
stored."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portfolio import services
from tests.factories import NEWEST, AssetFactory, candles

pytestmark = pytest.mark.browser

HOUR = timedelta(hours=1)


@pytest.fixture
def held(transactional_db, site_user):
    """BTCUSDT with two days of candles ending in 2022, held in one portfolio."""
    btc = AssetFactory(symbol="BTCUSDT")
    candles(btc, [Decimal(20000 + 10 * i) for i in range(48)])
    portfolio = services.portfolio_create(owner=site_user, name="Main")
    services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("0.5"),
        unit_price=Decimal("20000"),
        executed_at=NEWEST - 30 * HOUR,
    )
    return {"asset": btc, "portfolio": portfolio}


def pages(held) -> dict[str, str]:
    return {
        "asset list": "/assets/",
        "asset page": "/assets/BTCUSDT/",
        "dashboard": "/portfolios/",
        "portfolio page": f"/portfolios/{held['portfolio'].pk}/",
    }


def test_every_page_with_prices_warns_about_old_ones_and_dates_fresh_ones(page, live_server, sign_in, held):
    sign_in()
    age = page.locator("#data-age")
    for name, path in pages(held).items():
        page.goto(f"{live_server.url}{path}")
        # Shown (not only in the markup), announced, and naming the candle and its age in years.
        expect(age, name).to_be_visible()
        expect(age, name).to_have_attribute("role", "alert")
        expect(age, name).to_have_class("data-age warning")
        text = " ".join(age.inner_text().split())
        assert text.startswith("Old prices. Newest candle"), (name, text)
        assert f"{NEWEST:%Y-%m-%d %H:%M} UTC, closed 4 years" in text, (name, text)
        assert "describe that time, not now" in text, (name, text)

    # A candle from the last hour arrives: every page still dates its prices, without the warning.
    fresh = timezone.now().replace(minute=0, second=0, microsecond=0) - HOUR
    candles(held["asset"], [Decimal("21000")], newest=fresh)
    for name, path in pages(held).items():
        page.goto(f"{live_server.url}{path}")
        expect(age, name).to_be_visible()
        expect(age, name).not_to_have_attribute("role", "alert")
        text = " ".join(age.inner_text().split())
        assert "Old prices." not in text, (name, text)
        assert f"{fresh:%Y-%m-%d %H:%M} UTC, closed" in text and "minute" in text, (name, text)
        assert "year" not in text, (name, text)
