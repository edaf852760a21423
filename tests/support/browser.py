"""Headless Chromium (the system's, never a downloaded one) driven by Playwright, against live_server."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def playwright(monkeypatch):
    """Playwright per test: its sync API keeps an event loop running in this thread while it is
    started, which makes Django refuse ORM calls here, so it must not outlive the test."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium).")
    monkeypatch.setenv("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    # The test thread itself does no async work; Django only sees Playwright's loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        yield p
        # Database connections opened while Playwright runs are not the ones pytest-django closes;
        # left open they would keep the test database from being dropped.
        connections.close_all()


def launch(playwright, profile: Path, timeout_ms: int = 15_000):
    """The system Chromium, headless, with a fresh profile in `profile`, 1280 px wide."""
    context = playwright.chromium.launch_persistent_context(
        user_data_dir=str(profile),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(timeout_ms)
    return context


@pytest.fixture
def browser_context(playwright, tmp_path, live_server):
    """A fresh profile per test, and no request may leave the live server: the page must work offline."""
    context = launch(playwright, tmp_path / "chromium-profile")
    context.requests = []  # every URL the pages asked for, in order
    context.on("request", lambda request: context.requests.append(request.url))
    origin = live_server.url

    def only_live_server(route):
        if route.request.url.startswith(origin):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    context.route("**/*", only_live_server)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    # A script error on any page the test visited is a failure even if the checks passed.
    assert page.errors == []


@pytest.fixture
def site_user(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


@pytest.fixture
def btc_1h(transactional_db, data_dir):
    """BTCUSDT with every hourly candle of the real Binance file (about 45,000; a few seconds)."""
    from forecasting.services.market_data import asset_track, candles_import_file

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    result = candles_import_file(asset=asset, path=data_dir / "BTCUSDT-1h.csv")
    assert result.created > 40_000
    return asset


@pytest.fixture
def sign_in(page, live_server, site_user):
    """Signs the page in through the sign-in form, as a person would."""

    def sign_in() -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", site_user.username)
        page.fill("#id_password", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{live_server.url}/portfolios/")

    return sign_in
