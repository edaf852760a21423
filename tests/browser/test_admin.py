"""Staff admin in headless Chromium at 1280 px: roll back and retire stop at a confirmation page
that says what serves next, and the model-version and training-run pages fit the screen."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from forecasting.models import Asset, ModelVersion, TrainingRun
from tests.forecasting.test_admin_training import BASELINES, make_version
from tests.support.browser import PASSWORD

pytestmark = pytest.mark.browser

WIDTH = 1280

# The table's box (Django wraps it in a box that scrolls sideways), every cell of its header row
# and first body row with its right edge, and how wide the page is against the window.
LAYOUT_PROBE = """table => {
  const box = table.closest(".results") || table.parentElement;
  const cells = sel => Array.from(table.querySelectorAll(sel)).map(c => ({
    text: c.innerText.trim(), right: c.getBoundingClientRect().right,
  }));
  return {
    heads: cells("thead th"),
    first: cells("tbody tr:first-child td, tbody tr:first-child th"),
    box: {right: box.getBoundingClientRect().right, scrollWidth: box.scrollWidth, clientWidth: box.clientWidth},
    pageWidth: document.documentElement.scrollWidth,
    window: window.innerWidth,
  };
}"""


@pytest.fixture
def staff(transactional_db, django_user_model):
    return django_user_model.objects.create_superuser(username="root", password=PASSWORD, email="root@example.com")


@pytest.fixture
def admin_page(page, live_server, staff):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


@pytest.fixture
def no_broker():
    # Roll-back and retire send a forecast task on commit; there is no worker here.
    with mock.patch("forecasting.tasks.forecast_task.delay"):
        yield


def choose_action(page, url: str, ids: list[int], action: str) -> None:
    page.goto(url)
    for pk in ids:
        page.check(f"input.action-select[value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def assert_fits(page, selector: str) -> dict:
    """Nothing in the table reaches past the window: no column hides behind a horizontal scroll."""
    layout = page.locator(selector).evaluate(LAYOUT_PROBE)
    assert layout["window"] == WIDTH
    assert layout["pageWidth"] <= WIDTH, layout
    # A column past the box's edge is cut off until one scrolls the table sideways.
    assert layout["box"]["scrollWidth"] <= layout["box"]["clientWidth"], layout
    for cell in layout["heads"] + layout["first"]:
        assert cell["right"] <= layout["box"]["right"] + 0.5, cell
    return layout


def test_rolling_back_the_only_model_asks_first_and_says_the_baseline_serves(
    admin_page, live_server, no_broker, tmp_path
):
    page = admin_page
    btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    only = make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=2)
    assets_url = f"{live_server.url}/admin/forecasting/asset/"

    choose_action(page, assets_url, [btc.id], "rollback_champion")
    page.locator("#champion-change").wait_for()
    page.screenshot(path=str(tmp_path / "rollback-confirmation.png"), full_page=True)
    text = " ".join(page.locator("#handovers").inner_text().split())
    assert text == (
        "BTCUSDT: v1 stops serving; no earlier version can serve, so the statistical baseline band serves "
        "until a model is promoted."
    )
    # Asking changed nothing; "No" goes back with nothing changed either.
    assert ModelVersion.objects.get(id=only.id).status == ModelVersion.Status.CHAMPION
    page.click("text=No, take me back")
    page.wait_for_url(assets_url)
    assert ModelVersion.objects.get(id=only.id).status == ModelVersion.Status.CHAMPION

    choose_action(page, assets_url, [btc.id], "rollback_champion")
    page.click("input[value='Yes, roll back']")
    page.wait_for_url(assets_url)
    assert page.locator("ul.messagelist li.success").inner_text() == (
        "Rolled back BTCUSDT: v1 retired, the statistical baseline band serves."
    )
    assert ModelVersion.objects.get(id=only.id).status == ModelVersion.Status.RETIRED


def test_retiring_the_champion_asks_first_and_names_its_successor(admin_page, live_server, no_broker, tmp_path):
    page = admin_page
    btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    v2 = make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    versions_url = f"{live_server.url}/admin/forecasting/modelversion/"

    choose_action(page, versions_url, [v2.id], "retire")
    page.locator("#champion-change").wait_for()
    page.screenshot(path=str(tmp_path / "retire-confirmation.png"), full_page=True)
    assert " ".join(page.locator("#handovers").inner_text().split()) == "BTCUSDT: v2 stops serving; v1 serves again."
    assert ModelVersion.objects.get(id=v2.id).status == ModelVersion.Status.CHAMPION

    page.click("input[value='Yes, retire']")
    page.wait_for_url(versions_url)
    assert "Retired BTCUSDT v2." in page.locator("ul.messagelist").inner_text()
    assert dict(ModelVersion.objects.values_list("version", "status")) == {1: "champion", 2: "retired"}


def test_version_and_run_pages_fit_1280_px(admin_page, live_server, tmp_path):
    page = admin_page
    now = timezone.now()
    for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH"), ("SOLUSDT", "SOL")):
        asset = Asset.objects.create(symbol=symbol, base_asset=base, quote_asset="USDT", interval="1h")
        v1 = make_version(asset, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10, withdrawn=True)
        make_version(asset, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
        make_version(asset, 3, broken="artifact checksum mismatch: expected 0123…, found abcd…")
        make_version(asset, 4, baselines={k: v for k, v in BASELINES.items() if k != "seasonal_band"})
        runs = [
            {"status": TrainingRun.Status.SUCCEEDED, "epoch": 13, "finished_at": now - timedelta(hours=2)},
            {"status": TrainingRun.Status.FAILED, "epoch": 5, "finished_at": now - timedelta(hours=3)},
            {"status": TrainingRun.Status.RUNNING, "epoch": 21, "heartbeat_at": now},
        ]
        for i, fields in enumerate(runs):
            if fields["status"] == TrainingRun.Status.FAILED:
                fields["error"] = "SeriesError: the history has a gap of 3 candles before 2022-06-30 23:00 " * 2
            TrainingRun.objects.create(
                asset=asset, triggered_by="admin:root", started_at=now - timedelta(hours=6 - i), max_epochs=40, **fields
            )

    page.goto(f"{live_server.url}/admin/forecasting/modelversion/")
    page.screenshot(path=str(tmp_path / "modelversion-changelist.png"), full_page=True)
    layout = assert_fits(page, "#result_list")
    heads = [cell["text"] for cell in layout["heads"]]
    for key in ("MAE VS NAIVE", "PINBALL VS BAND", "COVERAGE", "GATE"):  # headers are upper-cased by CSS
        assert key in [h.upper() for h in heads], heads

    page.goto(f"{live_server.url}/admin/forecasting/trainingrun/")
    page.screenshot(path=str(tmp_path / "trainingrun-changelist.png"), full_page=True)
    assert_fits(page, "#result_list")
    assert page.locator("#result_list").inner_text().count("stopped early") == 3

    done = TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED).first()
    page.goto(f"{live_server.url}/admin/forecasting/trainingrun/{done.id}/change/")
    page.screenshot(path=str(tmp_path / "trainingrun-change.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert "finished after 13 of 40 epochs (stopped early)" in page.locator("div.field-progress").inner_text()

    version = ModelVersion.objects.get(asset__symbol="BTCUSDT", version=2)
    page.goto(f"{live_server.url}/admin/forecasting/modelversion/{version.id}/change/")
    page.screenshot(path=str(tmp_path / "modelversion-change.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
