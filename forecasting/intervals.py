"""Binance kline intervals and their lengths."""

from datetime import timedelta

INTERVAL_MS = {
    "1m": 60_000,
    "3m": 3 * 60_000,
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "30m": 30 * 60_000,
    "1h": 3_600_000,
    "2h": 2 * 3_600_000,
    "4h": 4 * 3_600_000,
    "6h": 6 * 3_600_000,
    "8h": 8 * 3_600_000,
    "12h": 12 * 3_600_000,
    "1d": 86_400_000,
    "3d": 3 * 86_400_000,
    "1w": 7 * 86_400_000,
}
# Month candles have no fixed length, so they are not offered.
INTERVAL_CHOICES = [(k, k) for k in INTERVAL_MS]


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"Unknown candle interval {interval!r}; use one of {', '.join(INTERVAL_MS)}.") from None


def interval_delta(interval: str) -> timedelta:
    return timedelta(milliseconds=interval_ms(interval))
