"""Binance misbehaving during a backfill run by the real processes: a Celery worker through Redis
(429 with Retry-After, 5xx, a too-slow answer: all retried) and the management command in a
subprocess (a malformed row: the command fails naming symbol and open time, earlier pages stay,
no half page, and a rerun completes). The in-process adapter tests are in
tests/forecasting/test_binance_backfill.py."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from forecasting.models import Candle
from forecasting.services.market_data import asset_track, candles_upsert, read_klines_csv
from forecasting.tasks import candles_refresh_task
from tests.forecasting.candle_checks import HOUR_MS, assert_stored_match_csv, csv_times, ms, t_str, utc
from tests.reliability import record
from tests.support.processes import ROOT, start_worker, stop, wait_for

from .conftest import subprocess_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

# Four pages of 2021 candles (1000, 1000, 1000, 200); Binance's clock is frozen an hour after the
# last one opened, so that one is closed and the next (open "now") is left out.
START = utc(2021, 1, 1)
END = START + timedelta(hours=3199)
RETRY_AFTER = 1.5


@pytest.fixture
def btc(fake_binance, data_dir):
    fake_binance.now_ms = ms(END) + HOUR_MS
    return asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")


def duplicates(asset) -> int:
    qs = Candle.objects.filter(asset=asset)
    return qs.count() - qs.values("open_time").distinct().count()


def test_worker_backfill_retries_429_after_retry_after_5xx_and_timeout_and_stores_every_candle_once(
    on_postgres, fake_binance, btc, data_dir, tmp_path, redis_url
):  # noqa: F811
    btc_csv = data_dir / "BTCUSDT-1h.csv"
    # The day before START is stored: the refresh task continues from there.
    before = [k for k in read_klines_csv(btc_csv, interval="1h") if ms(START) - 24 * HOUR_MS <= k.open_time < ms(START)]
    candles_upsert(asset=btc, interval="1h", klines=before)
    expected = csv_times(btc_csv, START - timedelta(hours=24), END)
    # Page 2 is refused with 429, page 3 twice with a 5xx, page 4 answers too late the first time.
    fake_binance.fail_next("429", path="klines", after=1, retry_after=RETRY_AFTER)
    fake_binance.fail_next("500", count=2, path="klines", after=2)
    fake_binance.fail_next("slow", path="klines", after=3, delay=3.0)

    log = tmp_path / "worker.log"
    env = subprocess_env(redis_url, tmp_path / "media", MUR_BINANCE_API_URL=fake_binance.api_url)
    worker = start_worker(env, "ingest", "fault-ingest", log)
    try:
        candles_refresh_task.delay(btc.id)
        wait_for(
            lambda: "candles_refresh_task" in log.read_text() and "succeeded" in log.read_text(),
            120,
            "the refresh task to finish",
            log,
        )
    finally:
        stop(worker)

    calls = fake_binance.calls("klines")
    starts = [int(c.params["startTime"]) for c in calls]
    statuses = [c.status for c in calls]
    assert statuses[:6] == [200, 429, 200, 500, 500, 200] and statuses[7] == 200 and len(calls) == 8
    # Every refused or unanswered page was asked again, the same page.
    assert starts[1] == starts[2] and starts[3] == starts[4] == starts[5] and starts[6] == starts[7]
    assert len(set(starts)) == 4
    # Retry-After honoured by the worker's real sleep (the adapter caps it at BINANCE_BACKOFF_MAX = 2 s).
    waited_after_429 = calls[2].received_at - calls[1].received_at
    assert RETRY_AFTER <= waited_after_429 < RETRY_AFTER + 2
    # The slow answer was given up after the 2 s timeout, before the server's 3 s delay ended.
    assert calls[7].received_at - calls[6].received_at < 3.0
    assert duplicates(btc) == 0
    stored = assert_stored_match_csv(btc, data_dir, expected)
    assert stored == len(expected)
    text = log.read_text()
    assert "Binance HTTP 429" in text and "Binance HTTP 500" in text and "ReadTimeout" in text
    record(
        "faults",
        "Binance answered 429, 5xx and too slowly during a backfill by a Celery worker",
        lost=len(expected) - stored,
        duplicated=duplicates(btc),
        klines_requests=len(calls),
        statuses=statuses,
        seconds_waited_after_429=round(waited_after_429, 2),
        retry_after=RETRY_AFTER,
        candles_stored=stored,
    )


def test_malformed_row_fails_the_command_naming_it_keeps_whole_pages_and_a_rerun_completes(
    on_postgres, fake_binance, btc, data_dir, tmp_path
):
    btc_csv = data_dir / "BTCUSDT-1h.csv"
    expected = csv_times(btc_csv, START, END)
    env = subprocess_env("", tmp_path / "media", MUR_BINANCE_API_URL=fake_binance.api_url)
    command = [sys.executable, "manage.py", "refresh_candles", "BTCUSDT", "--since", f"{START:%Y-%m-%d}"]
    fake_binance.fail_next("malformed", after=2, row=500, field="high", value="abc")

    failed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert failed.returncode != 0
    bad = expected[2500]
    assert f"CommandError: BTCUSDT: BTCUSDT 1h candle at {t_str(bad)}: high is not a number: 'abc'" in failed.stderr
    assert "Traceback" not in failed.stderr
    # Pages one and two are stored whole; nothing of the third (whose row 500 was bad).
    assert assert_stored_match_csv(btc, data_dir, expected[:2000]) == 2000

    fake_binance.reset()
    fake_binance.now_ms = ms(END) + HOUR_MS
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert rerun.returncode == 0, rerun.stderr
    assert f"BTCUSDT: {len(expected) - 2000} new, 0 updated, 2000 unchanged candles." in rerun.stdout
    stored = assert_stored_match_csv(btc, data_dir, expected)
    assert stored == len(expected) and duplicates(btc) == 0
    record(
        "faults",
        "Binance sent a malformed row in the third page of a backfill (management command)",
        lost=len(expected) - stored,
        duplicated=duplicates(btc),
        candles_kept_after_failure=2000,
        candles_after_rerun=stored,
        exit_code=failed.returncode,
    )
