"""track_asset and refresh_candles against the fake Binance server (settings.BINANCE_API_URL)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from forecasting.models import Asset, Candle

from .candle_checks import assert_stored_match_csv, csv_times, t_str, utc


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_track_asset_and_refresh_candles(fake_binance, db, data_dir):
    assert run("track_asset", "btcusdt") == "Tracking BTCUSDT (BTC/USDT, 1h).\n"
    asset = Asset.objects.get(symbol="BTCUSDT")

    expected = csv_times(data_dir / "BTCUSDT-1h.csv", utc(2022, 9, 1))
    out = run("refresh_candles", "BTCUSDT", "--since", "2022-09-01")
    assert out == f"BTCUSDT: {len(expected)} new, 0 updated, 0 unchanged candles.\n"
    assert_stored_match_csv(asset, data_dir, expected)

    fake_binance.requests.clear()
    assert run("refresh_candles") == "BTCUSDT: 0 new, 0 updated, 0 unchanged candles.\n"
    assert [r.params["startTime"] for r in fake_binance.calls("klines")] == [str(max(expected) + 3_600_000)]


def test_track_asset_unknown_symbol_is_a_command_error(fake_binance, db):
    with pytest.raises(CommandError, match="^Binance does not list the symbol NOPEUSDT.$"):
        run("track_asset", "NOPEUSDT")
    assert not Asset.objects.exists()


def test_track_asset_when_binance_fails_is_a_command_error(fake_binance, db, settings):
    settings.BINANCE_MAX_RETRIES = 1
    fake_binance.fail_next("500", count=None, json=True)
    says = r"Binance answered HTTP 500 to exchange info for BTCUSDT: .*\(after 2 attempts\)"
    with pytest.raises(CommandError, match=says):
        run("track_asset", "BTCUSDT")
    assert not Asset.objects.exists()


def test_refresh_candles_of_an_untracked_symbol_is_a_command_error(fake_binance, db):
    with pytest.raises(CommandError, match="Not tracked: NOPEUSDT. Run track_asset first."):
        run("refresh_candles", "NOPEUSDT")
    assert not fake_binance.calls()


def test_refresh_candles_when_binance_fails_is_a_command_error(fake_binance, db, settings):
    run("track_asset", "BTCUSDT")
    settings.BINANCE_MAX_RETRIES = 1
    fake_binance.fail_next("500", count=None, path="klines")
    says = r"^BTCUSDT: Binance answered HTTP 500 to klines BTCUSDT 1h from 2022-10-01 00:00 UTC"
    with pytest.raises(CommandError, match=says):
        run("refresh_candles", "BTCUSDT", "--since", "2022-10-01")
    assert not Candle.objects.exists()


def test_refresh_candles_with_a_malformed_row_is_a_command_error(fake_binance, db, data_dir):
    run("track_asset", "BTCUSDT")
    fake_binance.fail_next("malformed", row=3, field="close", value="-1")
    bad = csv_times(data_dir / "BTCUSDT-1h.csv", utc(2022, 10, 1))[3]
    with pytest.raises(CommandError, match=f"^BTCUSDT: BTCUSDT 1h candle at {t_str(bad)}: prices must be positive"):
        run("refresh_candles", "BTCUSDT", "--since", "2022-10-01")
    assert not Candle.objects.exists()
