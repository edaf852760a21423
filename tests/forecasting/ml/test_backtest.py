"""Walk-forward scoring: metrics by hand, and the baselines on the model's own origins."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import norm

from forecasting.ml.backtest import backtest, baselines, metrics, naive_band_forecast, origins
from forecasting.ml.seasonal import fit_seasonal_band

from .candles import FIRST_AFTER_GAP as G
from .candles import HOUR_MS
from .conftest import SMALL, TEST_STEPS

H, LEVELS = SMALL.horizon, SMALL.quantiles


def test_metrics_by_hand():
    point = np.array([[10.0, 11.0], [20.0, 19.0]])
    actual = np.array([[12.0, 10.0], [20.0, 22.0]])
    last = np.array([10.0, 21.0])
    quantiles = np.array([[[9.0, 10.0, 11.0], [10.5, 11.0, 12.0]], [[18.0, 20.0, 23.0], [17.0, 19.0, 22.0]]])
    m = metrics(point, actual, last, mase_scale=0.5, quantiles=quantiles, levels=(0.1, 0.5, 0.9))
    # Absolute errors 2, 1, 0, 3.
    assert m["mae"] == pytest.approx(1.5)
    assert m["mae_h1"] == pytest.approx(1.0)
    assert m["mae_by_step"] == pytest.approx([1.0, 2.0])
    assert m["rmse"] == pytest.approx(math.sqrt(14 / 4))
    assert m["mape"] == pytest.approx((2 / 12 + 1 / 10 + 0 + 3 / 22) / 4 * 100)
    assert m["mase"] == pytest.approx(3.0)
    # Calls: none, up, down, down; moves: up, none, down, up -> one right of four.
    assert m["directional_accuracy"] == pytest.approx(0.25)
    # Pinball per cell: 0.3+1.0+0.9, 0.45+0.5+0.2, 0.2+0+0.3, 0.5+1.5+0 over 12 terms.
    assert m["pinball"] == pytest.approx(5.85 / 12)
    assert m["coverage"] == pytest.approx(0.5)  # the last cell sits on the upper edge: covered
    assert m["width"] == pytest.approx((2 + 1.5 + 5 + 5) / 4)
    assert m["width_pct"] == pytest.approx((2 / 10 + 1.5 / 10 + 5 / 21 + 5 / 21) / 4 * 100)
    assert m["band"] == pytest.approx(0.8)


def test_no_change_calls_no_direction(recent):
    last = recent.close[-50:]
    actual = np.column_stack([recent.close[-49:], recent.close[-49:]])[:49]
    m = metrics(np.column_stack([last, last])[:49], actual, last[:49], mase_scale=1.0)
    assert m["directional_accuracy"] is None and m["pinball"] is None
    # A price that went through log and exp is still "no change", whatever its last bit.
    round_trip = np.exp(np.log(last[:49]))
    assert np.any(round_trip != last[:49])
    m = metrics(np.column_stack([round_trip, round_trip]), actual, last[:49], mase_scale=1.0)
    assert m["directional_accuracy"] is None


def _ewma_sigma(close, times, halflife=24.0):
    """Volatility written out again: EWMA of squared returns, expanding mean at first, reset at gaps."""
    alpha = 1 - 0.5 ** (1 / halflife)
    out = np.full(len(close), np.nan)
    var, count = 0.0, 0
    for t in range(1, len(close)):
        if times[t] - times[t - 1] != HOUR_MS:
            count = 0
            continue
        r = math.log(close[t] / close[t - 1])
        count += 1
        w = 1.0 if count == 1 else max(alpha, 1 / count)
        var = (1 - w) * var + w * r * r
        out[t] = max(math.sqrt(var), 1e-5)
    return out


@pytest.fixture(scope="module")
def result(gapped, gapped_model):
    return backtest(gapped_model, gapped, test_start=len(gapped) - TEST_STEPS)


def test_backtest_origins(gapped, result):
    n = len(gapped)
    idx = origins(gapped, test_start=n - TEST_STEPS, horizon=H, min_history=SMALL.min_history)
    np.testing.assert_array_equal(idx, np.arange(n - TEST_STEPS, n - H))  # no gap in the test part
    assert result["origins"] == len(idx)
    assert result["first_origin_time"] == gapped.times[idx[0]]
    assert result["last_origin_time"] == gapped.times[idx[-1]]
    assert set(result["methods"]) == {"model", "naive", "drift", "naive_band", "seasonal_band"}


def test_baselines_and_model_scored_on_the_same_origins(gapped, gapped_model, result):
    n, c = len(gapped), gapped.close
    train_end = n - TEST_STEPS
    idx = np.arange(train_end, n - H)
    actual = c[idx[:, None] + np.arange(1, H + 1)]
    last = c[idx]
    steps = np.abs(np.diff(c[:train_end]))
    scale = np.delete(steps, G - 1).mean()  # the jump across the outage is not a one-hour change
    naive_mae = np.abs(actual - last[:, None]).mean()
    m = result["methods"]
    assert m["naive"]["mae"] == pytest.approx(naive_mae, rel=1e-12)
    assert m["naive"]["mase"] == pytest.approx(naive_mae / scale, rel=1e-12)
    assert m["naive_band"]["mae"] == m["naive"]["mae"]

    prices = gapped_model.predict_prices(gapped)[0][idx]
    assert m["model"]["mae"] == pytest.approx(np.abs(prices[..., 1] - actual).mean(), rel=1e-12)
    covered = (actual >= prices[..., 0]) & (actual <= prices[..., 2])
    assert m["model"]["coverage"] == pytest.approx(covered.mean(), rel=1e-12)

    r = np.diff(np.log(c[:train_end]))
    mu = np.delete(r, G - 1).mean()
    drift = last[:, None] * np.exp(mu * np.arange(1, H + 1))
    assert m["drift"]["mae"] == pytest.approx(np.abs(drift - actual).mean(), rel=1e-12)

    sigma = _ewma_sigma(c, gapped.times)[idx]
    z = norm.ppf(0.9)
    hi = last[:, None] * np.exp(z * sigma[:, None] * np.sqrt(np.arange(1, H + 1)))
    lo = last[:, None] * np.exp(-z * sigma[:, None] * np.sqrt(np.arange(1, H + 1)))
    assert m["naive_band"]["coverage"] == pytest.approx(((actual >= lo) & (actual <= hi)).mean(), rel=1e-12)
    assert m["naive_band"]["width"] == pytest.approx((hi - lo).mean(), rel=1e-9)


def test_baseline_forecasts(gapped):
    n, c = len(gapped), gapped.close
    idx = np.array([n - 200, n - 100, n - 30])
    b = baselines(gapped, idx, horizon=H, levels=LEVELS, train_end=n - TEST_STEPS)
    np.testing.assert_array_equal(b["naive"].point, np.repeat(c[idx][:, None], H, axis=1))
    np.testing.assert_array_equal(b["naive_band"].point, b["naive"].point)
    assert b["naive"].quantiles is None and b["drift"].quantiles is None
    band = b["naive_band"].quantiles
    assert band.shape == (3, H, 3)
    np.testing.assert_allclose(band[..., 1], b["naive"].point, rtol=1e-15)
    assert np.all(band[..., 0] < band[..., 1]) and np.all(band[..., 1] < band[..., 2])
    width = band[..., 2] - band[..., 0]
    assert np.all(np.diff(width, axis=1) > 0)  # the band widens with the horizon
    sigma = _ewma_sigma(c, gapped.times)[idx]
    np.testing.assert_allclose(np.log(band[:, 0, 2] / c[idx]), norm.ppf(0.9) * sigma, rtol=1e-9)


def test_naive_band_forecast_from_the_newest_candle(recent):
    fc = naive_band_forecast(recent, horizon=H, levels=LEVELS)
    last = int(recent.times[-1])
    assert fc["target_times"] == [last + h * HOUR_MS for h in range(1, H + 1)]
    prices = np.asarray(fc["prices"])
    assert prices.shape == (H, 3)
    np.testing.assert_allclose(prices[:, 1], recent.close[-1], rtol=1e-15)
    sigma = _ewma_sigma(recent.close, recent.times)[-1]
    expected_hi = recent.close[-1] * np.exp(norm.ppf(0.9) * sigma * np.sqrt(np.arange(1, H + 1)))
    np.testing.assert_allclose(prices[:, 2], expected_hi, rtol=1e-9)


def test_the_naive_band_is_one_yardstick_whatever_the_forecaster_settings(recent):
    # A candidate with a faster volatility must be measured against the same naive band, or its
    # ratio to that band would compare different things.
    start = len(recent) - TEST_STEPS
    results = {}
    for halflife in (12.0, 24.0):
        band = fit_seasonal_band(recent, replace(SMALL, ewma_halflife=halflife), train_end=start)
        results[halflife] = backtest(band, recent, test_start=start, seasonal=band)["methods"]
    assert results[12.0]["naive_band"]["pinball"] == results[24.0]["naive_band"]["pinball"]
    assert results[12.0]["naive_band"]["coverage"] == results[24.0]["naive_band"]["coverage"]
    assert results[12.0]["seasonal_band"]["pinball"] != pytest.approx(results[24.0]["seasonal_band"]["pinball"])
