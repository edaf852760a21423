"""Kline rows: parsing and validation shared by the Binance client and CSV import.

A row is never stored half-checked: every field is parsed into an exact Decimal and the
candle's internal consistency is checked, so a malformed row is an error, not a silent zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from core.times import ms_to_datetime

from .intervals import interval_ms

# Candle price/volume columns hold 8 decimal places (Binance's precision).
DECIMAL_PLACES = 8
MAX_INTEGER_DIGITS = 20


class KlineError(ValueError):
    """A kline row that cannot be stored. The message says where it came from."""


@dataclass(frozen=True, slots=True)
class Kline:
    open_time: int  # epoch milliseconds UTC
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: int

    @property
    def open_dt(self) -> datetime:
        return ms_to_datetime(self.open_time)

    @property
    def close_dt(self) -> datetime:
        return ms_to_datetime(self.close_time)


def describe_time(ms: int | None) -> str:
    if ms is None:
        return "unknown open time"
    try:
        return ms_to_datetime(ms).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return f"open time {ms}"


def _decimal(value, name: str) -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise KlineError(f"{name} is not a number: {value!r}") from None
    if not d.is_finite():
        raise KlineError(f"{name} is not a finite number: {value!r}")
    sign, digits, exponent = d.normalize().as_tuple()
    if exponent < -DECIMAL_PLACES:
        raise KlineError(f"{name} has more than {DECIMAL_PLACES} decimal places: {value!r}")
    if len(digits) + min(exponent, 0) > MAX_INTEGER_DIGITS:
        raise KlineError(f"{name} is too large: {value!r}")
    return d


def _int(value, name: str) -> int:
    if isinstance(value, bool):
        raise KlineError(f"{name} is not an integer: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise KlineError(f"{name} is not an integer: {value!r}")
    return int(text)


def parse_kline(fields, *, interval: str, time_unit: str = "ms") -> Kline:
    """Turn one raw row (Binance's field order) into a checked Kline.

    `time_unit` is "ms" or "us" (Binance's spot data dumps switched to microseconds in 2025).
    Raises KlineError with a message that does not yet say where the row came from; callers add that.
    """
    if not isinstance(fields, (list, tuple)) or len(fields) < 7:
        raise KlineError(f"expected at least 7 fields, got {fields!r}")
    open_time = _int(fields[0], "open_time")
    close_time = _int(fields[6], "close_time")
    if time_unit == "us":
        open_time //= 1000
        close_time //= 1000
    o = _decimal(fields[1], "open")
    h = _decimal(fields[2], "high")
    lo = _decimal(fields[3], "low")
    c = _decimal(fields[4], "close")
    v = _decimal(fields[5], "volume")
    if min(o, h, lo, c) <= 0:
        raise KlineError(f"prices must be positive (open {o}, high {h}, low {lo}, close {c})")
    if v < 0:
        raise KlineError(f"volume is negative: {v}")
    if h < max(o, c, lo) or lo > min(o, c, h):
        raise KlineError(f"high/low do not bound open and close (open {o}, high {h}, low {lo}, close {c})")
    expected_close = open_time + interval_ms(interval) - 1
    if close_time != expected_close:
        raise KlineError(
            f"close_time {close_time} does not match a {interval} candle opening at {open_time} "
            f"(expected {expected_close})"
        )
    if open_time < 0:
        raise KlineError(f"open_time is negative: {open_time}")
    return Kline(open_time, o, h, lo, c, v, close_time)
