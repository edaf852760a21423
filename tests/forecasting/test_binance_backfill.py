"""Backfill and refresh through python-binance's real Client against the fake Binance server
serving the real BTCUSDT data: exact values, gaps, incremental refresh, the still-open candle,
and every fault the adapter must survive (or report) without duplicate or corrupted candles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from forecasting.binance import BinanceError, BinanceMarketData, UnknownSymbolError
from forecasting.klines import KlineError
from forecasting.models import Asset, Candle
from forecasting.selectors.market_data import candle_gaps
from forecasting.services.market_data import asset_track, candles_backfill, candles_refresh
from tests.fakes.binance_server import MISSING

from .candle_checks import HOUR_MS, assert_stored_match_csv, csv_times, ms, t_str, utc

# Four pages (1000, 1000, 1000, the rest) of 2021 data for the fault tests.
START = utc(2021, 1, 1)
END = START + timedelta(hours=3199)


class Sleeps(list):
    """Stands in for time.sleep: records the adapter's waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def client(fake_binance, sleeps):
    # 1 s: short for the slow-answer tests, yet no spurious timeout on a busy machine.
    return BinanceMarketData(api_url=fake_binance.api_url, timeout=1.0, max_retries=3, sleep=sleeps)


@pytest.fixture
def btc(fake_binance, db):
    return asset_track(symbol="BTCUSDT", interval="1h")


@pytest.fixture
def btc_csv(data_dir):
    return data_dir / "BTCUSDT-1h.csv"


def klines_starts(server) -> list[int]:
    return [int(r.params["startTime"]) for r in server.calls("klines")]


# --- full backfill -------------------------------------------------------------------------------


def test_backfill_from_first_candle_stores_every_csv_candle_exactly(
    on_postgres, fake_binance, client, btc, btc_csv, data_dir, sleeps
):
    result = candles_backfill(asset=btc, start=None, client=client)

    assert (result.created, result.updated, result.skipped_open) == (45_024, 0, 0)
    assert result.pages == 46
    # One call for the first candle, then 46 pages; no retries were needed.
    klines = fake_binance.calls("klines")
    assert len(klines) == 47 and not sleeps
    assert klines[0].params["startTime"] == "0" and klines[0].params["limit"] == "1"
    assert all(r.params["limit"] == "1000" for r in klines[1:])
    assert assert_stored_match_csv(btc, data_dir, csv_times(btc_csv)) == 45_024

    gaps = candle_gaps(asset=btc)
    assert (len(gaps), sum(g.missing for g in gaps)) == (27, 127)
    feb8 = [g for g in gaps if g.start.date().isoformat() == "2018-02-08"]
    assert len(feb8) == 1
    assert (feb8[0].start, feb8[0].end, feb8[0].missing) == (utc(2018, 2, 8, 1), utc(2018, 2, 9, 9), 33)

    c = Candle.objects.get(asset=btc, open_time=utc(2021, 1, 1))
    assert (c.open, c.high, c.low, c.close, c.volume) == (
        Decimal("28923.63"),
        Decimal("29031.34"),
        Decimal("28690.17"),
        Decimal("28995.13"),
        Decimal("2311.811445"),
    )
    top = Candle.objects.filter(asset=btc).order_by("-high", "open_time").first()
    assert (top.high, top.open_time) == (Decimal("69000.00"), utc(2021, 11, 10, 14))
    assert Candle.objects.filter(asset=btc).order_by("-open_time").first().close == Decimal("19093.63")


# --- incremental refresh -------------------------------------------------------------------------


def test_refresh_after_partial_backfill_fetches_only_new_candles(fake_binance, client, btc, btc_csv, data_dir):
    part_end = utc(2022, 9, 1)
    first = candles_backfill(asset=btc, start=utc(2022, 6, 1), end=part_end, client=client)
    assert first.created == len(csv_times(btc_csv, utc(2022, 6, 1), part_end))
    fake_binance.requests.clear()

    result = candles_refresh(asset=btc, client=client)

    new_times = csv_times(btc_csv, part_end + timedelta(hours=1))
    assert result.created == len(new_times) and result.updated == 0
    # Asked only from the candle after the newest stored one: no earliest-candle probe, one page.
    assert klines_starts(fake_binance) == [ms(part_end) + HOUR_MS]
    assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, utc(2022, 6, 1)))

    fake_binance.requests.clear()
    again = candles_refresh(asset=btc, client=client)
    assert (again.created, again.updated, again.written) == (0, 0, 0)
    assert klines_starts(fake_binance) == [max(new_times) + HOUR_MS]


def test_refresh_of_a_new_asset_backfills_from_the_first_candle(fake_binance, db, client, data_dir):
    # 1d keeps it short: 1,881 candles in two pages.
    eth = asset_track(symbol="ETHUSDT", interval="1d")
    result = candles_refresh(asset=eth, client=client)
    assert result.created == 1881
    assert klines_starts(fake_binance)[0] == 0
    assert assert_stored_match_csv(eth, data_dir, csv_times(data_dir / "ETHUSDT-1d.csv")) == 1881


def test_backfill_over_stored_candles_writes_nothing(fake_binance, client, btc, btc_csv, data_dir):
    candles_backfill(asset=btc, start=START, end=END, client=client)
    again = candles_backfill(asset=btc, start=START, end=END, client=client)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(csv_times(btc_csv, START, END)))
    assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, START, END))


def test_backfill_corrects_a_changed_candle_and_leaves_the_others(fake_binance, client, btc, btc_csv, data_dir):
    candles_backfill(asset=btc, start=START, end=END, client=client)
    wrong = Candle.objects.get(asset=btc, open_time=utc(2021, 1, 1))
    Candle.objects.filter(pk=wrong.pk).update(close=Decimal("1.5"), low=Decimal("1.5"))
    ids = dict(Candle.objects.filter(asset=btc).values_list("open_time", "id"))

    again = candles_backfill(asset=btc, start=START, end=END, client=client)

    assert (again.created, again.updated, again.unchanged) == (0, 1, len(csv_times(btc_csv, START, END)) - 1)
    assert dict(Candle.objects.filter(asset=btc).values_list("open_time", "id")) == ids  # updated in place
    assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, START, END))


# --- the still-open candle -----------------------------------------------------------------------


def test_still_open_candle_is_stored_only_after_it_closes(fake_binance, client, btc, data_dir, btc_csv):
    new_year = ms(utc(2021, 1, 1))
    fake_binance.now_ms = new_year + 30 * 60_000  # 2021-01-01 00:30, inside the 00:00 candle

    result = candles_backfill(asset=btc, start=utc(2020, 12, 31), client=client)

    assert (result.created, result.skipped_open) == (24, 1)
    assert not Candle.objects.filter(asset=btc, open_time=utc(2021, 1, 1)).exists()
    # The fake did send the open candle: skipping it was the adapter's decision.
    assert fake_binance.calls("klines")[-1].status == 200

    # At its close_time (00:59:59.999) the candle is still open.
    fake_binance.now_ms = new_year + HOUR_MS - 1
    assert candles_refresh(asset=btc, client=client).written == 0

    fake_binance.now_ms = new_year + HOUR_MS  # 01:00: 00:00 closed, 01:00 open
    result = candles_refresh(asset=btc, client=client)
    assert (result.created, result.skipped_open) == (1, 1)
    c = Candle.objects.get(asset=btc, open_time=utc(2021, 1, 1))
    assert (c.open, c.high, c.low, c.close, c.volume) == (
        Decimal("28923.63"),
        Decimal("29031.34"),
        Decimal("28690.17"),
        Decimal("28995.13"),
        Decimal("2311.811445"),
    )

    fake_binance.now_ms = new_year + 5 * HOUR_MS + 1
    assert candles_refresh(asset=btc, client=client).created == 4
    assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, utc(2020, 12, 31), utc(2021, 1, 1, 4)))


# --- faults that are retried ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["429", "418"])
def test_rate_limit_is_retried_after_retry_after(fake_binance, client, btc, btc_csv, data_dir, sleeps, status):
    fake_binance.fail_next(status, path="klines", after=1, retry_after=2)

    result = candles_backfill(asset=btc, start=START, end=END, client=client)

    assert sleeps == [2.0]
    statuses = [r.status for r in fake_binance.calls("klines")]
    assert statuses == [200, int(status), 200, 200, 200]
    starts = klines_starts(fake_binance)
    assert starts[1] == starts[2], "the refused page was asked again"
    expected = csv_times(btc_csv, START, END)
    assert result.created == len(expected)
    assert_stored_match_csv(btc, data_dir, expected)


@pytest.mark.parametrize("json_body", [False, True])
def test_server_errors_are_retried(fake_binance, client, btc, btc_csv, data_dir, sleeps, json_body):
    fake_binance.fail_next("500", count=2, path="klines", after=2, json=json_body)

    result = candles_backfill(asset=btc, start=START, end=END, client=client)

    assert len(sleeps) == 2 and all(0 < s <= 2.0 for s in sleeps)
    assert [r.status for r in fake_binance.calls("klines")] == [200, 200, 500, 500, 200, 200]
    expected = csv_times(btc_csv, START, END)
    assert result.created == len(expected)
    assert_stored_match_csv(btc, data_dir, expected)


def test_slow_answer_times_out_and_is_retried(fake_binance, client, btc, btc_csv, data_dir, sleeps):
    fake_binance.fail_next("slow", path="klines", after=1, delay=1.5)

    result = candles_backfill(asset=btc, start=START, end=END, client=client)

    assert len(sleeps) == 1
    starts = klines_starts(fake_binance)
    assert len(starts) == 5 and starts[1] == starts[2]
    expected = csv_times(btc_csv, START, END)
    assert result.created == len(expected)
    assert_stored_match_csv(btc, data_dir, expected)


def test_slow_server_time_is_retried(fake_binance, client, btc, btc_csv, data_dir, sleeps):
    fake_binance.fail_next("slow", path="time", delay=1.5)
    result = candles_backfill(asset=btc, start=START, end=END, client=client)
    assert len(sleeps) == 1 and len(fake_binance.calls("time")) == 2
    assert result.created == len(csv_times(btc_csv, START, END))


# --- faults that stop the backfill ---------------------------------------------------------------


def test_persistent_server_error_keeps_earlier_pages(
    transactional_db, fake_binance, client, btc, btc_csv, data_dir, sleeps
):
    fake_binance.fail_next("500", count=None, path="klines", after=2)

    with pytest.raises(BinanceError) as err:
        candles_backfill(asset=btc, start=START, end=END, client=client)

    message = str(err.value)
    assert "HTTP 500" in message and "klines BTCUSDT 1h" in message and "after 4 attempts" in message
    third_page = csv_times(btc_csv, START, END)[2000]
    assert t_str(third_page) in message
    assert len(sleeps) == 3  # max_retries
    # Outside any transaction: what is stored is committed. The two pages stay, nothing of the third.
    assert not connection.in_atomic_block
    assert assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, START, END)[:2000]) == 2000


@pytest.mark.parametrize(
    "field, value, says",
    [("high", "abc", "high is not a number: 'abc'"), ("volume", MISSING, "expected at least 7 fields")],
)
def test_malformed_row_refuses_its_page_and_keeps_earlier_pages(
    transactional_db, fake_binance, client, btc, btc_csv, data_dir, sleeps, field, value, says
):
    fake_binance.fail_next("malformed", after=2, row=500, field=field, value=value)

    with pytest.raises(KlineError) as err:
        candles_backfill(asset=btc, start=START, end=END, client=client)

    bad_row = csv_times(btc_csv, START, END)[2500]
    message = str(err.value)
    assert message.startswith(f"BTCUSDT 1h candle at {t_str(bad_row)}: ") and says in message
    assert not sleeps  # bad data is not a transient error
    assert assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, START, END)[:2000]) == 2000


def test_refresh_after_a_failed_backfill_completes_without_duplicates(fake_binance, client, btc, btc_csv, data_dir):
    fake_binance.fail_next("500", count=None, path="klines", after=1)
    with pytest.raises(BinanceError):
        candles_backfill(asset=btc, start=START, end=END, client=client)
    fake_binance.reset()

    result = candles_backfill(asset=btc, start=START, end=END, client=client)
    assert (result.created, result.unchanged) == (len(csv_times(btc_csv, START, END)) - 1000, 1000)
    assert_stored_match_csv(btc, data_dir, csv_times(btc_csv, START, END))


# --- unknown symbols -----------------------------------------------------------------------------


def test_tracking_an_unlisted_symbol_fails_and_creates_nothing(fake_binance, db):
    with pytest.raises(UnknownSymbolError, match="Binance does not list the symbol NOPEUSDT"):
        asset_track(symbol="nopeusdt")
    assert not Asset.objects.exists()
    assert not PeriodicTask.objects.filter(name__contains="NOPEUSDT").exists()
    assert fake_binance.calls("exchangeInfo")[0].params == {"symbol": "NOPEUSDT"}


def test_tracking_takes_base_and_quote_from_binance(fake_binance, db):
    asset = asset_track(symbol="BNBUSDT", interval="1d")
    assert (asset.symbol, asset.base_asset, asset.quote_asset, asset.interval) == ("BNBUSDT", "BNB", "USDT", "1d")


def test_tracking_when_binance_is_down_is_a_binance_error(fake_binance, db, settings):
    settings.BINANCE_MAX_RETRIES = 1
    fake_binance.fail_next("500", count=None)
    with pytest.raises(BinanceError, match="HTTP 500 to exchange info for BTCUSDT"):
        asset_track(symbol="BTCUSDT")
    assert not Asset.objects.exists()
