"""The average-cost engine on worked examples computed by hand here (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from portfolio.positions import Oversold, TxRow, quantities_over_time, replay

T0 = datetime(2022, 3, 1, 12, 0, tzinfo=UTC)
BTC, ETH = 1, 2


def tx(id, kind, quantity, price="0", fee="0", *, hours=None, asset=BTC) -> TxRow:
    at = T0 + timedelta(hours=id if hours is None else hours)
    return TxRow(id, asset, kind, D(quantity), D(price), D(fee), at)


def test_buys_at_several_prices_partial_sells_and_fees():
    rows = [
        tx(1, "buy", "2", "100", "2"),  # cost 2 × 100 + 2 = 202, 2 held
        tx(2, "buy", "1", "160", "1"),  # cost 202 + 160 + 1 = 363, 3 held, average 121
        tx(3, "sell", "1.5", "200", "3"),  # basis 363 × 1.5 / 3 = 181.5; proceeds 300 − 3 = 297
        tx(4, "buy", "0.5", "80"),  # cost 181.5 + 40 = 221.5, 2 held, average 110.75
        tx(5, "sell", "0.5", "90", "0.5"),  # basis 221.5 × 0.5 / 2 = 55.375; proceeds 45 − 0.5 = 44.5
    ]
    p = replay(rows).positions[BTC]
    assert p.quantity == D("1.5")
    assert p.cost == D("221.5") - D("55.375") == D("166.125")
    assert p.average_cost == D("166.125") / D("1.5") == D("110.75")
    # realized: (297 − 181.5) + (44.5 − 55.375) = 115.5 − 10.875
    assert p.realized == D("104.625")
    assert p.invested == D("202") + D("161") + D("40")
    assert p.withdrawn == D("297") + D("44.5")
    assert p.fees == D("2") + D("1") + D("3") + D("0.5")
    assert p.transactions == 5
    assert p.first_at == T0 + timedelta(hours=1)


def test_selling_everything_leaves_no_cost_and_realizes_the_exact_gain():
    rows = [
        tx(1, "buy", "1", "10"),
        tx(2, "buy", "1", "10"),
        tx(3, "buy", "1", "10.01"),  # cost 30.01 over 3 units: 10.00333… a unit, not exact in decimal
        tx(4, "sell", "1", "11"),
        tx(5, "sell", "1", "12"),
        tx(6, "sell", "1", "13"),
    ]
    p = replay(rows).positions[BTC]
    assert p.quantity == 0
    assert p.cost == 0  # exactly: the last sale takes whatever basis is left, no dust
    assert p.average_cost is None
    # Over the whole life: proceeds 11 + 12 + 13 = 36 against a cost of 30.01.
    assert p.realized == D("36") - D("30.01") == D("5.99")


def test_sell_all_after_partial_sells_with_fees():
    rows = [
        tx(1, "buy", "2", "100", "2"),  # cost 202
        tx(2, "buy", "1", "160", "1"),  # cost 363
        tx(3, "sell", "1.5", "200", "3"),  # realized 115.5, cost left 181.5
        tx(4, "sell", "1.5", "120", "1"),  # all of it: basis 181.5; proceeds 180 − 1 = 179
    ]
    p = replay(rows).positions[BTC]
    assert (p.quantity, p.cost) == (0, 0)
    assert p.realized == D("115.5") + (D("179") - D("181.5")) == D("113")
    # The same total as all money out minus all money in: (297 + 179) − (202 + 161).
    assert p.realized == p.withdrawn - p.invested


def test_reward_is_income_at_its_value_and_enters_the_cost_basis():
    rows = [
        tx(1, "buy", "1", "100"),  # cost 100
        tx(2, "reward", "0.1", "110", "0.2"),  # worth 0.1 × 110 = 11 on receipt; 0.2 fee paid for it
        tx(3, "sell", "0.55", "120"),  # basis 111 × 0.55 / 1.1 = 55.5; proceeds 66
    ]
    p = replay(rows).positions[BTC]
    assert p.rewards == D("11")
    assert p.invested == D("100")  # a reward is not money put in
    # income 11 − fee 0.2 = 10.8, then the sale: 66 − 55.5 = 10.5
    assert p.realized == D("10.8") + D("10.5") == D("21.3")
    assert p.quantity == D("0.55")
    assert p.cost == D("111") - D("55.5") == D("55.5")
    assert p.average_cost == D("100.9090909090909090909090909")  # 111 / 1.1, 28 significant digits


def test_transfer_in_and_out_and_a_fee_paid_in_the_asset():
    rows = [
        tx(1, "transfer_in", "2", "1000", "5", asset=ETH),  # cost 2 × 1000 + 5 = 2005
        tx(2, "transfer_out", "0.5", "1200", "2", asset=ETH),  # leaves at cost 2005 × 0.5 / 2 = 501.25; fee 2 lost
        tx(3, "fee", "0.01", "1200", asset=ETH),  # 1503.75 × 0.01 / 1.5 = 10.025 of basis lost
    ]
    p = replay(rows).positions[ETH]
    assert p.quantity == D("1.49")
    assert p.cost == D("2005") - D("501.25") - D("10.025") == D("1493.725")
    assert p.realized == -D("2") - D("10.025") == D("-12.025")
    assert p.invested == D("2005")
    assert p.withdrawn == D("0.5") * D("1200")
    assert p.average_cost == D("1493.725") / D("1.49")


def test_assets_are_kept_apart():
    ledger = replay([tx(1, "buy", "1", "100"), tx(2, "buy", "3", "10", asset=ETH), tx(3, "sell", "1", "150")])
    assert ledger.positions[BTC].realized == D("50")
    assert ledger.positions[ETH].quantity == D("3")
    assert ledger.positions[ETH].cost == D("30")
    assert ledger.positions[ETH].realized == 0


def test_same_instant_inflows_come_first_then_ids():
    # A sell recorded before the buy at the same instant (lower id) is not an oversell.
    rows = [tx(1, "sell", "1", "120", hours=5), tx(2, "buy", "1", "100", hours=5)]
    p = replay(rows).positions[BTC]
    assert (p.quantity, p.realized) == (0, D("20"))
    # Two sells at one instant: the lower id goes first, so the second one is refused.
    rows = [tx(1, "buy", "1", "100", hours=0), tx(7, "sell", "0.6", "1", hours=5), tx(3, "sell", "0.6", "1", hours=5)]
    with pytest.raises(Oversold) as exc:
        replay(rows)
    assert exc.value.row.id == 7
    assert exc.value.held == D("0.4")
    # A new row (no id yet) goes after the stored ones at its instant.
    rows = [
        tx(1, "buy", "1", "100", hours=0),
        TxRow(None, BTC, "sell", D("0.6"), D("1"), D("0"), T0 + timedelta(hours=5)),
        tx(9, "sell", "0.6", "1", hours=5),
    ]
    with pytest.raises(Oversold) as exc:
        replay(rows)
    assert exc.value.row.id is None


def test_rows_are_applied_in_time_order_not_list_order():
    rows = [tx(3, "sell", "1", "150", hours=30), tx(1, "buy", "1", "100", hours=1), tx(2, "buy", "1", "200", hours=2)]
    p = replay(rows).positions[BTC]
    # average 150 at the sale: realized 150 − 150 = 0
    assert p.realized == 0
    assert p.cost == D("150")


def test_oversold_names_the_first_outflow_larger_than_the_holding():
    rows = [
        tx(1, "buy", "1", "100"),
        tx(2, "sell", "0.6", "110"),
        tx(3, "transfer_out", "0.5", "0"),  # only 0.4 left
        tx(4, "sell", "5", "1"),
    ]
    with pytest.raises(Oversold) as exc:
        replay(rows)
    assert exc.value.row.id == 3
    assert exc.value.held == D("0.4")
    assert str(exc.value) == "transfer out of 0.5 on 2022-03-01 15:00 UTC is more than the 0.4 held then"


def test_oversold_on_a_fee_before_anything_is_held():
    with pytest.raises(Oversold) as exc:
        replay([tx(1, "fee", "0.001", "0", hours=0), tx(2, "buy", "1", "100", hours=1)])
    assert exc.value.row.id == 1
    assert exc.value.held == 0


def test_selling_exactly_what_is_held_is_allowed():
    p = replay([tx(1, "buy", "0.12345678", "3"), tx(2, "sell", "0.12345678", "4")]).positions[BTC]
    assert p.quantity == 0
    assert p.realized == D("0.12345678")  # 0.12345678 × (4 − 3)


def test_quantities_over_time_per_asset():
    rows = [
        tx(2, "sell", "0.5", "1", hours=2),
        tx(1, "buy", "2", "1", hours=1),
        tx(3, "buy", "1", "1", hours=3, asset=ETH),
    ]
    steps = quantities_over_time(rows)
    assert steps[BTC] == [(T0 + timedelta(hours=1), D("2")), (T0 + timedelta(hours=2), D("1.5"))]
    assert steps[ETH] == [(T0 + timedelta(hours=3), D("1"))]
