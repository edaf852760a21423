"""The portfolio pages in headless Chromium: sign up, create a portfolio, add transactions through
the form, see the holdings and every chart drawn with the expected number of points, a bad CSV's
line errors, another user's 404, and the page on a phone screen.

Sorting the holdings and the form's price from the candles: test_holdings_and_form.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.formatting import price_text
from forecasting.models import Asset, Candle, Forecast
from tests.support.browser import PASSWORD

pytestmark = pytest.mark.browser

ROWS = 2000  # the newest ~83 days of hourly candles: enough for a forecast, quick to import


def import_recent(data_dir: Path, tmp_path: Path, symbol: str) -> Asset:
    """Track `symbol` and import the newest ROWS candles of the real Binance file."""
    from forecasting.services.market_data import asset_track, candles_import_file

    lines = (data_dir / f"{symbol}-1h.csv").read_text().splitlines()
    path = tmp_path / f"{symbol}-1h.csv"
    path.write_text("\n".join([lines[0], *lines[-ROWS:]]) + "\n")
    asset = asset_track(symbol=symbol, interval="1h", base_asset=symbol[:-4], quote_asset="USDT")
    assert candles_import_file(asset=asset, path=path).created == ROWS
    return asset


@pytest.fixture
def market(transactional_db, data_dir, tmp_path):
    """BTCUSDT and ETHUSDT with recent candles and a stored (baseline) forecast each."""
    from forecasting.services.forecasts import forecast_make

    assets = {}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        asset = import_recent(data_dir, tmp_path, symbol)
        forecast = forecast_make(asset=asset)
        assert forecast.kind == Forecast.Kind.BASELINE
        assets[symbol] = asset
    return assets


def newest_open(asset: Asset) -> datetime:
    return Candle.objects.filter(asset=asset).order_by("-open_time").values_list("open_time", flat=True).first()


def local(dt: datetime) -> str:
    """The datetime-local input's value (the form reads it as UTC)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


# Counts the canvas pixels that are drawn at all: an empty chart leaves (nearly) none.
PAINTED_SHARE = """canvas => {
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) painted++;
  return painted / (canvas.width * canvas.height);
}"""


def assert_chart(page, canvas_id: str, points: int) -> None:
    canvas = page.locator(f"#{canvas_id}[data-painted='true']")
    canvas.wait_for()
    assert canvas.get_attribute("data-points") == str(points), canvas_id
    assert canvas.evaluate(PAINTED_SHARE) > 0.01, canvas_id
    box = canvas.bounding_box()
    assert box["width"] > 150 and box["height"] > 150, canvas_id


def sign_up(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/")
    page.click("text=Sign up")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/")


def add_transaction(
    page, portfolio_url: str, *, symbol: str, kind: str, quantity: str, price: str, fee: str, when: datetime
) -> None:
    page.click("text=Add transaction")
    page.wait_for_url(f"{portfolio_url}transactions/add/")
    page.fill("#id_symbol", symbol)
    page.select_option("#id_kind", kind)
    page.fill("#id_quantity", quantity)
    page.fill("#id_unit_price", price)
    page.fill("#id_fee", fee)
    page.fill("#id_executed_at", local(when))
    page.click("#transaction-form button[type=submit]")
    page.wait_for_url(portfolio_url)


def test_sign_up_build_a_portfolio_and_see_it_drawn(page, live_server, market, tmp_path):
    btc = market["BTCUSDT"]
    end = newest_open(btc)
    first = (end - timedelta(days=20)).replace(minute=0, second=0)

    sign_up(page, live_server, "erin")
    assert "No portfolio yet — create one" in page.inner_text("main")
    page.fill("#id_name", "Main")
    page.click("#create-portfolio button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/*/")
    portfolio_url = page.url
    assert "No transactions yet" in page.inner_text("main")

    add_transaction(
        page, portfolio_url, symbol="BTCUSDT", kind="buy", quantity="0.5", price="30000", fee="10", when=first
    )
    add_transaction(
        page,
        portfolio_url,
        symbol="ETHUSDT",
        kind="buy",
        quantity="4",
        price="2000",
        fee="0",
        when=end - timedelta(days=10),
    )
    add_transaction(
        page,
        portfolio_url,
        symbol="BTCUSDT",
        kind="sell",
        quantity="0.1",
        price="31000",
        fee="5",
        when=end - timedelta(days=5),
    )
    # Selling more than is held is refused on the form, with the service's message.
    page.click("text=Add transaction")
    page.fill("#id_symbol", "BTCUSDT")
    page.select_option("#id_kind", "sell")
    page.fill("#id_quantity", "1")
    page.fill("#id_unit_price", "31000")
    page.fill("#id_executed_at", local(end - timedelta(days=1)))
    page.click("#transaction-form button[type=submit]")
    assert "Not enough BTC" in page.locator(".field-error").first.inner_text()
    page.goto(portfolio_url)

    # Holdings, by hand: BTC cost 0.5 × 30000 + 10 = 15010; the sale of 0.1 takes 15010 / 5 = 3002 of
    # it and brought 3100 − 5 = 3095, so realized +93; 0.4 left at an average of 12008 / 0.4 = 30020.
    # Cells: quantity, average cost, price, value, allocation, unrealized, realized, total, return.
    btc_cells = page.locator("#holdings-table tr[data-symbol='BTCUSDT'] td").all_inner_texts()
    assert btc_cells[0] == "0.4 BTC" and btc_cells[1] == "30,020.00 USDT" and btc_cells[6] == "+93.00 USDT", btc_cells
    eth_cells = page.locator("#holdings-table tr[data-symbol='ETHUSDT'] td").all_inner_texts()
    assert eth_cells[0] == "4 ETH" and eth_cells[1] == "2,000.00 USDT" and eth_cells[6] == "0.00 USDT", eth_cells
    btc_close = Candle.objects.get(asset=btc, open_time=end).close
    assert btc_cells[2] == f"{price_text(btc_close)} USDT"
    shares = [Decimal(c[4].rstrip("%")) for c in (btc_cells, eth_cells)]
    assert abs(sum(shares) - 100) <= Decimal("0.01"), shares
    assert "Average cost" in page.inner_text("#cost-basis-method")
    assert page.locator("#transactions-table tbody tr").count() == 3

    # Each chart drawn with its number of points: one slice per holding, one point per UTC day from
    # the first transaction to the newest candle, one per forecast step.
    assert_chart(page, "allocation-chart", 2)
    assert_chart(page, "history-chart", (end.date() - first.date()).days + 1)
    steps = len(Forecast.objects.filter(asset=btc).latest("origin_time").steps)
    assert steps == 24
    assert_chart(page, "forecast-chart", steps)
    assert "naive volatility band" in page.inner_text("#forecast-baseline")

    # A bad CSV lists its line errors and imports nothing.
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "executed_at,kind,symbol,quantity,unit_price,fee,note\n"
        f"{local(first)}Z,buy,BTCUSDT,0,100,0,\n"
        f"{local(first)}Z,lend,BTCUSDT,1,100,0,\n"
        f"{local(first)}Z,buy,BTCUSDT,1,100,0,fine\n"
    )
    page.click("text=Import CSV")
    page.set_input_files("#id_file", str(bad))
    page.click("main form button[type=submit]")
    errors = page.locator("#import-errors li").all_inner_texts()
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3"], errors
    assert "Nothing was imported." in page.inner_text("#import-errors")
    page.goto(portfolio_url)
    assert page.locator("#transactions-table tbody tr").count() == 3

    # Another person gets 404 on this portfolio's address.
    page.click("text=Sign out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    sign_up(page, live_server, "frank")
    response = page.goto(portfolio_url)
    assert response.status == 404
    response = page.goto(f"{portfolio_url}export.csv")
    assert response.status == 404


def test_portfolio_page_fits_a_phone(page, live_server, market, sign_in, site_user, tmp_path):
    from portfolio import services

    btc, eth = market["BTCUSDT"], market["ETHUSDT"]
    end = newest_open(btc)
    portfolio = services.portfolio_create(owner=site_user, name="A portfolio with a rather long name")
    services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("0.12345678"),
        unit_price=Decimal("21000.5"),
        fee=Decimal("3.25"),
        executed_at=end - timedelta(days=60),
    )
    services.transaction_create(
        portfolio=portfolio,
        asset=eth,
        kind="buy",
        quantity=Decimal("3"),
        unit_price=Decimal("1500"),
        executed_at=end - timedelta(days=30),
    )
    services.transaction_create(
        portfolio=portfolio,
        asset=eth,
        kind="reward",
        quantity=Decimal("0.01"),
        unit_price=Decimal("1300"),
        executed_at=end - timedelta(days=3),
        note="staking reward, weekly",
    )

    page.set_viewport_size({"width": 375, "height": 812})
    sign_in()
    page.goto(f"{live_server.url}/portfolios/{portfolio.pk}/")
    assert_chart(page, "allocation-chart", 2)
    assert_chart(page, "history-chart", 61)
    assert_chart(page, "forecast-chart", 24)

    # Nothing wider than the screen: no sideways scrolling of the page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for selector in (
        "#allocation-chart",
        "#history-chart",
        "#forecast-chart",
        "#holdings .table-wrap",
        "#transactions-table",
        "#returns-table",
        ".page-head .actions",
        ".filters",
    ):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    # Transactions stack into label/value lines; the holdings keep their sortable headers and
    # scroll sideways inside their box.
    assert page.locator("#transactions-table thead").bounding_box()["height"] <= 1
    assert page.locator("#holdings-table thead").is_visible()
    assert page.locator("#holdings .table-wrap").evaluate("w => w.scrollWidth > w.clientWidth")
    for field in ("asset", "kind", "date_from", "date_to"):
        assert page.locator(f"label[for='id_{field}']").is_visible(), field

    shot = tmp_path / "portfolio-375.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
