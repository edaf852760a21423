"""Reading portfolios: holdings, allocation, value over time, returns, forecast and query counts,
against values computed by hand from candles created here."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting.models import Asset, Candle, Forecast, ModelVersion
from portfolio.models import Portfolio, Transaction
from portfolio.selectors import candles_daily_close, portfolio_detail, portfolio_summaries, portfolio_summary
from portfolio.services import portfolio_state_rebuild

HOUR, DAY, MS = timedelta(hours=1), timedelta(days=1), timedelta(milliseconds=1)


def at(y, m, d, h=0, minute=0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


def candle(asset, open_time, close) -> Candle:
    close = D(close)
    return Candle(
        asset=asset,
        interval=asset.interval,
        open_time=open_time,
        close_time=open_time + HOUR - MS,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=D("1"),
    )


def make_asset(symbol) -> Asset:
    return Asset.objects.create(symbol=symbol, base_asset=symbol.removesuffix("USDT"), quote_asset="USDT")


def add(portfolio, asset, kind, quantity, price, fee="0", *, when) -> Transaction:
    # Straight to the table: these tests read, and the histories here are valid by construction;
    # the stored state is rebuilt as the services would keep it.
    tx = Transaction.objects.create(
        portfolio=portfolio,
        asset=asset,
        kind=kind,
        quantity=D(quantity),
        unit_price=D(price),
        fee=D(fee),
        executed_at=when,
    )
    portfolio_state_rebuild(portfolio=portfolio)
    return tx


# --- holdings, allocation, 24h change ------------------------------------------------------------

NEWEST = at(2022, 6, 30, 23)


@pytest.fixture
def three_assets(db):
    btc, eth, bnb = make_asset("BTCUSDT"), make_asset("ETHUSDT"), make_asset("BNBUSDT")
    Candle.objects.bulk_create(
        [
            candle(btc, NEWEST - 25 * HOUR, "125"),
            candle(btc, NEWEST - 24 * HOUR, "120"),  # the close a day before the newest
            candle(btc, NEWEST - HOUR, "149"),
            candle(btc, NEWEST, "150"),  # the newest close
            candle(eth, NEWEST - 24 * HOUR, "10"),
            candle(eth, NEWEST, "12"),
            candle(bnb, NEWEST - 24 * HOUR, "240"),
            candle(bnb, NEWEST, "250"),
        ]
    )
    return btc, eth, bnb


@pytest.fixture
def holdings_folio(folio, three_assets):
    btc, eth, bnb = three_assets
    t = at(2022, 6, 1, 12)
    add(folio, btc, "buy", "2", "100", "2", when=t)  # cost 202
    add(folio, btc, "buy", "1", "160", "1", when=t + HOUR)  # cost 363, average 121
    add(folio, btc, "sell", "1.5", "200", "3", when=t + 2 * HOUR)  # basis 181.5, proceeds 297: +115.5
    add(folio, eth, "buy", "10", "10", "0.5", when=t)  # cost 100.5
    add(folio, bnb, "buy", "1", "300", when=t)
    add(folio, bnb, "sell", "1", "330", "1", when=t + DAY)  # 329 − 300 = +29, nothing left
    return folio


def test_holdings_against_hand_computed_values(holdings_folio, three_assets):
    btc, eth, bnb = three_assets
    s = portfolio_summary(portfolio=holdings_folio)
    assert [h.asset.symbol for h in s.holdings] == ["BTCUSDT", "ETHUSDT"]  # largest value first
    h_btc, h_eth = s.holdings
    assert h_btc.quantity == D("1.5")
    assert h_btc.position.average_cost == D("121")  # 363 / 3, unchanged by the sale
    assert h_btc.price == D("150") and h_btc.price_time == NEWEST
    assert h_btc.value == D("225")  # 1.5 × 150
    assert h_btc.unrealized == D("43.5")  # 225 − 181.5
    assert h_btc.position.realized == D("115.5")
    assert h_btc.total_pnl == D("159")
    assert h_eth.position.average_cost == D("10.05")  # (100 + 0.5) / 10
    assert h_eth.value == D("120") and h_eth.unrealized == D("19.5")
    assert [(h.asset.symbol, h.position.realized) for h in s.closed] == [("BNBUSDT", D("29"))]

    assert s.value == D("345")  # 225 + 120
    assert s.cost == D("282")  # 181.5 + 100.5
    assert s.realized == D("144.5")  # 115.5 + 29
    assert s.unrealized == D("63")  # 43.5 + 19.5
    assert s.total_pnl == D("207.5")
    assert s.missing_prices == [] and s.transactions == 6

    # 24h: what is held now, at the closes a day before the newest: 1.5 × 120 + 10 × 10 = 280
    assert s.value_24h == D("280")
    assert s.change_24h == D("65")
    assert s.change_24h_pct == D("65") / D("280") * 100

    assert s.allocation() == [
        {"symbol": "BTCUSDT", "value": D("225"), "share": D("225") / D("345") * 100},
        {"symbol": "ETHUSDT", "value": D("120"), "share": D("120") / D("345") * 100},
    ]
    assert sum(a["share"] for a in s.allocation()) == pytest.approx(100)


def test_total_profit_equals_the_all_time_gain(holdings_folio):
    d = portfolio_detail(portfolio=holdings_folio)
    # Money in minus money out: BTC 202 + 161 − 297, ETH 100.5, BNB 300 − 329 = 137.5; 345 − 137.5
    assert d["returns"]["all"]["gain"] == d["summary"].total_pnl == D("207.5")


def test_rewards_and_fees_count_the_same_in_profit_and_in_returns(folio, three_assets):
    btc = three_assets[0]
    t = at(2022, 6, 1)
    add(folio, btc, "transfer_in", "1", "100", "1", when=t)  # 101 put in
    add(folio, btc, "reward", "0.1", "120", "0.5", when=t + DAY)  # income 12; its 0.5 fee is paid in
    add(folio, btc, "fee", "0.05", "0", when=t + 2 * DAY)  # paid in the asset: no money moves
    add(folio, btc, "buy", "1", "130", "1", when=t + 3 * DAY)  # 131 put in
    add(folio, btc, "sell", "0.5", "140", "1", when=t + 4 * DAY)  # 69 taken out
    d = portfolio_detail(portfolio=folio)
    # 1.55 held × 150 = 232.5 now, against 101 + 0.5 + 131 − 69 = 163.5 put in net: 69
    assert d["summary"].value == D("232.5")
    # (the fee's basis, 113 × 0.05 / 1.1, is not a finite decimal: equal to 20 places)
    assert d["summary"].total_pnl.quantize(D("1e-20")) == D("69")
    assert d["returns"]["all"]["gain"] == D("69")
    assert d["history"][-1]["invested"] == D("163.5")


def test_a_holding_without_candles_is_listed_as_missing_a_price(folio, three_assets):
    sol = make_asset("SOLUSDT")
    add(folio, three_assets[0], "buy", "1", "100", when=at(2022, 6, 1))
    add(folio, sol, "buy", "3", "40", when=at(2022, 6, 1))
    s = portfolio_summary(portfolio=folio)
    assert s.missing_prices == ["SOLUSDT"]
    assert s.value == D("150")  # only what has a price
    assert s.cost == D("220")  # 100 + 120, all of it
    sol_holding = next(h for h in s.holdings if h.asset == sol)
    assert sol_holding.value is None and sol_holding.unrealized is None


def test_an_empty_portfolio(folio):
    s = portfolio_summary(portfolio=folio)
    assert (s.holdings, s.value, s.total_pnl, s.allocation()) == ([], 0, 0, [])
    d = portfolio_detail(portfolio=folio)
    assert (d["history"], d["returns"], d["forecast"], d["as_of"]) == ([], {}, None, None)


# --- value over time ----------------------------------------------------------------------------


def test_value_over_time_is_daily_from_the_23h_candle_and_carries_a_missing_close(folio):
    btc = make_asset("BTCUSDT")
    first = at(2022, 6, 1)
    # Day d (0 to 4), hour h: close 100 + 10 d + h, so the 23:00 candle closes at 123 + 10 d.
    Candle.objects.bulk_create(
        [candle(btc, first + d * DAY + h * HOUR, 100 + 10 * d + h) for d in range(5) for h in range(24)]
    )
    Candle.objects.filter(asset=btc, open_time=at(2022, 6, 4, 23)).delete()  # an outage at the day's end
    add(folio, btc, "buy", "1", "110", when=at(2022, 6, 1, 10))
    add(folio, btc, "buy", "1", "132", "1", when=at(2022, 6, 3, 12))

    closes = candles_daily_close(assets=[btc], start=first, end=at(2022, 6, 5, 23))[btc.id]
    assert [(t.day, c) for t, c in closes] == [(1, 123), (2, 133), (3, 143), (5, 163)]

    d = portfolio_detail(portfolio=folio)
    end = at(2022, 6, 5, 23) + HOUR - MS  # the newest candle's close time
    assert d["as_of"] == end
    assert [(p["t"], p["value"], p["invested"]) for p in d["history"]] == [
        (at(2022, 6, 1, 23) + HOUR - MS, D("123"), D("110")),  # 1 × 123
        (at(2022, 6, 2, 23) + HOUR - MS, D("133"), D("110")),  # 1 × 133
        (at(2022, 6, 3, 23) + HOUR - MS, D("286"), D("243")),  # 2 × 143; 110 + 132 + 1 put in
        (at(2022, 6, 4, 23) + HOUR - MS, D("286"), D("243")),  # no 23:00 candle: 143 carried, not 152
        (end, D("326"), D("243")),  # 2 × 163
    ]


def test_value_over_time_with_a_full_sale_and_a_second_asset(folio):
    btc, eth = make_asset("BTCUSDT"), make_asset("ETHUSDT")
    first = at(2022, 6, 1)
    Candle.objects.bulk_create(
        [candle(btc, first + d * DAY + 23 * HOUR, 100 + d) for d in range(4)]
        + [candle(eth, first + d * DAY + 23 * HOUR, 10 + d) for d in range(4)]
    )
    add(folio, btc, "buy", "1", "100", when=at(2022, 6, 1, 1))
    add(folio, btc, "sell", "1", "102", when=at(2022, 6, 3, 1))
    add(folio, eth, "buy", "5", "11", when=at(2022, 6, 2, 1))
    values = [p["value"] for p in portfolio_detail(portfolio=folio)["history"]]
    # day 1: 100; day 2: 101 + 5 × 11; day 3: BTC sold, 5 × 12; day 4: 5 × 13
    assert values == [D("100"), D("156"), D("60"), D("65")]


# --- returns ------------------------------------------------------------------------------------


def price_on(day: date) -> int:
    if day <= date(2021, 6, 30):
        return 100
    if day <= date(2021, 12, 31):
        return 120
    if day <= date(2022, 5, 31):
        return 150
    if day <= date(2022, 6, 23):
        return 160
    if day <= date(2022, 6, 29):
        return 180
    return 200


def test_returns_per_period_modified_dietz_with_one_flow(folio):
    btc = make_asset("BTCUSDT")
    days = (date(2022, 6, 30) - date(2021, 3, 1)).days + 1
    Candle.objects.bulk_create(
        [
            candle(btc, at(day.year, day.month, day.day, 23), price_on(day))
            for day in (date(2021, 3, 1) + timedelta(days=i) for i in range(days))
        ]
    )
    first = at(2021, 3, 1, 12)
    flow_at = at(2022, 6, 15, 12)
    add(folio, btc, "buy", "1", "90", when=first)
    add(folio, btc, "buy", "1", "160", "2", when=flow_at)  # the flow: 160 + 2 = 162 put in
    d = portfolio_detail(portfolio=folio)
    r = d["returns"]
    end = at(2022, 6, 30, 23) + HOUR - MS
    assert d["as_of"] == end
    assert d["summary"].value == D("400")  # 2 × 200

    def day_end(y, m, dd):
        return at(y, m, dd, 23) + HOUR - MS

    def weight(start):  # the share of the period the flow was in the portfolio
        return (end - flow_at) / (end - start)  # (15.5 days − 1 ms) / period

    # 24h: no flow; the start value is 2 × 180 (the close a day before)
    assert r["24h"]["start"] == day_end(2022, 6, 29)
    assert r["24h"]["gain"] == D("40")
    assert float(r["24h"]["pct"]) == pytest.approx(40 / 360 * 100)
    # 7d: no flow; 2 × 160 → 400
    assert r["7d"]["start"] == day_end(2022, 6, 23)
    assert (r["7d"]["gain"], r["7d"]["pct"]) == (D("80"), D("25"))
    # 30d: 1 × 150 at the start, 162 put in half-way: gain 400 − 150 − 162 = 88
    assert r["30d"]["start"] == day_end(2022, 5, 31)
    assert r["30d"]["gain"] == D("88")
    assert float(r["30d"]["pct"]) == pytest.approx(88 / (150 + 162 * weight(day_end(2022, 5, 31))) * 100)
    # ytd: from the last daily value of 2021 (1 × 120): gain 400 − 120 − 162 = 118
    assert r["ytd"]["start"] == day_end(2021, 12, 31)
    assert r["ytd"]["gain"] == D("118")
    assert float(r["ytd"]["pct"]) == pytest.approx(118 / (120 + 162 * weight(day_end(2021, 12, 31))) * 100)
    # 1y: 1 × 100 a year before: gain 400 − 100 − 162 = 138
    assert r["1y"]["start"] == day_end(2021, 6, 30)
    assert r["1y"]["gain"] == D("138")
    assert float(r["1y"]["pct"]) == pytest.approx(138 / (100 + 162 * weight(day_end(2021, 6, 30))) * 100)
    # all: from nothing, 90 in at the start (whole period) and 162 later: gain 400 − 252 = 148
    assert r["all"]["start"] == first
    assert r["all"]["gain"] == D("148")
    assert float(r["all"]["pct"]) == pytest.approx(148 / (90 + 162 * weight(first)) * 100)


def test_24h_return_counts_a_buy_of_the_last_day_once(folio):
    btc = make_asset("BTCUSDT")
    Candle.objects.bulk_create([candle(btc, NEWEST - 24 * HOUR, "100"), candle(btc, NEWEST, "110")])
    add(folio, btc, "buy", "1", "90", when=NEWEST - 3 * DAY)
    bought = at(2022, 6, 30, 12)
    add(folio, btc, "buy", "1", "100", when=bought)
    r = portfolio_detail(portfolio=folio)["returns"]["24h"]
    end = NEWEST + HOUR - MS
    # 1 held a day ago at 100; 100 put in at noon; 2 × 110 now: gain 220 − 100 − 100 = 20
    assert r["gain"] == D("20")
    assert float(r["pct"]) == pytest.approx(20 / (100 + 100 * ((end - bought) / (24 * HOUR))) * 100)


def test_a_transaction_after_the_newest_candle_is_a_flow_with_no_weight(folio):
    btc = make_asset("BTCUSDT")
    Candle.objects.bulk_create([candle(btc, NEWEST - 24 * HOUR, "100"), candle(btc, NEWEST, "100")])
    add(folio, btc, "buy", "1", "100", when=NEWEST - 3 * DAY)
    add(folio, btc, "buy", "1", "100", when=NEWEST + 3 * HOUR)  # newer than any price
    r = portfolio_detail(portfolio=folio)["returns"]
    # Nothing moved in price: no gain in any period, even though the value includes the late buy.
    assert {k: v["gain"] for k, v in r.items()} == {"24h": 0, "7d": 0, "30d": 0, "ytd": 0, "1y": 0, "all": 0}


# --- projected value ----------------------------------------------------------------------------


def forecast(asset, origin, made_at, steps, *, kind="model", source="v1", stale=False) -> Forecast:
    f = Forecast.objects.create(
        asset=asset,
        kind=kind,
        source=source,
        origin_time=origin,
        last_close=D(steps[0][1]),
        quantiles=[0.1, 0.5, 0.9],
        stale=stale,
        steps=[
            {"target_time": (origin + (i + 1) * HOUR).isoformat(), "values": values} for i, values in enumerate(steps)
        ],
    )
    Forecast.objects.filter(id=f.id).update(made_at=made_at)  # auto_now_add: set afterwards
    return f


def champion(asset, version: int) -> ModelVersion:
    return ModelVersion.objects.create(
        asset=asset,
        version=version,
        status=ModelVersion.Status.CHAMPION,
        data_start=at(2021, 6, 1),
        data_end=at(2022, 6, 1),
        data_candles=8760,
        data_digest="0" * 64,
        artifact=f"models/v{version}.pt",
        artifact_sha256="0" * 64,
        promoted_at=at(2022, 6, 1),
    )


def test_portfolio_forecast_sums_quantiles_and_holds_assets_without_forecast_flat(folio, three_assets):
    btc, eth, bnb = three_assets
    t = at(2022, 6, 1)
    add(folio, btc, "buy", "1.5", "100", when=t)  # 1.5 × 150 = 225 now
    add(folio, eth, "buy", "10", "10", when=t)  # 10 × 12 = 120
    add(folio, bnb, "buy", "2", "200", when=t)  # 2 × 250 = 500, no forecast
    champion(btc, 1)
    forecast(btc, NEWEST, at(2022, 7, 1, 0, 5), [["140", "155", "170"], ["130", "156", "185"], ["1", "2", "3"]])
    forecast(btc, NEWEST, at(2022, 7, 1, 0, 4), [["1", "1", "1"]] * 3, kind="baseline", source="baseline")
    forecast(eth, NEWEST - HOUR, at(2022, 6, 30, 22, 10), [["11", "12.5", "14"], ["10", "13", "16"]], stale=True)
    forecast(eth, NEWEST - DAY, at(2022, 6, 29, 23, 10), [["1", "1", "1"]] * 5)  # older: not used

    now = at(2022, 7, 1, 1)
    f = portfolio_detail(portfolio=folio, now=now)["forecast"]
    # Two steps: the shorter forecast (ETH) bounds them; times from the newest forecast (BTC).
    assert [p["t"] for p in f["points"]] == [(NEWEST + HOUR).isoformat(), (NEWEST + 2 * HOUR).isoformat()]
    assert [(p["low"], p["median"], p["high"]) for p in f["points"]] == [
        # 500 flat + 1.5 × (140, 155, 170) + 10 × (11, 12.5, 14)
        (D("820"), D("857.5"), D("895")),
        # 500 flat + 1.5 × (130, 156, 185) + 10 × (10, 13, 16)
        (D("795"), D("864"), D("937.5")),
    ]
    assert f["start"] == {"t": NEWEST, "value": D("845")}
    assert f["without_forecast"] == ["BNBUSDT"]
    assert f["kinds"] == ["model"]  # the champion's forecast, not the baseline at the same origin
    assert f["oldest_made_at"] == at(2022, 6, 30, 22, 10)
    assert f["oldest_origin"] == NEWEST - HOUR
    assert f["age"] == timedelta(hours=2, minutes=50)
    assert f["stale"] is True
    assert "quantiles" in f["method"]


def test_no_forecast_without_any_forecast_rows(folio, three_assets):
    add(folio, three_assets[0], "buy", "1", "100", when=at(2022, 6, 1))
    assert portfolio_detail(portfolio=folio)["forecast"] is None


# --- dashboard ----------------------------------------------------------------------------------


def test_dashboard_lists_every_portfolio_of_the_user_with_its_figures(
    holdings_folio, three_assets, user, django_user_model, django_assert_num_queries
):
    btc, eth, _ = three_assets
    second = Portfolio.objects.create(owner=user, name="Long term")
    add(second, eth, "buy", "5", "8", when=at(2022, 6, 2))  # 5 × 12 = 60 now, 5 × 10 = 50 a day ago
    Portfolio.objects.create(owner=user, name="Empty")
    bob = django_user_model.objects.create_user(username="bob", password="x-long-password-1")
    theirs = Portfolio.objects.create(owner=bob, name="Bob's")
    add(theirs, btc, "buy", "100", "1", when=at(2022, 6, 2))

    with django_assert_num_queries(3):
        rows = portfolio_summaries(user=user)
        by_name = {p.name: s for p, s in rows}
    assert [p.name for p, _ in rows] == ["Empty", "Long term", "Main"]
    main, long_term, empty = by_name["Main"], by_name["Long term"], by_name["Empty"]
    assert (main.value, main.change_24h, main.total_pnl) == (D("345"), D("65"), D("207.5"))
    assert (long_term.value, long_term.change_24h, long_term.total_pnl) == (D("60"), D("10"), D("20"))
    assert (empty.value, empty.total_pnl, empty.change_24h_pct) == (0, 0, None)


# --- query counts -------------------------------------------------------------------------------


def build(portfolio, *, transactions: int, holdings: int) -> None:
    """`holdings` assets with 40 days of candles and a forecast each; `transactions` buys and sells."""
    assets = [make_asset(f"A{i}USDT") for i in range(holdings)]
    start = at(2022, 5, 22)
    Candle.objects.bulk_create([candle(a, start + h * HOUR, 100 + h % 7) for a in assets for h in range(40 * 24)])
    for a in assets:
        forecast(a, start + (40 * 24 - 1) * HOUR, start + 40 * DAY, [["90", "100", "110"]] * 24)
    Transaction.objects.bulk_create(
        [
            Transaction(
                portfolio=portfolio,
                asset=assets[i % holdings],
                kind="sell" if sells else "buy",
                quantity=D("1") if sells else D("2"),
                unit_price=D("100"),
                fee=D("0.1"),
                executed_at=start + timedelta(minutes=3 * i + 1),
            )
            # Sells only once every asset has had buys: at most one in every four rows of an asset.
            for i in range(transactions)
            for sells in [i % 4 == 3 and i >= 4 * holdings]
        ]
    )
    portfolio_state_rebuild(portfolio=portfolio)


@pytest.mark.parametrize("transactions, holdings", [(10, 1), (1000, 1), (10, 5), (1000, 5)])
def test_portfolio_detail_query_count_does_not_grow(folio, transactions, holdings):
    build(folio, transactions=transactions, holdings=holdings)
    with CaptureQueriesContext(connection) as ctx:
        d = portfolio_detail(portfolio=folio)
    assert d["summary"].transactions == transactions
    assert len(d["summary"].holdings) == holdings
    assert d["forecast"] is not None and d["history"] and d["returns"]
    # stored positions, prices, stored day sums, the last days' transactions, daily closes,
    # newest forecast ids, forecasts
    assert len(ctx.captured_queries) == 7, [q["sql"][:120] for q in ctx.captured_queries]
