"""Nothing after a cut-off reaches what the model learns or sees before it."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from forecasting.ml.backtest import baselines
from forecasting.ml.data import build_frame, targets
from forecasting.ml.train import train

from .candles import scaled_after
from .conftest import SMALL, TEST_STEPS

H = SMALL.horizon


def _same_model(a, b):
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    np.testing.assert_array_equal(a.scaler_mean, b.scaler_mean)
    np.testing.assert_array_equal(a.scaler_scale, b.scaler_scale)
    np.testing.assert_array_equal(a.calibration, b.calibration)
    assert a.shrink == b.shrink


def test_scaler_is_fitted_on_the_training_part_only(recent, recent_model):
    train_end = len(recent) - TEST_STEPS
    val_start = train_end - SMALL.val_steps
    frame = build_frame(
        recent.head(train_end),
        ewma_halflife=SMALL.ewma_halflife,
        min_history=SMALL.min_history,
        profile=recent_model.profile,
        horizon=SMALL.horizon,
        range_weight=SMALL.range_weight,
    )
    rows = frame.valid & (np.arange(train_end) < val_start)
    np.testing.assert_allclose(recent_model.scaler_mean, frame.features[rows].mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(recent_model.scaler_scale, frame.features[rows].std(axis=0), rtol=1e-12)
    # Fitting on validation rows too would give other numbers.
    with_val = frame.features[frame.valid].mean(axis=0)
    assert not np.allclose(recent_model.scaler_mean, with_val, rtol=1e-6)


def test_validation_and_test_candles_do_not_move_the_scaler(recent, recent_model):
    val_start = len(recent) - TEST_STEPS - SMALL.val_steps
    other = train(scaled_after(recent, val_start), SMALL, train_end=len(recent) - TEST_STEPS)
    np.testing.assert_array_equal(other.scaler_mean, recent_model.scaler_mean)
    np.testing.assert_array_equal(other.scaler_scale, recent_model.scaler_scale)


def test_frame_before_a_cutoff_ignores_what_comes_after(recent):
    cut = 2000
    a = build_frame(recent, min_history=SMALL.min_history)
    b = build_frame(scaled_after(recent, cut), min_history=SMALL.min_history)
    np.testing.assert_array_equal(a.features[:cut], b.features[:cut])
    np.testing.assert_array_equal(a.sigma[:cut], b.sigma[:cut])
    np.testing.assert_array_equal(a.valid[:cut], b.valid[:cut])
    ya, ma = targets(a, H)
    yb, mb = targets(b, H)
    whole_horizon_before = cut - H  # origins t with t + H < cut
    np.testing.assert_array_equal(ya[:whole_horizon_before], yb[:whole_horizon_before])
    np.testing.assert_array_equal(ma[:whole_horizon_before], mb[:whole_horizon_before])
    # The change is real: it shows at the cut-off and in targets that reach it.
    assert not np.array_equal(a.features[cut], b.features[cut])
    assert not np.array_equal(ya[cut - 1], yb[cut - 1])


def test_training_ignores_candles_after_train_end(recent):
    cut = 2000
    a = train(recent, SMALL, train_end=cut)
    b = train(scaled_after(recent, cut), SMALL, train_end=cut)
    _same_model(a, b)
    assert a.meta["candles"] == cut


def test_backtest_inputs_at_an_origin_use_candles_up_to_it(recent, recent_model):
    # The adaptive band is on, from the validation start: outcomes after t must not reach t either.
    assert recent_model.aci_rate > 0
    assert recent_model.aci_start_time == recent.times[len(recent) - TEST_STEPS - SMALL.val_steps]
    t = len(recent) - 150
    changed = scaled_after(recent, t + 1)
    pa, _ = recent_model.predict_prices(recent)
    pb, _ = recent_model.predict_prices(changed)
    np.testing.assert_array_equal(pa[: t + 1], pb[: t + 1])
    assert not np.array_equal(pa[t + 1], pb[t + 1])
    # A fast adaptive rate makes any look-ahead in the band updates show.
    fast = dataclasses.replace(recent_model, aci_rate=0.5)
    np.testing.assert_array_equal(fast.predict_scaled(recent)[0][: t + 1], fast.predict_scaled(changed)[0][: t + 1])
    idx = np.arange(len(recent) - TEST_STEPS, t + 1)
    kw = {"horizon": H, "levels": SMALL.quantiles, "train_end": len(recent) - TEST_STEPS}
    ba, bb = baselines(recent, idx, **kw), baselines(changed, idx, **kw)
    for name in ("naive", "drift", "naive_band"):
        np.testing.assert_array_equal(ba[name].point, bb[name].point)
        if ba[name].quantiles is not None:
            np.testing.assert_array_equal(ba[name].quantiles, bb[name].quantiles)
