"""train() refuses candles it cannot use, and says what is wrong and when."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forecasting.ml.data import Series, SeriesError
from forecasting.ml.train import TrainConfig, TrainingDiverged, train

from .candles import HOUR_MS, when
from .conftest import SMALL

K = 1500  # the candle that gets broken


@pytest.fixture
def good(recent) -> Series:
    return recent.tail(2000)


def _with(s: Series, **changes) -> Series:
    # dataclasses.replace does not validate, so the broken series reaches train().
    return dataclasses.replace(s, **changes)


def test_nan_price(good):
    close = good.close.copy()
    close[K] = np.nan
    with pytest.raises(SeriesError, match="close is NaN") as err:
        train(_with(good, close=close), SMALL)
    assert when(good.times[K]) in str(err.value)
    with pytest.raises(SeriesError, match="close is NaN"):
        Series.from_arrays(
            times=good.times,
            open=good.open,
            high=good.high,
            low=good.low,
            close=close,
            volume=good.volume,
            interval_ms=HOUR_MS,
        )


@pytest.mark.parametrize("field,value", [("close", 0.0), ("low", -1.0)])
def test_non_positive_price(good, field, value):
    arr = getattr(good, field).copy()
    arr[K] = value
    with pytest.raises(SeriesError, match=f"{field} is not positive") as err:
        train(_with(good, **{field: arr}), SMALL)
    assert when(good.times[K]) in str(err.value)


def test_unsorted_times(good):
    times = good.times.copy()
    times[K], times[K + 1] = times[K + 1], times[K]
    with pytest.raises(SeriesError, match="not sorted") as err:
        train(_with(good, times=times), SMALL)
    # The earlier time now comes after the later one: that is the one named.
    assert when(good.times[K]) in str(err.value)


def test_duplicated_time(good):
    times = good.times.copy()
    times[K] = times[K - 1]
    with pytest.raises(SeriesError, match="appears twice") as err:
        train(_with(good, times=times), SMALL)
    assert when(good.times[K - 1]) in str(err.value)


def test_off_grid_time(good):
    times = good.times.copy()
    times[K] += HOUR_MS // 2
    with pytest.raises(SeriesError, match="off the 3600000 ms grid") as err:
        train(_with(good, times=times), SMALL)
    assert when(times[K]) in str(err.value)
    assert when(times[K]).endswith(":30 UTC")


def test_too_little_history_names_the_minimum(good):
    cfg = TrainConfig(max_epochs=1, hidden=8, val_steps=300, threads=1)
    minimum = cfg.val_steps + 4 * (cfg.burn_in + cfg.horizon + 1)
    with pytest.raises(SeriesError, match="too little history") as err:
        train(good.head(minimum - 1), cfg)
    assert f"{minimum - 1} candles" in str(err.value)
    assert f"at least {minimum}" in str(err.value)
    # The number in the message is the real minimum: one more candle trains.
    model = train(good.head(minimum), cfg)
    assert model.meta["candles"] == minimum


def test_too_little_history_before_train_end(good):
    with pytest.raises(SeriesError, match="too little history: 400 candles"):
        train(good, SMALL, train_end=400)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("max_epochs", 0, "max_epochs must be at least 1, not 0"),
        ("hidden", -4, "hidden must be at least 1"),
        ("batch_size", 0, "batch_size must be at least 1"),
        ("lr", 0.0, "lr, ewma_halflife and profile_halflife must be positive"),
        ("lr", float("nan"), "lr, ewma_halflife and profile_halflife must be positive"),
        ("ewma_halflife", -1.0, "lr, ewma_halflife and profile_halflife must be positive"),
        ("profile_halflife", 0.0, "lr, ewma_halflife and profile_halflife must be positive"),
        ("profile_smooth", -1, "profile_smooth cannot be negative"),
        ("profile_prior", -1.0, "profile_prior must be a non-negative number of weeks"),
        ("profile_prior", float("nan"), "profile_prior must be a non-negative number of weeks"),
        ("base_shape", "laplace", "base_shape must be 'empirical' or 'normal'"),
        ("dropout", 1.0, "dropout and aci_rate must be in"),
        ("aci_rate", -0.1, "dropout and aci_rate must be in"),
        ("aci_judge", 1.5, "aci_judge must be between 0 and 1"),
        ("aci_judge", float("nan"), "aci_judge must be between 0 and 1"),
        ("patience", -1, "patience cannot be negative"),
        ("min_blend", -0.1, "min_blend and max_blend must satisfy"),
        ("min_blend", float("nan"), "min_blend and max_blend must satisfy"),
        ("max_blend", 1.5, "min_blend and max_blend must satisfy"),
        ("max_blend", 0.2, "min_blend and max_blend must satisfy"),
    ],
)
def test_a_config_that_cannot_train_is_refused_with_its_reason(field, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(SMALL, **{field: value})


def test_training_that_never_reaches_a_finite_loss_says_so(good):
    # An infinite step turns every weight into NaN after the first batch: no epoch is usable.
    unstable = dataclasses.replace(SMALL, lr=1.0)
    object.__setattr__(unstable, "lr", float("inf"))  # past the check, as a corrupted config would be
    with pytest.raises(TrainingDiverged, match="training diverged: no epoch of .* finite validation loss"):
        train(good, unstable)
