"""A third volatility in the band's mix (data.fit_mix_burst): an EWMA of a few hours beside the
day-long one and the two-week level. How it is computed, what it learns, that it learns nothing
after the cut-off and that a model keeps it through its artifact."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forecasting.ml.data import MIX_GRID, SeriesError, build_frame, fit_mix_burst, remix, targets
from forecasting.ml.seasonal import fit_seasonal_band
from forecasting.ml.train import TrainConfig, TrainedModel, train

from .candles import HOUR_MS, scaled_after
from .conftest import SMALL, TEST_STEPS
from .test_volatility_mix import _walk

BURST = dataclasses.replace(SMALL, burst_halflife=4.0)  # the default, named so the tests say so


def _bursty(seed: int = 1):
    # Quiet hours with bursts of six hours at five times the volatility.
    n = 24 * 7 * 40
    vol = np.full(n, 0.002)
    for start in np.random.default_rng(seed).choice(n - 6, size=120, replace=False):
        vol[start : start + 6] = 0.01
    return _walk(vol)


def _frame(series, **kw):
    return build_frame(series, min_history=48, horizon=24, slow_window=336, burst_halflife=4.0, **kw)


def _loss(frame, y, mask, w, b, k):
    """QLIKE at its best scale of the three-way variance forecast for step k + 1, on the origins
    whose targets all exist (what fit_mix_burst ranks by)."""
    rows = mask.all(axis=1)
    v = w * frame.sigma[rows] ** 2 + b * frame.burst[rows] ** 2 + (1 - w - b) * frame.slow[rows] ** 2
    z2 = (y[rows, k] * frame.sigma[rows]) ** 2
    return float(np.log(np.mean(z2 / v)) + np.mean(np.log(v)))


def test_the_burst_volatility_is_a_faster_ewma_of_the_same_variances(recent):
    frame = build_frame(recent, min_history=48, burst_halflife=4.0, range_weight=0.5)
    fast = build_frame(recent, min_history=48, ewma_halflife=4.0, range_weight=0.5)
    np.testing.assert_array_equal(frame.burst, fast.sigma)
    assert build_frame(recent, min_history=48).burst is None


def test_near_steps_lean_on_the_burst_and_far_ones_do_not():
    series = _bursty()
    frame = _frame(series)
    y, mask = targets(frame, 24)
    w, b = fit_mix_burst(frame, y, mask)
    assert np.isin(w, MIX_GRID).all() and np.isin(b, MIX_GRID).all()
    assert (w + b <= 1 + 1e-9).all() and (w >= 0).all() and (b >= 0).all()
    assert b[0] >= b[23] + 0.3, b
    # The weights chosen beat every two-way mix (no burst) on the same origins, clearly at first.
    two_way = [min(_loss(frame, y, mask, g, 0.0, k) for g in MIX_GRID) for k in range(24)]
    gains = [two_way[k] - _loss(frame, y, mask, w[k], b[k], k) for k in range(24)]
    assert min(gains) >= -1e-12 and gains[0] > 1e-3, gains


def test_the_mixed_scale_with_a_burst_is_the_weighted_variance(recent):
    w, b = np.linspace(0.8, 0.5, 24), np.linspace(0.2, 0.0, 24)
    plain = _frame(recent)
    mixed = _frame(recent, mix=w, burst_mix=b)
    variance = w * plain.sigma[:, None] ** 2 + b * plain.burst[:, None] ** 2 + (1 - w - b) * plain.slow[:, None] ** 2
    np.testing.assert_allclose(mixed.horizon_scale(24), np.sqrt(variance * np.arange(1, 25)), rtol=1e-12)
    np.testing.assert_array_equal(mixed.sigma, plain.sigma)  # the LSTM's inputs are unchanged


def test_too_few_origins_keep_the_fast_volatility_alone(recent):
    frame = _frame(recent)
    y, mask = targets(frame, 24)
    few = mask.copy()
    few[49:] = False
    w, b = fit_mix_burst(frame, y, few)
    assert (w == 1).all() and (b == 0).all()


def test_a_burst_mix_needs_its_volatilities(recent):
    frame = build_frame(recent, min_history=48, horizon=24, slow_window=336)
    y, mask = targets(frame, 24)
    with pytest.raises(SeriesError, match="burst"):
        fit_mix_burst(frame, y, mask)
    with pytest.raises(SeriesError, match="burst"):
        build_frame(recent, min_history=48, horizon=24, slow_window=336, mix=np.ones(24), burst_mix=np.zeros(24))


@pytest.mark.parametrize(
    "settings",
    [{"burst_halflife": -1.0}, {"burst_halflife": float("nan")}, {"burst_halflife": 4.0, "slow_window": 0}],
)
def test_impossible_burst_settings_are_refused(settings):
    with pytest.raises(ValueError, match="burst"):
        TrainConfig(**settings)


def _unmixed(recent, band):
    """The frame the band's mix is chosen on: its settings and profile, no mix yet."""
    return build_frame(
        recent,
        min_history=BURST.min_history,
        horizon=BURST.horizon,
        profile=band.profile,
        range_weight=BURST.range_weight,
        slow_window=BURST.slow_window,
        burst_halflife=BURST.burst_halflife,
    )


def test_the_band_and_the_model_learn_their_burst_mix_before_validation(recent):
    train_end = len(recent) - TEST_STEPS
    val_start = train_end - BURST.val_steps
    band = fit_seasonal_band(recent, BURST, train_end=train_end)
    assert band.burst_mix is not None and band.burst_mix.shape == (BURST.horizon,)
    other = fit_seasonal_band(scaled_after(recent, val_start, 3.0), BURST, train_end=train_end)
    np.testing.assert_array_equal(band.mix, other.mix)
    np.testing.assert_array_equal(band.burst_mix, other.burst_mix)
    # The same choice as fitting the mix by hand on the training targets.
    frame = _unmixed(recent, band)
    y, mask = targets(frame, BURST.horizon)
    t = np.arange(len(recent))[:, None] + np.arange(1, BURST.horizon + 1)[None, :]
    w, b = fit_mix_burst(frame, y, mask & (t < val_start))
    np.testing.assert_array_equal(band.mix, w)
    np.testing.assert_array_equal(band.burst_mix, b)
    # Without the burst setting, no burst weights.
    plain = dataclasses.replace(SMALL, burst_halflife=0.0)
    assert fit_seasonal_band(recent, plain, train_end=train_end).burst_mix is None


def test_a_model_keeps_its_burst_mix_through_its_artifact(recent):
    model = train(recent, BURST, train_end=len(recent) - TEST_STEPS)
    assert model.burst_mix is not None and model.burst_mix.shape == (BURST.horizon,)
    again = TrainedModel.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(again.burst_mix, model.burst_mix)
    assert again.config.burst_halflife == 4.0
    assert again.forecast(recent) == model.forecast(recent)
    # From the candles production reads (history_start) the forecast is the one from all of them.
    read = recent.since(model.history_start(HOUR_MS))
    np.testing.assert_allclose(model.forecast(read)["prices"], model.forecast(recent)["prices"], rtol=1e-4)


@pytest.mark.parametrize("burst", [True, False])
def test_remixing_a_frame_is_building_it_with_the_mix(recent, burst):
    # Training chooses the mix on the unmixed frame and remixes it rather than building it again.
    profile = fit_seasonal_band(recent, SMALL, train_end=len(recent) - TEST_STEPS).profile
    kw = {"min_history": 48, "horizon": 24, "slow_window": 336, "profile": profile, "range_weight": 0.5}
    kw |= {"burst_halflife": 4.0} if burst else {}
    w, b = np.linspace(0.9, 0.4, 24), (np.linspace(0.1, 0.0, 24) if burst else None)
    built = build_frame(recent, mix=w, burst_mix=b, **kw)
    again = remix(build_frame(recent, **kw), w, b, 24)
    np.testing.assert_array_equal(again.season, built.season)
    np.testing.assert_array_equal(again.features, built.features)
    np.testing.assert_array_equal(again.sigma, built.sigma)


def test_the_band_serves_the_frame_it_was_fitted_on(recent):
    band = fit_seasonal_band(recent, BURST, train_end=len(recent) - TEST_STEPS)
    frame = band.frame(recent)
    unmixed = _unmixed(recent, band)
    np.testing.assert_array_equal(remix(unmixed, band.mix, band.burst_mix, BURST.horizon).season, frame.season)
