"""The "candles" entry of /healthz: is every tracked asset's newest candle recent enough?"""

from __future__ import annotations

from django.conf import settings

from .intervals import interval_ms
from .selectors.market_data import newest_candle_ages


def candles_check() -> tuple[bool, list[dict]]:
    candles = []
    fresh = True
    limit = settings.HEALTH_MAX_CANDLE_AGE_INTERVALS
    for row in newest_candle_ages():
        asset = row["asset"]
        if limit:
            # An asset without any candle counts as stale: its backfill never ran.
            max_age = limit * interval_ms(asset.interval) / 1000
            stale = row["age_seconds"] is None or row["age_seconds"] > max_age
        else:
            stale = False
        fresh = fresh and not stale
        candles.append(
            {
                "symbol": asset.symbol,
                "interval": asset.interval,
                "newest_close": row["newest_close"].isoformat() if row["newest_close"] else None,
                "age_seconds": round(row["age_seconds"], 1) if row["age_seconds"] is not None else None,
                "stale": stale,
            }
        )
    return fresh, candles
