"""The holdings table sorted by clicking its headers, and the add-transaction form's price filled
from the stored candles, in headless Chromium; screenshots at 1280 and 375 px wide (kept under the
test's tmp_path)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from core.formatting import decimal_string
from forecasting.models import Candle
from portfolio import services
from portfolio.models import Transaction

from .test_portfolio import import_recent, local, newest_open

pytestmark = pytest.mark.browser
Q8 = Decimal("1e-8")


@pytest.fixture
def assets(transactional_db, data_dir, tmp_path):
    return {symbol: import_recent(data_dir, tmp_path, symbol) for symbol in ("BTCUSDT", "ETHUSDT", "BNBUSDT")}


def close_at(asset, open_time: datetime) -> Decimal:
    return Candle.objects.get(asset=asset, interval=asset.interval, open_time=open_time).close


def buy(portfolio, asset, quantity: str, price: Decimal, when: datetime, kind: str = "buy"):
    services.transaction_create(
        portfolio=portfolio,
        asset=asset,
        kind=kind,
        quantity=Decimal(quantity),
        unit_price=price.quantize(Q8),
        executed_at=when,
    )


def row_order(page) -> list[str]:
    return page.locator("#holdings-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.symbol)")


def sorted_by(page) -> dict[str, str]:
    return {
        th.inner_text().strip(): th.get_attribute("aria-sort")
        for th in page.locator("#holdings-table thead th[aria-sort]").all()
    }


def test_holdings_sort_by_clicking_a_header(page, live_server, assets, sign_in, site_user, tmp_path):
    btc, eth, bnb = assets["BTCUSDT"], assets["ETHUSDT"], assets["BNBUSDT"]
    end = newest_open(btc)
    portfolio = services.portfolio_create(owner=site_user, name="Main")
    # BTC: the larger value, +10%; ETH: the smaller value, +100%; BNB: sold out at +50%.
    buy(portfolio, btc, "0.5", close_at(btc, end) / Decimal("1.1"), end - timedelta(days=30))
    buy(portfolio, eth, "2", close_at(eth, end) / 2, end - timedelta(days=20))
    buy(portfolio, bnb, "1", Decimal("100"), end - timedelta(days=10))
    buy(portfolio, bnb, "1", Decimal("150"), end - timedelta(days=5), kind="sell")

    sign_in()
    page.goto(f"{live_server.url}/portfolios/{portfolio.pk}/")
    # The server's order, by market value, is what the header says; sold-out rows come last.
    assert row_order(page) == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert sorted_by(page) == {"Market value": "descending"}
    returns = page.locator("#holdings-table tbody tr td:last-child").all_inner_texts()
    assert returns == ["+10.00%", "+100.00%", "+50.00%"], returns
    # Every header is a button.
    assert page.locator("#holdings-table thead th button.sort").count() == 10

    page.click("#holdings-table thead button:has-text('Return')")  # numbers: largest first
    assert row_order(page) == ["ETHUSDT", "BTCUSDT", "BNBUSDT"]
    assert sorted_by(page) == {"Return": "descending"}
    assert page.inner_text("#holdings-sort-status") == "Sorted by Return, descending."

    page.click("#holdings-table thead button:has-text('Return')")  # and the other way
    assert row_order(page) == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert sorted_by(page) == {"Return": "ascending"}

    # From the keyboard: the header's button takes Enter.
    page.focus("#holdings-table thead button:has-text('Quantity')")
    page.keyboard.press("Enter")
    assert row_order(page) == ["ETHUSDT", "BTCUSDT", "BNBUSDT"]
    assert sorted_by(page) == {"Quantity": "descending"}

    page.click("#holdings-table thead button:has-text('Asset')")  # text: A to Z first
    assert row_order(page) == ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    assert sorted_by(page) == {"Asset": "ascending"}

    # The cards, the table and the prices line all say the currency.
    assert page.inner_text("#portfolio-value").endswith(" USDT")
    assert page.inner_text("#portfolio-pnl").endswith(" USDT")
    assert page.inner_text("#prices-as-of") == "Prices are the closes of the newest candles, in USDT."
    # Its time is said once, by the data-age line, while every holding's candle is the newest.
    assert f": {end:%Y-%m-%d %H:%M} UTC, closed " in page.inner_text("#data-age")

    # The charts say the currency too: money in tooltips with two decimals, the axis titled.
    page.locator("#history-chart[data-painted='true']").wait_for()
    history = """c => {
      const chart = Chart.getChart(c);
      const label = chart.options.plugins.tooltip.callbacks.label;
      return [label({dataset: {label: "Market value"}, parsed: {y: 12113.2812}}), chart.options.scales.y.title.text];
    }"""
    assert page.locator("#history-chart").evaluate(history) == ["Market value: 12,113.28 USDT", "Value (USDT)"]
    allocation = """c => Chart.getChart(c).options.plugins.tooltip.callbacks.label({dataIndex: 0})"""
    btc_share = page.locator("#holdings-table tr[data-symbol='BTCUSDT'] td").nth(4).inner_text()  # the table's
    assert page.locator("#allocation-chart").evaluate(allocation).endswith(f" USDT ({btc_share})")
    page.screenshot(path=str(tmp_path / "portfolio-1280.png"), full_page=True)
    page.reload()  # unscrolled, as a person first sees it
    # At 1280 px the whole table fits: nothing to scroll.
    assert page.locator("#holdings .table-wrap").evaluate("w => w.scrollWidth <= w.clientWidth")
    page.locator("#holdings").screenshot(path=str(tmp_path / "holdings-1280.png"))
    page.set_viewport_size({"width": 375, "height": 812})
    page.reload()
    # The table scrolls inside its box; the page itself does not scroll sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    wrap = page.locator("#holdings .table-wrap")
    box = wrap.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert wrap.evaluate("w => w.scrollWidth > w.clientWidth")
    page.click("#holdings-table thead button:has-text('Return')")
    assert row_order(page) == ["ETHUSDT", "BTCUSDT", "BNBUSDT"]
    page.screenshot(path=str(tmp_path / "portfolio-375.png"), full_page=True)
    page.locator("#holdings").screenshot(path=str(tmp_path / "holdings-375.png"))
    page.locator(".stats").screenshot(path=str(tmp_path / "stats-375.png"))


def test_the_price_is_filled_from_the_candle_at_the_time(page, live_server, assets, sign_in, site_user, tmp_path):
    btc = assets["BTCUSDT"]
    end = newest_open(btc)
    portfolio = services.portfolio_create(owner=site_user, name="Main")
    price = page.locator("#id_unit_price")
    source = page.locator("#unit-price-source")

    sign_in()
    page.goto(f"{live_server.url}/portfolios/{portfolio.pk}/transactions/add/")
    # The time starts at now (UTC, to the minute).
    shown = datetime.fromisoformat(page.input_value("#id_executed_at")).replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - shown) < timedelta(minutes=2)
    expect(source).to_be_hidden()

    # Now is after the newest stored candle: its close, and the note says so.
    page.fill("#id_symbol", "BTCUSDT")
    expect(price).to_have_value(decimal_string(close_at(btc, end), trim=True))
    expect(source).to_have_text(
        f"Filled from the BTCUSDT 1h candle of {end:%Y-%m-%d %H:%M} UTC (close), the newest stored before that "
        f"time. You can change it."
    )
    assert "unit-price-source" in price.get_attribute("aria-describedby")

    # A time inside an older candle: that candle's close.
    candle = end - timedelta(hours=30)
    page.fill("#id_executed_at", local(candle + timedelta(minutes=25)))
    expect(price).to_have_value(decimal_string(close_at(btc, candle), trim=True))
    expect(source).to_have_text(
        f"Filled from the BTCUSDT 1h candle of {candle:%Y-%m-%d %H:%M} UTC (close). You can change it."
    )
    page.screenshot(path=str(tmp_path / "form-1280.png"), full_page=True)

    # A price the person typed stays, whatever they choose next.
    page.fill("#id_unit_price", "12345.6")
    expect(source).to_be_hidden()
    page.fill("#id_executed_at", local(candle - timedelta(hours=5)))
    page.fill("#id_symbol", "ETHUSDT")
    page.wait_for_timeout(1000)  # longer than the pause before asking, and the answer
    expect(price).to_have_value("12345.6")
    expect(source).to_be_hidden()

    # Emptied, the field is filled again; an asset without candles says to type the price.
    page.fill("#id_unit_price", "")
    page.fill("#id_symbol", "BTCUSDT")
    page.fill("#id_executed_at", local(candle))
    expect(price).to_have_value(decimal_string(close_at(btc, candle), trim=True))
    page.fill("#id_symbol", "DOGEUSDT")
    expect(source).to_have_text("No prices are stored for DOGEUSDT. Enter the price yourself.")
    expect(price).to_have_value("")
    page.fill("#id_symbol", "BTCUSDT")
    expect(price).to_have_value(decimal_string(close_at(btc, candle), trim=True))

    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(tmp_path / "form-375.png"), full_page=True)

    # Saved with the filled price.
    page.fill("#id_quantity", "0.1")
    page.click("#transaction-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portfolios/{portfolio.pk}/")
    tx = Transaction.objects.get(portfolio=portfolio)
    assert (tx.unit_price, tx.executed_at) == (close_at(btc, candle), candle)


def test_a_late_price_never_lands_under_the_cursor(page, live_server, assets, sign_in, site_user):
    # The person moves to the price field while the look-up is on its way: the answer must not be
    # written into the field they are typing in (it would be joined to their digits).
    btc = assets["BTCUSDT"]
    end = newest_open(btc)
    portfolio = services.portfolio_create(owner=site_user, name="Main")
    price = page.locator("#id_unit_price")
    held = []
    page.route("**/portfolios/price-at/**", lambda route: held.append(route))

    sign_in()
    page.goto(f"{live_server.url}/portfolios/{portfolio.pk}/transactions/add/")
    page.fill("#id_symbol", "BTCUSDT")
    page.click("#id_unit_price")  # leaving the symbol asks at once
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the form never asked for the price"
    with page.expect_response("**/portfolios/price-at/**") as answer:
        for route in held:
            route.continue_()
    answer.value.finished()
    page.wait_for_timeout(300)  # the answer's handlers run after its body is read
    page.keyboard.type("31000")
    expect(price).to_have_value("31000")
    page.keyboard.press("Tab")
    page.wait_for_timeout(500)  # longer than the pause before asking, and the answer
    expect(price).to_have_value("31000")

    # Left empty, the field is filled once the person leaves it.
    page.unroute("**/portfolios/price-at/**")
    page.fill("#id_unit_price", "")
    page.keyboard.press("Tab")
    expect(price).to_have_value(decimal_string(close_at(btc, end), trim=True))
