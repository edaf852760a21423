"""The seasonal band: its hour-of-week profile, how it is fitted and calibrated, and what it serves."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from forecasting.ml.band import adaptive_offsets
from forecasting.ml.data import (
    PARKINSON,
    Series,
    SeriesError,
    build_frame,
    season_bins,
    season_scale,
    seasonal_profile,
    targets,
)
from forecasting.ml.seasonal import base_quantiles, fit_seasonal_band
from forecasting.ml.train import TrainConfig, train

from .candles import HOUR_MS, scaled_after
from .conftest import SMALL, TEST_STEPS

MONDAY = 1_609_718_400_000  # 2021-01-04 00:00 UTC
WEEKS = 30


def _seasonal_walk(seed: int = 0, weeks: int = WEEKS) -> tuple[Series, np.ndarray]:
    """A random walk whose volatility is three times higher from 14:00 to 17:59 UTC on weekdays."""
    rng = np.random.default_rng(seed)
    n = weeks * 168
    times = MONDAY + np.arange(n) * HOUR_MS
    hour, day = (times // HOUR_MS) % 24, ((times // HOUR_MS) // 24 + 3) % 7  # 0 = Monday
    vol = np.where((hour >= 14) & (hour < 18) & (day < 5), 0.006, 0.002)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return Series.from_arrays(
        times=times,
        open=open_,
        high=np.maximum(open_, close) * 1.0003,
        low=np.minimum(open_, close) * 0.9997,
        close=close,
        volume=np.full(n, 5.0),
        interval_ms=HOUR_MS,
    ), vol


def test_places_in_the_week():
    bins, nbins = season_bins(np.array([MONDAY, MONDAY + HOUR_MS, MONDAY + 167 * HOUR_MS]), HOUR_MS)
    assert nbins == 168
    # The same hour a week later is the same place; neighbouring hours are neighbours.
    assert bins[1] == (bins[0] + 1) % 168 and bins[2] == (bins[0] + 167) % 168
    assert season_bins(np.array([MONDAY]), 24 * HOUR_MS)[1] == 7  # daily candles: day of the week
    assert season_bins(np.array([MONDAY]), 7 * 24 * HOUR_MS)[1] == 1  # weekly: no profile


def test_the_profile_finds_the_busy_hours():
    series, vol = _seasonal_walk()
    profile = seasonal_profile(series, smooth=0)
    assert profile.mean() == pytest.approx(1.0)
    bins, _ = season_bins(series.times[:168], HOUR_MS)
    busy = np.zeros(168, dtype=bool)
    busy[bins] = vol[:168] > 0.003
    # Variance ratio of the busy hours to the calm ones is 9 by construction.
    ratio = profile[busy].mean() / profile[~busy].mean()
    assert 6 < ratio < 12
    assert profile[busy].min() > profile[~busy].max()


def test_the_default_profile_spreads_an_hour_over_two_hours_each_side():
    series, vol = _seasonal_walk()
    raw = seasonal_profile(series, smooth=0)
    config = TrainConfig()
    profile = seasonal_profile(series, smooth=config.profile_smooth, prior=config.profile_prior)
    # Triangular weights 1, 2, 3, 2, 1 on the mean absolute return of the neighbours two hours
    # each side (the raw profile is its square), then the prior.
    k = np.arange(-2, 3)
    spread = sum((3 - abs(ki)) * np.roll(np.sqrt(raw), ki) for ki in k) ** 2
    expected = (WEEKS * spread / spread.mean() + config.profile_prior) / (WEEKS + config.profile_prior)
    np.testing.assert_allclose(profile, expected / expected.mean(), rtol=0.05)
    # The busy block's edges bleed into the calm hours two hours away, not three.
    bins, _ = season_bins(series.times[:168], HOUR_MS)
    busy = np.zeros(168, dtype=bool)
    busy[bins] = vol[:168] > 0.003
    first = np.flatnonzero(busy & ~np.roll(busy, 1))[0]  # a busy block's first hour
    calm = np.median(profile[~busy])
    assert profile[(first - 2) % 168] > 1.1 * calm
    assert profile[(first - 3) % 168] < 1.1 * calm


def _busy_to_calm(series, vol, profile):
    bins, _ = season_bins(series.times[:168], HOUR_MS)
    busy = np.zeros(168, dtype=bool)
    busy[bins] = vol[:168] > 0.003
    return profile[busy].mean() / profile[~busy].mean()


def test_a_few_weeks_give_a_nearly_flat_profile_and_years_keep_theirs():
    young, vol = _seasonal_walk(weeks=6)
    raw = seasonal_profile(young, smooth=0)
    shrunk = seasonal_profile(young, smooth=0, prior=8.0)
    assert shrunk.mean() == pytest.approx(1.0)
    # Six weeks keep 6 / (6 + 8) of the departures from flat: the busy hours stand out far less.
    assert _busy_to_calm(young, vol, raw) > 5
    assert 1.5 < _busy_to_calm(young, vol, shrunk) < 3
    old, vol = _seasonal_walk(weeks=150)
    ratio_raw = _busy_to_calm(old, vol, seasonal_profile(old, smooth=0))
    ratio_shrunk = _busy_to_calm(old, vol, seasonal_profile(old, smooth=0, prior=8.0))
    assert ratio_shrunk > 0.85 * ratio_raw  # three years keep nearly all of it
    # The default shrinks: a young asset's band is fitted with the shrunk profile.
    assert TrainConfig().profile_prior > 0
    band = fit_seasonal_band(young, dataclasses.replace(SMALL, val_steps=168), train_end=len(young))
    assert _busy_to_calm(young, vol, band.profile) < 0.5 * _busy_to_calm(young, vol, raw)


def test_the_band_starts_from_the_normal_shape_not_the_training_parts_skew(recent):
    levels = (0.1, 0.5, 0.9)
    rng = np.random.default_rng(0)
    skewed = rng.exponential(1.0, size=(500, 4)) - 1.0
    mask = np.ones_like(skewed, dtype=bool)
    expected = np.tile(norm.ppf(levels), (4, 1))
    np.testing.assert_allclose(base_quantiles(skewed, mask, levels, "normal"), expected)
    np.testing.assert_allclose(base_quantiles(-skewed, mask, levels, "normal"), expected)
    empirical = base_quantiles(skewed, mask, levels, "empirical")
    assert empirical[:, 1] == pytest.approx(0.0)
    assert not np.allclose(-empirical[:, 0], empirical[:, 2], atol=0.1)  # the skew it would keep
    # The defaults fit the normal shape, and the band calibrates it as before.
    train_end = len(recent) - TEST_STEPS
    band = fit_seasonal_band(
        recent, dataclasses.replace(SMALL, base_shape=TrainConfig().base_shape), train_end=train_end
    )
    np.testing.assert_allclose(band.base, np.tile(norm.ppf(SMALL.quantiles), (SMALL.horizon, 1)))
    assert np.all(np.isfinite(band.calibration))


def test_the_profile_is_learnt_only_before_its_end(recent):
    cut = 2000
    changed = dataclasses.replace(
        recent,
        close=np.where(
            np.arange(len(recent)) < cut, recent.close, recent.close * np.exp(np.sin(np.arange(len(recent))) * 0.05)
        ),
    )
    np.testing.assert_array_equal(seasonal_profile(recent, end=cut), seasonal_profile(changed, end=cut))
    assert not np.allclose(seasonal_profile(recent), seasonal_profile(changed))


def test_training_learns_its_profile_before_validation(recent, recent_model):
    # Candles from the validation period on (scaled and with other volumes) move nothing in the profile.
    val_start = len(recent) - TEST_STEPS - SMALL.val_steps
    np.testing.assert_array_equal(
        recent_model.profile,
        seasonal_profile(recent, end=val_start, prior=SMALL.profile_prior, smooth=SMALL.profile_smooth),
    )
    other = train(scaled_after(recent, val_start), SMALL, train_end=len(recent) - TEST_STEPS)
    np.testing.assert_array_equal(other.profile, recent_model.profile)


def test_the_seasonal_band_reads_nothing_after_its_cutoff(recent):
    train_end = len(recent) - TEST_STEPS
    a = fit_seasonal_band(recent, SMALL, train_end=train_end)
    b = fit_seasonal_band(scaled_after(recent, train_end, 3.0), SMALL, train_end=train_end)
    np.testing.assert_array_equal(a.profile, b.profile)
    np.testing.assert_array_equal(a.base, b.base)
    np.testing.assert_array_equal(a.calibration, b.calibration)
    # Its forecasts at origins before the cut-off do not change either.
    pa, _ = a.predict_prices(recent)
    pb, _ = b.predict_prices(scaled_after(recent, train_end, 3.0))
    np.testing.assert_array_equal(pa[: train_end - SMALL.horizon], pb[: train_end - SMALL.horizon])


def test_season_scale_sums_the_profile_over_the_target_hours():
    profile = np.ones(168)
    profile[10] = 4.0
    times = MONDAY + np.arange(3) * HOUR_MS
    bins, _ = season_bins(times, HOUR_MS)
    scale = season_scale(times, HOUR_MS, profile, 4)
    for t in range(3):
        expected = np.cumsum([profile[(bins[t] + k) % 168] for k in range(1, 5)])
        np.testing.assert_allclose(scale[t] ** 2, expected)
    with pytest.raises(SeriesError, match="7 places for a week of 168"):
        season_scale(times, HOUR_MS, np.ones(7), 4)


def test_a_seasonal_band_is_sharper_than_a_flat_one_where_the_season_is_real():
    series, _ = _seasonal_walk(seed=1, weeks=40)
    config = TrainConfig(val_steps=24 * 28, aci_rate=0.0)
    test_start = len(series) - 24 * 28
    flat = fit_seasonal_band(series, dataclasses.replace(config, seasonal=False), train_end=test_start)
    seasonal = fit_seasonal_band(series, config, train_end=test_start)
    y = {}
    for name, band in (("flat", flat), ("seasonal", seasonal)):
        prices, frame = band.predict_prices(series)
        idx = np.arange(test_start, len(series) - config.horizon)
        actual = series.close[idx[:, None] + np.arange(1, config.horizon + 1)]
        lo, hi = prices[idx, :, 0], prices[idx, :, -1]
        q = np.array(config.quantiles)
        diff = actual[..., None] - prices[idx]
        loss = np.maximum(q * diff, (q - 1) * diff)
        y[name] = (loss.mean(), loss[:, 0].mean(), np.mean((actual >= lo) & (actual <= hi)))
    # A day's horizon averages the season out; the next hour does not.
    assert y["seasonal"][0] < 0.99 * y["flat"][0]
    assert y["seasonal"][1] < 0.96 * y["flat"][1]
    assert 0.74 <= y["seasonal"][2] <= 0.86


def test_the_seasonal_band_forecast_is_the_last_price_with_a_band(recent):
    band = fit_seasonal_band(recent, SMALL)
    fc = band.forecast(recent)
    prices = np.array(fc["prices"])
    assert prices.shape == (SMALL.horizon, 3)
    np.testing.assert_allclose(prices[:, 1], recent.close[-1], rtol=1e-12)  # median: no move
    assert np.all(prices[:, 0] < prices[:, 1]) and np.all(prices[:, 1] < prices[:, 2])
    assert fc["target_times"][0] == recent.times[-1] + HOUR_MS


def test_the_seasonal_band_refuses_too_little_history(recent):
    with pytest.raises(SeriesError, match="too little history for the seasonal band: 350 candles"):
        fit_seasonal_band(recent.head(350), SMALL)


def test_range_weight_measures_each_hour_by_its_high_and_low(recent):
    close_only = build_frame(recent, min_history=48)
    by_range = build_frame(recent, min_history=48, range_weight=1.0)
    # With the whole weight on the range, the first EWMA value is that hour's Parkinson variance.
    first = 1
    assert by_range.sigma[first] == pytest.approx(
        np.sqrt(PARKINSON * np.log(recent.high[first] / recent.low[first]) ** 2), rel=1e-12
    )
    assert not np.allclose(close_only.sigma[100:], by_range.sigma[100:])


def test_pooled_adaptation_moves_every_step_together():
    n, horizon = 400, 4
    raw = np.zeros((n, horizon, 3))
    raw[..., 0], raw[..., 2] = -1.0, 1.0
    y = np.full((n, horizon), 5.0)  # every outcome misses
    mask = np.ones((n, horizon), dtype=bool)
    start = 10
    pooled = adaptive_offsets(raw, y, mask, np.zeros(horizon), start=start, rate=0.01, alpha=0.2, pooled=True)
    # Each step after the first resolutions adds rate * (1 - alpha) to every horizon step at once.
    assert np.allclose(pooled[start + 5], pooled[start + 5][0])
    assert pooled[start + 1, 0] == pytest.approx(0.01 * 0.8)
    assert pooled[start + 2, 0] == pytest.approx(2 * 0.01 * 0.8)
    separate = adaptive_offsets(raw, y, mask, np.zeros(horizon), start=start, rate=0.01, alpha=0.2)
    # Separately, step k only starts moving once its first k-step outcome is known.
    assert separate[start + 1, 3] == 0.0 and separate[start + 1, 0] > 0


def test_frame_targets_use_the_seasonal_scale(recent):
    profile = seasonal_profile(recent, end=2000)
    frame = build_frame(recent, min_history=48, profile=profile, horizon=24)
    y, mask = targets(frame, 24)
    t, k = 2500, 5
    expected = (np.log(recent.close[t + k + 1]) - np.log(recent.close[t])) / (frame.sigma[t] * frame.season[t, k])
    assert y[t, k] == pytest.approx(expected, rel=1e-12)


def test_validation_keeps_at_least_min_blend_of_the_lstms_spread(gapped, gapped_model):
    train_end = len(gapped) - TEST_STEPS
    free = train(gapped, dataclasses.replace(SMALL, min_blend=0.0), train_end=train_end)
    # Left to itself, validation keeps less of this small LSTM's spread than the floor allows.
    assert free.blend < SMALL.min_blend
    assert SMALL.min_blend == TrainConfig().min_blend > 0
    assert SMALL.min_blend <= gapped_model.blend <= SMALL.max_blend
    fixed = train(gapped, dataclasses.replace(SMALL, min_blend=0.75, max_blend=0.75), train_end=train_end)
    assert fixed.blend == 0.75
    # The share is the blend's: the same LSTM, a different share of its spread.
    frame = fixed.frame(gapped)
    lstm = dataclasses.replace(fixed, blend=1.0).raw_quantiles(gapped, frame)
    shared = fixed.raw_quantiles(gapped, frame)
    mid = len(SMALL.quantiles) // 2
    ok = np.isfinite(lstm[..., 0])
    expected = lstm[..., mid : mid + 1] + 0.75 * (lstm - lstm[..., mid : mid + 1]) + 0.25 * fixed.base[None]
    np.testing.assert_allclose(shared[ok], expected[ok], rtol=1e-6, atol=1e-9)
