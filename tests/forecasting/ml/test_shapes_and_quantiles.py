"""Output shapes, forecast times, and quantiles that never cross."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.ml.train import TrainConfig, TrainedModel, _new_module

from .candles import HOUR_MS


def _untrained(config: TrainConfig, *, calibration=None, shrink=1.0, aci_rate=0.0, aci_start_time=None) -> TrainedModel:
    torch.manual_seed(123)
    return TrainedModel(
        config=config,
        module=_new_module(config, 9),
        scaler_mean=np.zeros(9),
        scaler_scale=np.ones(9),
        calibration=np.zeros(config.horizon) if calibration is None else calibration,
        shrink=shrink,
        aci_rate=aci_rate,
        aci_start_time=aci_start_time,
    )


def _assert_ordered(q: np.ndarray):
    assert np.all(np.diff(q, axis=-1) >= 0), "quantiles cross"


def test_prediction_shapes(recent, recent_model):
    n, cfg = len(recent), recent_model.config
    scaled, frame = recent_model.predict_scaled(recent)
    prices, _ = recent_model.predict_prices(recent)
    assert scaled.shape == prices.shape == (n, cfg.horizon, len(cfg.quantiles)) == (n, 24, 3)
    assert frame.features.shape[0] == n
    assert np.all(np.isfinite(prices[frame.valid])) and np.all(prices[frame.valid] > 0)


def test_shapes_follow_the_config(recent):
    cfg = TrainConfig(horizon=6, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95), hidden=8)
    model = _untrained(cfg)
    scaled, _ = model.predict_scaled(recent.tail(500))
    assert scaled.shape == (500, 6, 5)
    fc = model.forecast(recent.tail(500))
    assert len(fc["target_times"]) == 6 and np.asarray(fc["prices"]).shape == (6, 5)


def test_forecast_from_the_last_candle(recent, recent_model):
    fc = recent_model.forecast(recent)
    last = int(recent.times[-1])
    assert fc["origin_time"] == last
    assert fc["target_times"] == [last + h * HOUR_MS for h in range(1, 25)]
    assert fc["quantiles"] == [0.1, 0.5, 0.9]
    assert fc["last_close"] == recent.close[-1]
    prices = np.asarray(fc["prices"])
    assert prices.shape == (24, 3)
    np.testing.assert_array_equal(prices, recent_model.predict_prices(recent)[0][-1])
    _assert_ordered(prices)
    # A sane band around the last price: within 30% a day ahead for BTC.
    assert np.all(np.abs(prices / recent.close[-1] - 1) < 0.3)


def test_trained_quantiles_never_cross(recent, recent_model):
    scaled, _ = recent_model.predict_scaled(recent)
    prices, frame = recent_model.predict_prices(recent)
    _assert_ordered(scaled)
    _assert_ordered(prices[frame.valid])  # no price without a volatility estimate


@pytest.mark.parametrize(
    "calibration,shrink",
    [
        (None, 1.0),
        (np.linspace(-3, 3, 24), 0.4),  # narrowing on the first steps, widening on the last
        (np.full(24, -50.0), 0.0),  # narrowing far past the median
        (np.full(24, 5.0), 0.7),
    ],
)
def test_untrained_quantiles_never_cross(recent, calibration, shrink):
    model = _untrained(TrainConfig(hidden=16), calibration=calibration, shrink=shrink)
    scaled, _ = model.predict_scaled(recent)
    prices, frame = model.predict_prices(recent)
    _assert_ordered(scaled)
    _assert_ordered(prices[frame.valid])


@pytest.mark.parametrize("calibration", [np.full(24, -2.0), np.full(24, 2.0)])
def test_untrained_quantiles_never_cross_with_adaptive_band(recent, calibration):
    # A fast adaptive rate moves the band a lot: it may collapse onto the median, never cross it.
    model = _untrained(
        TrainConfig(hidden=16),
        calibration=calibration,
        shrink=0.5,
        aci_rate=0.5,
        aci_start_time=int(recent.times[1000]),
    )
    scaled, frame = model.predict_scaled(recent)
    _assert_ordered(scaled)
    _assert_ordered(model.predict_prices(recent)[0][frame.valid])
    offsets = model.band_offsets(recent, frame, scaled)
    assert np.ptp(offsets[1000:], axis=0).min() > 0.1  # the band did adapt


def test_calibration_and_shrink_do_what_they_say(recent):
    raw = _untrained(TrainConfig(hidden=16)).predict_scaled(recent)[0]
    cal = np.linspace(0.1, 1.0, 24)
    adjusted = _untrained(TrainConfig(hidden=16), calibration=cal, shrink=0.25).predict_scaled(recent)[0]
    shift = -0.75 * raw[..., 1]
    np.testing.assert_allclose(adjusted[..., 1], raw[..., 1] + shift, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(adjusted[..., 0], raw[..., 0] + shift - cal, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(adjusted[..., 2], raw[..., 2] + shift + cal, rtol=1e-12, atol=1e-12)
