"""Milliseconds since the epoch (core.times): the one conversion every app uses, in Python and in
the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.times import EpochMs, datetime_to_ms, ms_to_datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A Binance close time: the last millisecond of its hour.
CLOSE = datetime(2017, 8, 17, 4, 59, 59, 999000, tzinfo=UTC)


def test_a_close_time_ending_in_999_ms_is_exact_both_ways():
    for hours in range(0, 24 * 365 * 8, 7):  # eight years of hours, a sample of each
        close = CLOSE + timedelta(hours=hours)
        ms = (close - EPOCH) // timedelta(milliseconds=1)  # the oracle: integer arithmetic
        assert datetime_to_ms(close) == ms
        assert ms_to_datetime(ms) == close


def test_an_aware_time_in_another_zone_is_the_same_instant():
    from zoneinfo import ZoneInfo

    paris = CLOSE.astimezone(ZoneInfo("Europe/Paris"))
    assert datetime_to_ms(paris) == datetime_to_ms(CLOSE) == 1502945999999
    assert ms_to_datetime(1502945999999).tzinfo is UTC


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive datetime"):
        datetime_to_ms(datetime(2022, 1, 1))


@pytest.mark.django_db
def test_the_database_counts_the_same_milliseconds():
    from forecasting.models import Candle
    from tests.factories import AssetFactory, candles

    rows = candles(AssetFactory(symbol="BTCUSDT"), [100, 101, 102])
    in_database = dict(
        Candle.objects.filter(id__in=[c.id for c in rows]).values_list(EpochMs("close_time"), EpochMs("open_time"))
    )
    assert in_database == {datetime_to_ms(c.close_time): datetime_to_ms(c.open_time) for c in rows}
