"""The served adaptive shift is a smoothed copy of the adaptive one: the same level, fewer swings."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from forecasting.ml.band import adaptive_offsets
from forecasting.ml.data import Series, build_frame, targets
from forecasting.ml.train import TrainConfig, TrainedModel, _new_module

from .candles import HOUR_MS
from .test_adaptive_band import START, N, Z


def _noisy(seed: int, n: int = 600, horizon: int = 6):
    rng = np.random.default_rng(seed)
    raw = np.zeros((n, horizon, 3))
    raw[..., 0], raw[..., 2] = -1.0, 1.0
    y = rng.standard_t(4, size=(n, horizon))
    mask = rng.random((n, horizon)) > 0.05
    return raw, y, mask, rng.normal(0, 0.1, horizon)


@pytest.mark.parametrize("pooled", [True, False])
def test_the_smoothed_offsets_are_an_ewma_of_the_adaptive_ones(pooled):
    raw, y, mask, base = _noisy(0)
    start, halflife = 50, 36.0
    rough = adaptive_offsets(raw, y, mask, base, start=start, rate=0.05, alpha=0.2, pooled=pooled)
    smooth = adaptive_offsets(raw, y, mask, base, start=start, rate=0.05, alpha=0.2, pooled=pooled, smooth=halflife)
    w = 1 - 0.5 ** (1 / halflife)
    np.testing.assert_array_equal(smooth[:start], rough[:start])
    np.testing.assert_allclose(smooth[start], base + w * (rough[start] - base))
    np.testing.assert_allclose(
        smooth[start + 1 :], smooth[start:-1] + w * (rough[start + 1 :] - smooth[start:-1]), atol=1e-12
    )
    # Fewer swings, the same level over the long run.
    swings = lambda o: np.abs(np.diff(o[start:, 0])).sum()  # noqa: E731
    assert swings(smooth) < 0.3 * swings(rough)
    assert abs(smooth[start + 200 :, 0].mean() - rough[start + 200 :, 0].mean()) < 0.05


def test_smoothing_reads_no_outcome_after_its_step():
    raw, y, mask, base = _noisy(1)
    start, t = 50, 300
    before = adaptive_offsets(raw, y, mask, base, start=start, rate=0.05, alpha=0.2, pooled=True, smooth=36.0)
    later = y.copy()
    # Every outcome that resolves after step t, and only those.
    resolves = np.arange(len(y))[:, None] + np.arange(1, y.shape[1] + 1)[None, :]
    later[resolves > t] += 50.0
    after = adaptive_offsets(raw, later, mask, base, start=start, rate=0.05, alpha=0.2, pooled=True, smooth=36.0)
    np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
    assert not np.array_equal(after[t + 1 :], before[t + 1 :])


def _fat_tailed(seed: int) -> Series:
    """Student-t hourly returns whose volatility drifts slowly (a cycle of 1,500 hours): the misses
    come in clusters that say little about the level the band needs, as on real months."""
    rng = np.random.default_rng(seed)
    t = np.arange(N)
    vol = 0.004 * np.exp(0.5 * np.sin(2 * np.pi * t / 1500))
    close = 100 * np.exp(np.cumsum(vol * rng.standard_t(4, N) / np.sqrt(2)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    return Series.from_arrays(
        times=1_600_000_000_000 + t * HOUR_MS,
        open=open_,
        high=np.maximum(open_, close) * 1.0005,
        low=np.minimum(open_, close) * 0.9995,
        close=close,
        volume=np.full(N, 10.0),
        interval_ms=HOUR_MS,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_smoothing_lowers_the_pinball_cost_of_adapting(seed):
    # The naive band (+-z in volatility units) adapted at the served rate with and without
    # smoothing: coverage as close to 80%, a smaller pinball loss smoothed. (Bursts that come
    # and go within two days, as in test_adaptive_band, are the case where the unsmoothed shift wins.)
    series = _fat_tailed(seed)
    frame = build_frame(series, min_history=48)
    raw = np.zeros((N, 24, 3))
    raw[..., 0], raw[..., 2] = -Z, Z
    y, mask = targets(frame, 24)
    scale = frame.sigma[:, None] * np.sqrt(np.arange(1, 25))[None, :]
    keep = mask & (np.arange(N) >= START)[:, None]

    def band(aci_smooth):
        config = TrainConfig(hidden=8, aci_rate=0.04, aci_smooth=aci_smooth)
        model = TrainedModel(
            config=config,
            module=_new_module(config, 9),
            scaler_mean=np.zeros(9),
            scaler_scale=np.ones(9),
            calibration=np.zeros(24),
            aci_rate=config.aci_rate,
            aci_start_time=int(series.times[START]),
        )
        widen = model.band_offsets(series, frame, raw)
        lo, hi = (raw[..., 0] - widen) * scale, (raw[..., 2] + widen) * scale
        moved = y * scale
        loss = np.maximum(0.1 * (moved - lo), -0.9 * (moved - lo)) + np.maximum(0.9 * (moved - hi), -0.1 * (moved - hi))
        return loss[keep].mean(), ((moved >= lo) & (moved <= hi))[keep].mean()

    rough_pinball, rough_coverage = band(0.0)
    smooth_pinball, smooth_coverage = band(36.0)
    assert smooth_pinball < 0.998 * rough_pinball
    assert abs(smooth_coverage - 0.8) <= abs(rough_coverage - 0.8) + 0.005


def test_an_artifact_from_before_smoothing_serves_unsmoothed(recent, recent_model):
    blob = torch.load(io.BytesIO(recent_model.to_bytes()), weights_only=True)
    del blob["config"]["aci_smooth"]
    buf = io.BytesIO()
    torch.save(blob, buf)
    old = TrainedModel.from_bytes(buf.getvalue())
    assert old.config.aci_smooth == 0.0
    unsmoothed = dataclasses.replace(recent_model, config=dataclasses.replace(recent_model.config, aci_smooth=0.0))
    assert old.forecast(recent) == unsmoothed.forecast(recent)
    assert old.forecast(recent) != recent_model.forecast(recent)  # today's models are smoothed


def test_a_negative_smoothing_half_life_is_refused():
    with pytest.raises(ValueError, match="aci_smooth must be a non-negative number of steps"):
        TrainConfig(aci_smooth=-1.0)
