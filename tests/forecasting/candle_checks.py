"""Checks of stored candles against the real CSV files the fake Binance serves."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path

from forecasting.models import Asset, Candle

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR_MS = 3_600_000


def ms(dt: datetime) -> int:
    # Integer arithmetic: close times end in .999 and must not be rounded.
    return (dt - EPOCH) // timedelta(milliseconds=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@cache
def csv_candles(path: Path) -> dict[int, tuple]:
    """open_time ms -> (open, high, low, close, volume as Decimal, close_time ms)."""
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        return {int(r[0]): (*(Decimal(x) for x in r[1:6]), int(r[6])) for r in reader if r}


def csv_times(path: Path, start: datetime | None = None, end: datetime | None = None) -> list[int]:
    lo = ms(start) if start else -1
    hi = ms(end) if end else 1 << 62
    return [t for t in csv_candles(path) if lo <= t <= hi]


def stored_candles(asset: Asset) -> dict[int, tuple]:
    rows = (
        Candle.objects.filter(asset=asset, interval=asset.interval)
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume", "close_time")
    )
    return {ms(r[0]): (*r[1:6], ms(r[6])) for r in rows}


def assert_stored_match_csv(asset: Asset, data_dir: Path, expected_times: list[int] | None = None) -> int:
    """No duplicate, every stored candle equal (Decimal-exact) to its CSV row, and, if given,
    exactly the expected open times stored. Returns the number of stored candles."""
    qs = Candle.objects.filter(asset=asset, interval=asset.interval)
    total = qs.count()
    assert total == qs.order_by().values("open_time").distinct().count(), "duplicate candles stored"
    truth = csv_candles(data_dir / f"{asset.symbol}-{asset.interval}.csv")
    stored = stored_candles(asset)
    assert len(stored) == total
    wrong = [t for t, values in stored.items() if truth.get(t) != values]
    assert not wrong, (
        f"{len(wrong)} stored candles differ from the CSV; first at {t_str(wrong[0])}: "
        f"stored {stored[wrong[0]]}, CSV {truth.get(wrong[0])}"
    )
    if expected_times is not None:
        missing = sorted(set(expected_times) - set(stored))
        extra = sorted(set(stored) - set(expected_times))
        assert not missing and not extra, (
            f"{len(missing)} expected candles missing (first {missing[:1]}), "
            f"{len(extra)} unexpected (first {extra[:1]})"
        )
    return total


def t_str(ms_value: int) -> str:
    return (EPOCH + timedelta(milliseconds=ms_value)).strftime("%Y-%m-%d %H:%M UTC")
