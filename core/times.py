"""Milliseconds since the epoch, as Binance and the charts count time, to and from aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.db.models import BigIntegerField, Func

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def datetime_to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError("naive datetime: times here are UTC and must carry a timezone")
    # Integer arithmetic, not a float timestamp: exact for a close time ending in .999 ms.
    return (dt - _EPOCH) // _MS


def now_ms() -> int:
    return int(time.time() * 1000)


class EpochMs(Func):
    """A datetime column as integer milliseconds since the epoch, computed by the database: reading
    years of candles, converting each value to a datetime and back costs more than the query."""

    output_field = BigIntegerField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000)::bigint")

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps SQLite datetimes as ISO text; julianday reads it (UTC, as Django writes it).
        return self.as_sql(
            compiler, connection, template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400000) AS INTEGER)"
        )
