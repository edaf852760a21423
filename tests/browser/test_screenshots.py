"""Every page at 1280 and 375 px in headless Chromium: nothing wider than the screen (a table
scrolls inside its box, the page itself never sideways), no script error, and a screenshot of
each in var/screenshots/<width>/ (or MUR_SCREENSHOT_DIR) for a person to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.browser import PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = (1280, 375)
ROWS = 3000


@pytest.fixture
def world(transactional_db, data_dir, tmp_path, site_user, no_broker):
    """Two assets with recent candles and their first forecasts, the sample portfolio, and the
    person signed in as staff so admin pages are shown too. ETHUSDT also has a first training
    (a few epochs, as the README's first minutes run it), so the model's pages have something to
    show: its verdict, metrics and backtest, and the admin lists of versions and runs."""
    from forecasting.models import TrainingRun
    from forecasting.services.first_forecast import FIRST_TRAINING, asset_forecasting_start
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_import_file
    from forecasting.services.training_runs import train_config, training_run_execute
    from portfolio.demo import sample_portfolio_create

    assets = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        lines = (data_dir / f"{symbol}-1h.csv").read_text().splitlines()
        path = tmp_path / f"{symbol}-1h.csv"
        path.write_text("\n".join([lines[0], *lines[-ROWS:]]) + "\n")
        asset = asset_track(symbol=symbol, interval="1h", base_asset=symbol[:-4], quote_asset="USDT")
        candles_import_file(asset=asset, path=path)
        asset_forecasting_start(asset=asset)
        assets[symbol] = asset
    eth = assets["ETHUSDT"]
    run = TrainingRun.objects.create(asset=eth, triggered_by=FIRST_TRAINING)
    version = training_run_execute(run_id=run.id, config=train_config(eth, max_epochs=3))
    assert version is not None, TrainingRun.objects.get(id=run.id).error
    forecast_make(asset=eth)  # what the forecast task sent after the training does
    site_user.is_staff = site_user.is_superuser = True
    site_user.save(update_fields=["is_staff", "is_superuser"])
    portfolio = sample_portfolio_create(owner=site_user, symbols=["BTCUSDT", "ETHUSDT"])
    return {"portfolio": portfolio, "version": version, "run": run}


def pages(world) -> dict[str, str]:
    pk = world["portfolio"].pk
    return {
        "portfolios": "/portfolios/",
        "portfolio": f"/portfolios/{pk}/",
        "add-transaction": f"/portfolios/{pk}/transactions/add/",
        "import": f"/portfolios/{pk}/import/",
        "assets": "/assets/",
        "asset": "/assets/BTCUSDT/",
        "asset-all": "/assets/BTCUSDT/?range=all",
        "asset-model": "/assets/ETHUSDT/",
        "tokens": "/accounts/api-tokens/",
        "password": "/accounts/password/change/",
        "api-docs": "/api/docs/",
        "admin": "/admin/",
        "admin-versions": "/admin/forecasting/modelversion/",
        "admin-runs": "/admin/forecasting/trainingrun/",
        "admin-assets": "/admin/forecasting/asset/",
        "admin-version": f"/admin/forecasting/modelversion/{world['version'].pk}/change/",
        "admin-run": f"/admin/forecasting/trainingrun/{world['run'].pk}/change/",
        "not-found": "/portfolios/999999/",
    }


def test_every_page_fits_1280_and_375_px(world, page, live_server, site_user):
    out = Path(os.environ.get("MUR_SCREENSHOT_DIR") or ROOT / "var" / "screenshots")
    page.goto(f"{live_server.url}/")
    page.screenshot(path=str(out / "1280" / "landing.png"), full_page=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", site_user.username)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/")
    too_wide = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages(world).items():
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == (404 if name == "not-found" else 200), (name, response.status)
            page.wait_for_load_state("load")
            # Every chart drawn before the picture, not only the first.
            expect(page.locator("canvas[data-painted='true']")).to_have_count(page.locator("canvas").count())
            if name == "api-docs":  # Swagger UI draws its operations after loading the schema
                page.locator(".opblock").first.wait_for()
            page.screenshot(path=str(out / str(width) / f"{name}.png"), full_page=True)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            if overflow > 0:
                too_wide.append((width, name, overflow))
    assert too_wide == [], f"pages wider than the screen (px): {too_wide}"
