"""Milliseconds since the epoch, as Binance and the charts count time, to and from aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: times here are UTC and must carry a timezone")
    return int(dt.timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)
