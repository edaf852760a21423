"""The slow volatility level mixed into the band's scale per horizon step (data.fit_mix): how it is
computed, what it learns, that it learns nothing after the cut-off, and that a forecast reading
only what production reads computes what training computed."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forecasting.ml.data import (
    MIX_GRID,
    Series,
    SeriesError,
    build_frame,
    fit_mix,
    targets,
)
from forecasting.ml.seasonal import fit_seasonal_band
from forecasting.ml.train import TrainConfig, train

from .candles import HOUR_MS, scaled_after
from .conftest import SMALL, TEST_STEPS

MONDAY = 1_609_718_400_000  # 2021-01-04 00:00 UTC


def _walk(vol: np.ndarray, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    n = len(vol)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return Series.from_arrays(
        times=MONDAY + np.arange(n) * HOUR_MS,
        open=open_,
        high=np.maximum(open_, close) * 1.0001,
        low=np.minimum(open_, close) * 0.9999,
        close=close,
        volume=np.full(n, 5.0),
        interval_ms=HOUR_MS,
    )


def _mix_of(series: Series, window: int = 336) -> np.ndarray:
    frame = build_frame(series, min_history=48, horizon=24, slow_window=window)
    y, mask = targets(frame, 24)
    return fit_mix(frame, y, mask)


def test_the_slow_volatility_is_the_mean_variance_over_its_window(recent):
    frame = build_frame(recent, min_history=48, slow_window=100)
    r = np.diff(np.log(recent.close))
    for t in (100, 500, 2999):
        expected = np.sqrt(np.mean(r[t - 100 : t] ** 2))
        assert frame.slow[t] == pytest.approx(expected, rel=1e-12)
    # Fewer steps at the start: the mean of what there is (the first step has no return).
    assert frame.slow[10] == pytest.approx(np.sqrt(np.mean(r[:10] ** 2)), rel=1e-12)
    assert build_frame(recent, min_history=48).slow is None


def test_the_mix_leans_on_the_slow_level_where_bursts_fade():
    # Quiet hours with bursts of six hours at five times the volatility: a burst says little about
    # the hours a day ahead, so far steps lean on the slow level and the next hour on the fast one.
    n = 24 * 7 * 40
    vol = np.full(n, 0.002)
    for start in np.random.default_rng(1).choice(n - 6, size=120, replace=False):
        vol[start : start + 6] = 0.01
    mix = _mix_of(_walk(vol))
    assert mix[0] > mix[23] + 0.2, mix
    assert mix[23] <= 0.6, mix


def test_the_mix_keeps_the_fast_level_where_regimes_last():
    # Month-long regimes and nothing else: the 24-hour EWMA follows them, a two-week mean lags.
    n = 24 * 7 * 40
    vol = np.repeat(np.random.default_rng(2).choice([0.002, 0.008], size=n // 720 + 1), 720)[:n]
    mix = _mix_of(_walk(vol))
    assert mix.min() >= 0.8, mix


def test_the_mix_is_chosen_from_its_grid_and_needs_the_slow_level(recent):
    mix = _mix_of(recent)
    assert mix.shape == (24,) and np.isin(mix, MIX_GRID).all()
    frame = build_frame(recent, min_history=48, horizon=24)
    y, mask = targets(frame, 24)
    with pytest.raises(SeriesError, match="slow volatility"):
        fit_mix(frame, y, mask)


def test_the_mixed_scale_is_the_weighted_variance(recent):
    mix = np.linspace(1.0, 0.5, 24)
    plain = build_frame(recent, min_history=48, horizon=24, slow_window=336)
    mixed = build_frame(recent, min_history=48, horizon=24, slow_window=336, mix=mix)
    expected = np.sqrt(mix * plain.sigma[:, None] ** 2 + (1 - mix) * plain.slow[:, None] ** 2) * np.sqrt(
        np.arange(1, 25)
    )
    np.testing.assert_allclose(mixed.horizon_scale(24), expected, rtol=1e-12)
    np.testing.assert_array_equal(mixed.sigma, plain.sigma)  # the LSTM's inputs are unchanged


def test_the_default_band_and_model_learn_their_mix_before_validation(recent, recent_model):
    assert SMALL.slow_window > 0 and recent_model.mix is not None
    train_end = len(recent) - TEST_STEPS
    val_start = train_end - SMALL.val_steps
    band = fit_seasonal_band(recent, SMALL, train_end=train_end)
    # Candles from validation on, scaled threefold, move nothing in either mix.
    other_band = fit_seasonal_band(scaled_after(recent, val_start, 3.0), SMALL, train_end=train_end)
    np.testing.assert_array_equal(band.mix, other_band.mix)
    other_model = train(scaled_after(recent, val_start, 3.0), SMALL, train_end=train_end)
    np.testing.assert_array_equal(recent_model.mix, other_model.mix)


def test_a_forecast_from_the_candles_production_reads_sees_what_training_saw(recent, recent_model):
    # forecast_make reads candles from history_start: the slow level at the adaptive band's first
    # origin is then computed from the same candles as in training, exactly.
    start = recent_model.history_start(HOUR_MS)
    assert start == recent_model.aci_start_time - SMALL.slow_window * HOUR_MS
    since = recent.times >= start
    read = recent.since(start)
    full, part = recent_model.frame(recent), recent_model.frame(read)
    replayed = recent.times[since] >= recent_model.aci_start_time
    np.testing.assert_allclose(part.slow[replayed], full.slow[since][replayed], rtol=1e-12)
    # Read from the band's start only, the first origins' slow level is another one.
    late = recent.times >= recent_model.aci_start_time
    short = recent.since(recent_model.aci_start_time)
    assert not np.allclose(recent_model.frame(short).slow[:100], full.slow[late][:100], rtol=1e-3)
    a, b = recent_model.forecast(read), recent_model.forecast(recent)
    np.testing.assert_allclose(a["prices"], b["prices"], rtol=1e-4)


def test_no_slow_window_is_the_fast_volatility_alone(recent):
    config = dataclasses.replace(SMALL, slow_window=0, burst_halflife=0.0)
    band = fit_seasonal_band(recent, config, train_end=len(recent) - TEST_STEPS)
    assert band.mix is None and band.frame(recent).slow is None
    assert band.history_start(HOUR_MS) == band.aci_start_time


def test_a_negative_slow_window_is_refused():
    with pytest.raises(ValueError, match="slow_window"):
        TrainConfig(slow_window=-1)


def _two_sided(series: Series, window: int = 336) -> np.ndarray:
    frame = build_frame(series, min_history=48, horizon=24, slow_window=window)
    y, mask = targets(frame, 24)
    return fit_mix(frame, y, mask, sides=2)


def _qlike(series: Series, mix: np.ndarray, k: int) -> float:
    """QLIKE at its best scale of the mixed variance forecast for step k + 1 (what fit_mix ranks by)."""
    plain = build_frame(series, min_history=48, horizon=24, slow_window=336)
    y, mask = targets(plain, 24)
    mixed = build_frame(series, min_history=48, horizon=24, slow_window=336, mix=mix)
    rows = mask[:, k]
    z2 = (y[rows, k] * plain.horizon_scale(24)[rows, k]) ** 2
    v = mixed.horizon_scale(24)[rows, k] ** 2
    return float(np.log(np.mean(z2 / v)) + np.mean(np.log(v)))


def test_a_two_sided_mix_fits_a_burst_better_than_one_weight():
    # Bursts that fade within hours: during one (the fast level above the slow one) the next hour
    # is told by the fast level and a day ahead by the slow one; the two sides are chosen together
    # and, nesting one weight for both, never fit worse.
    n = 24 * 7 * 40
    vol = np.full(n, 0.002)
    for start in np.random.default_rng(1).choice(n - 6, size=120, replace=False):
        vol[start : start + 6] = 0.01
    series = _walk(vol)
    mix, one = _two_sided(series), _mix_of(series)
    assert mix.shape == (2, 24) and np.isin(mix, MIX_GRID).all()
    rising = mix[0]
    assert rising[0] >= rising[23] + 0.3, mix
    gains = [_qlike(series, one, k) - _qlike(series, mix, k) for k in range(24)]
    assert min(gains) >= -1e-12 and max(gains) > 1e-4, gains


def test_a_two_sided_mix_weighs_each_origin_by_its_side(recent):
    mix = np.stack([np.full(24, 0.2), np.full(24, 0.9)])
    plain = build_frame(recent, min_history=48, horizon=24, slow_window=336)
    mixed = build_frame(recent, min_history=48, horizon=24, slow_window=336, mix=mix)
    w = np.where(plain.sigma >= plain.slow, 0.2, 0.9)[:, None]
    expected = np.sqrt(w * plain.sigma[:, None] ** 2 + (1 - w) * plain.slow[:, None] ** 2) * np.sqrt(np.arange(1, 25))
    np.testing.assert_allclose(mixed.horizon_scale(24), expected, rtol=1e-12)
    assert (plain.sigma >= plain.slow).any() and (plain.sigma < plain.slow).any()


def test_a_model_keeps_its_two_sided_mix_through_its_artifact(recent):
    config = dataclasses.replace(SMALL, mix_sides=2, burst_halflife=0.0)
    model = train(recent, config, train_end=len(recent) - TEST_STEPS)
    assert model.mix.shape == (2, config.horizon)
    again = type(model).from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.mix, model.mix)
    np.testing.assert_allclose(again.forecast(recent)["prices"], model.forecast(recent)["prices"], rtol=1e-6)


def test_a_mix_has_one_or_two_sides(recent):
    with pytest.raises(ValueError, match="mix_sides"):
        TrainConfig(mix_sides=3)
    frame = build_frame(recent, min_history=48, horizon=24, slow_window=336)
    y, mask = targets(frame, 24)
    with pytest.raises(SeriesError, match="one or two sides"):
        fit_mix(frame, y, mask, sides=3)
