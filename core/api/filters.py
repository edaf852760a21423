"""Filters shared by the API's lists."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField


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
