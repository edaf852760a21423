"""Filters shared by the API's lists."""

from __future__ import annotations

from datetime import UTC, date

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField

from ..time_range import time_range_lookups


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, turned into UTC here: Python accepts offsets up to ±23:59 but PostgreSQL
    only ±15:59, and an offset at the edge of the calendar may not convert at all."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("This time is out of range.", code="overflow") from None


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class UtcDayOrTimeField(UtcIsoDateTimeField):
    """A bare date (2024-03-01) stays a date, meaning its whole UTC day; anything else is an ISO
    8601 time as above."""

    def to_python(self, value):
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass  # not a date: the time parser below says what is wrong
        return super().to_python(value)


class TimeRangeFilter(filters.Filter):
    """`start` or `end` of a time range with core.time_range's meaning: both ends included, a date
    is its whole UTC day."""

    field_class = UtcDayOrTimeField

    def __init__(self, *args, side: str, **kwargs):
        self.side = side
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        return qs.filter(**time_range_lookups(self.field_name, **{self.side: value}))
