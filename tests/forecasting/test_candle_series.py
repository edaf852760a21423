"""candle_series without a digest reads times and prices converted by the database: the Series must
be exactly the one the digest path builds from the decimals, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from forecasting.ml.data import SeriesError
from forecasting.models import Candle
from forecasting.selectors.market_data import candle_series
from tests.factories import HOUR, NEWEST, AssetFactory, CandleFactory

pytestmark = pytest.mark.django_db

FIELDS = ("times", "open", "high", "low", "close", "volume")


def assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.times.dtype == b.times.dtype == np.int64 and a.interval_ms == b.interval_ms


@pytest.fixture
def asset():
    """300 hourly candles with awkward decimals (eight places, tiny and large) and two gaps."""
    asset = AssetFactory(symbol="ODDUSDT")
    rng = random.Random(7)
    rows = []
    t = NEWEST - 320 * HOUR
    for i in range(300):
        t += HOUR * (5 if i in (90, 200) else 1)
        low = Decimal(rng.randint(1, 10**12)) / Decimal(10**8)
        high = low + Decimal(rng.randint(0, 10**9)) / Decimal(10**8)
        rows.append(
            CandleFactory.build(
                asset=asset,
                open_time=t,
                close_time=t + HOUR - timedelta(milliseconds=1),
                open=low,
                close=high,
                high=high,
                low=low,
                volume=Decimal(rng.randint(0, 10**15)) / Decimal(10**8),
            )
        )
    Candle.objects.bulk_create(rows)
    return asset


def test_the_fast_read_is_exactly_the_decimal_read(asset):
    slow, digest = candle_series(asset=asset)
    fast, none = candle_series(asset=asset, digest=False)
    assert len(digest) == 64 and none == "" and len(fast) == 300
    assert_same(fast, slow)
    assert fast.close[-1] == float(Candle.objects.filter(asset=asset).latest("open_time").close)


@pytest.mark.parametrize("window", [{"days": 3}, {"limit": 50}, {"since": NEWEST - 100 * HOUR}])
def test_the_fast_read_keeps_the_range(asset, window):
    slow, _ = candle_series(asset=asset, **window)
    fast, _ = candle_series(asset=asset, digest=False, **window)
    assert 0 < len(fast) < 300
    assert_same(fast, slow)


@pytest.mark.parametrize("digest", [True, False])
def test_an_empty_range_says_so(asset, digest):
    with pytest.raises(SeriesError, match="ODDUSDT has no candles in the range"):
        candle_series(asset=asset, since=NEWEST + 10 * HOUR, digest=digest)
