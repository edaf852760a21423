"""The holdings table's allocation and return columns (portfolio/valuation.py), worked by hand on
transactions and prices made here: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from forecasting.models import Asset
from portfolio.positions import TxRow
from portfolio.valuation import summarize

T = datetime(2022, 6, 1, 12, tzinfo=UTC)
NEWEST = datetime(2022, 6, 30, 23, tzinfo=UTC)
BTC = Asset(id=1, symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
ETH = Asset(id=2, symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT")
DOT = Asset(id=3, symbol="DOTUSDT", base_asset="DOT", quote_asset="USDT")


def row(n: int, asset: Asset, kind: str, quantity: str, price: str, fee: str = "0") -> TxRow:
    return TxRow(n, asset.id, kind, D(quantity), D(price), D(fee), T.replace(hour=n))


def prices(**closes: str | None) -> dict[int, dict]:
    """As prices_latest answers: every asset asked for, with None for a price it has no candle for."""
    assets = {"btc": BTC, "eth": ETH, "dot": DOT}
    return {
        assets[name].id: {
            "asset": assets[name],
            "close": None if close is None else D(close),
            "time": None if close is None else NEWEST,
            "close_24h": None if close is None else D(close),
        }
        for name, close in closes.items()
    }


def by_symbol(summary) -> dict:
    return {h.asset.symbol: h for h in summary.holdings + summary.closed}


def test_allocation_is_each_holdings_share_of_the_value_and_return_is_pnl_over_money_paid():
    # BTC: buy 2 at 100 (fee 2), sell 0.5 at 110 (fee 1): paid 202, realized +3.5, 1.5 left worth
    # 180 at 120, unrealized 180 − 151.5 = +28.5, total +32, return 32 / 202 = 15.8416%.
    # ETH: buy 10 at 9: paid 90, worth 60 at 6, return −30 / 90 = −33.33%.
    summary = summarize(
        [
            row(1, BTC, "buy", "2", "100", "2"),
            row(2, BTC, "sell", "0.5", "110", "1"),
            row(3, ETH, "buy", "10", "9"),
        ],
        prices(btc="120", eth="6"),
    )
    btc, eth = by_symbol(summary)["BTCUSDT"], by_symbol(summary)["ETHUSDT"]
    assert summary.value == D("240")
    assert btc.share == D("75") and eth.share == D("25")
    assert btc.total_pnl == D("32")
    assert btc.return_pct.quantize(D("0.0001")) == D("15.8416")
    assert eth.return_pct.quantize(D("0.01")) == D("-33.33")
    # The chart's allocation reads the same shares.
    assert [(a["symbol"], a["share"]) for a in summary.allocation()] == [("BTCUSDT", D("75")), ("ETHUSDT", D("25"))]


def test_a_sold_out_position_has_no_allocation_and_its_realized_return():
    # Buy 1 at 100 (fee 1), sell it all at 150 (fee 1): paid 101, realized 149 − 101 = +48.
    summary = summarize(
        [row(1, BTC, "buy", "1", "100", "1"), row(2, BTC, "sell", "1", "150", "1"), row(3, ETH, "buy", "1", "50")],
        prices(btc="200", eth="60"),
    )
    btc = by_symbol(summary)["BTCUSDT"]
    assert btc in summary.closed
    assert btc.share is None
    assert btc.return_pct.quantize(D("0.01")) == D("47.52")
    assert by_symbol(summary)["ETHUSDT"].share == D("100")


def test_a_sold_out_position_without_a_price_still_has_its_return():
    summary = summarize([row(1, BTC, "buy", "1", "100"), row(2, BTC, "sell", "1", "80")], prices(btc=None))
    assert summary.closed[0].return_pct == D("-20")


@pytest.mark.parametrize(
    "rows",
    [
        [row(1, DOT, "reward", "5", "4")],  # income only: nothing was paid
        [row(1, DOT, "transfer_in", "5", "0")],  # a free transfer in
    ],
)
def test_nothing_paid_means_no_return_rather_than_a_division_by_zero(rows):
    summary = summarize(rows, prices(dot="5"))
    dot = summary.holdings[0]
    assert dot.position.invested == 0
    assert dot.return_pct is None
    assert dot.share == D("100")  # it is still all of the value


def test_a_holding_without_a_price_has_neither_column_and_the_others_share_the_priced_value():
    summary = summarize([row(1, BTC, "buy", "1", "100"), row(2, ETH, "buy", "2", "10")], prices(btc=None, eth="15"))
    btc, eth = by_symbol(summary)["BTCUSDT"], by_symbol(summary)["ETHUSDT"]
    assert summary.missing_prices == ["BTCUSDT"]
    assert btc.share is None and btc.return_pct is None
    assert eth.share == D("100") and eth.return_pct == D("50")


def test_no_price_at_all_gives_no_shares():
    summary = summarize([row(1, BTC, "buy", "1", "100")], prices(btc=None))
    assert summary.value == 0
    assert summary.holdings[0].share is None
    assert summary.allocation() == []
    assert summary.newest_candle is None


def test_newest_candle_is_the_newest_open_time_of_the_prices_shown():
    older = prices(btc="1")
    older[BTC.id]["time"] = NEWEST.replace(hour=20)
    summary = summarize([row(1, BTC, "buy", "1", "1"), row(2, ETH, "buy", "1", "1")], {**older, **prices(eth="1")})
    assert summary.newest_candle == NEWEST
