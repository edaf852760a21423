"""Slices of the real BTCUSDT 1h candles as Series, and copies with some candles changed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from forecasting.ml.data import Series

HOUR_MS = 3_600_000
# BTCUSDT-1h rows 3400..6399 hold exactly one gap: 33 hours missing after 2018-02-08 00:00 UTC.
GAP_SLICE = slice(3400, 6400)
FIRST_AFTER_GAP = 790  # index in that slice of 2018-02-09 10:00 UTC


def load(data_dir, symbol: str = "BTCUSDT") -> pd.DataFrame:
    return pd.read_csv(data_dir / f"{symbol}-1h.csv")


def series(df: pd.DataFrame) -> Series:
    return Series.from_arrays(
        times=df.open_time,
        open=df.open,
        high=df.high,
        low=df.low,
        close=df.close,
        volume=df.volume,
        interval_ms=HOUR_MS,
    )


def scaled_after(s: Series, start: int, factor: float = 1.5) -> Series:
    """A copy with closes from `start` on multiplied by `factor` (and volumes tripled)."""
    close, volume = s.close.copy(), s.volume.copy()
    close[start:] *= factor
    volume[start:] *= 3
    return dataclasses.replace(s, close=close, volume=volume)


def ramped_before(s: Series, stop: int) -> Series:
    """A copy whose candles before `stop` are scaled by a ramp, which changes their returns."""
    f = np.ones(len(s))
    f[:stop] = np.linspace(0.7, 1.4, stop)
    return dataclasses.replace(
        s, open=s.open * f, high=s.high * f, low=s.low * f, close=s.close * f, volume=s.volume * f
    )


def when(ms) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M") + " UTC"
