"""What "from" and "to" mean wherever lists are filtered by time, on pages and in the API alike."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta


def time_range_lookups(field: str, *, start: date | datetime | None = None, end: date | datetime | None = None) -> dict:
    """ORM lookups for `field` from `start` to `end`, both included. A date is its whole UTC day
    (so "to 2024-03-01" keeps that day's rows); a datetime is that instant. Ranges, not functions of
    the column, so an index on it serves them."""
    lookups = {}
    if start is not None:
        lookups[f"{field}__gte"] = start if isinstance(start, datetime) else datetime.combine(start, time.min, UTC)
    if end is not None:
        if isinstance(end, datetime):
            lookups[f"{field}__lte"] = end
        elif end < date.max:
            lookups[f"{field}__lt"] = datetime.combine(end + timedelta(days=1), time.min, UTC)
    return lookups
