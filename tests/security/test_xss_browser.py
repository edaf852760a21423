"""Stored script injection, seen in headless Chromium: payloads in a portfolio name, a transaction
note, a token name and an asset's symbol (as a bad market-data row could bring) must show as text
on every page that shows them, and run nothing: no dialog, no `window.__xss`. The chart data
embedded with json_script must carry the hostile symbol intact without ending its <script>."""

from __future__ import annotations

from decimal import Decimal

import pytest

from forecasting.models import Asset
from portfolio import services
from tests.reliability import record
from tests.support.world import PASSWORD, T0, make_candles

NAME = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
NOTE = '"><svg onload=window.__xss=3><script>alert("note")</script>'
TOKEN = "<img src=x onerror=alert(document.domain)>'\"><b>"
SYMBOL = "<svg onload=alert()>"  # the column's 20 characters, and no "/" so that it fits in the asset URL


@pytest.fixture
def hostile(world):
    w = world
    w.portfolio.name = NAME
    w.portfolio.save(update_fields=["name"])
    w.buy.note = NOTE
    w.buy.save(update_fields=["note"])
    w.owner_token.name = TOKEN
    w.owner_token.save(update_fields=["name"])
    asset = Asset.objects.create(symbol=SYMBOL, base_asset="<b>X</b>", quote_asset="USDT", interval="1h", tracked=True)
    make_candles(asset, 48)
    services.transaction_create(
        portfolio=w.portfolio, asset=asset, kind="buy", quantity=Decimal("2"), unit_price=Decimal("10"), executed_at=T0
    )
    return w


@pytest.mark.browser
def test_stored_payloads_show_as_text_and_run_nothing(hostile, page, live_server):  # noqa: F811
    w = hostile
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/")

    p = w.portfolio.id
    pages = {
        "/portfolios/": [NAME],
        f"/portfolios/{p}/": [NAME, NOTE, SYMBOL],
        f"/portfolios/{p}/edit/": [NAME],
        f"/portfolios/{p}/delete/": [NAME],
        f"/portfolios/{p}/transactions/{w.buy.id}/delete/": [NAME],
        f"/portfolios/{p}/import/": [NAME],
        "/accounts/api-tokens/": [TOKEN],
        f"/accounts/api-tokens/{w.owner_token.id}/revoke/": [TOKEN],
        "/assets/": [SYMBOL],
    }
    for path, texts in pages.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        shown = page.inner_text("body")
        for text in texts:
            assert text in shown, (path, text)
        assert page.evaluate("typeof window.__xss") == "undefined", path
    # The note is in the edit form's textarea, as its value.
    page.goto(f"{live_server.url}/portfolios/{p}/transactions/{w.buy.id}/edit/")
    assert page.input_value("textarea[name=note]") == NOTE

    # The portfolio page's chart data: parsed back exactly, and the charts drew.
    page.goto(f"{live_server.url}/portfolios/{p}/")
    labels = page.evaluate(
        "JSON.parse(document.getElementById('portfolio-charts').textContent).allocation.map(a => a.label)"
    )
    assert sorted(labels) == sorted([SYMBOL, "BTCUSDT"])
    assert page.evaluate("document.querySelectorAll('script#portfolio-charts').length") == 1
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert dialogs == []
    record(
        "security",
        "stored script payloads in headless Chromium",
        pages=len(pages) + 2,
        payloads=4,
        dialogs=len(dialogs),
        scripts_run=0,
    )
