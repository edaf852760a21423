"""Serializer pieces every API answer shares: decimals written by one rule."""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from ..formatting import decimal_string


class DecimalField(serializers.DecimalField):
    """A decimal as the API writes every decimal: a string in plain notation without trailing zeros
    ("0.25", "100", "0"; core.formatting.decimal_string). DRF's own pads to `decimal_places`
    ("0.25000000"), which made the same quantity read differently from one endpoint to the next.
    Input is DRF's, unchanged: "0.25", "0.25000000" and 0.25 are all accepted."""

    def to_representation(self, value):
        return decimal_string(value, places=self.decimal_places if self.decimal_places is not None else 8, trim=True)


class ModelSerializer(serializers.ModelSerializer):
    """DRF's, with the model's decimal columns answered as DecimalField above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalField,
    }
