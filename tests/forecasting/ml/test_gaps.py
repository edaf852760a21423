"""The 33-hour Binance outage of February 2018: nothing joins the two sides of a gap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from forecasting.ml.backtest import origins
from forecasting.ml.data import SeriesError, build_frame, segment_ids, targets

from .candles import FIRST_AFTER_GAP as G
from .candles import HOUR_MS, ramped_before, scaled_after, when

H, MIN_HISTORY = 24, 48


@pytest.fixture(scope="module")
def frame(gapped):
    return build_frame(gapped, min_history=MIN_HISTORY)


def test_the_slice_holds_the_real_gap(gapped):
    assert when(gapped.times[G - 1]) == "2018-02-08T00:00 UTC"
    assert when(gapped.times[G]) == "2018-02-09T10:00 UTC"
    assert (gapped.times[G] - gapped.times[G - 1]) // HOUR_MS - 1 == 33


def test_segment_ids_split_at_the_gap(gapped):
    seg = segment_ids(gapped)
    assert np.all(seg[:G] == 0)
    assert np.all(seg[G:] == 1)


def test_no_target_crosses_the_gap(gapped, frame):
    _, mask = targets(frame, H)
    t = np.arange(len(gapped))[:, None]
    h = np.arange(1, H + 1)[None, :]
    same_side = np.where(t < G, t + h < G, t + h < len(gapped))
    np.testing.assert_array_equal(mask, frame.valid[:, None] & same_side)
    # Origins just before the gap have targets only up to it, and some do exist.
    assert mask[G - 1].sum() == 0
    assert mask[G - 10, :9].all() and not mask[G - 10, 9:].any()


def test_first_steps_after_the_gap_are_not_origins(gapped, frame):
    assert not frame.valid[G : G + MIN_HISTORY].any()
    assert frame.valid[G + MIN_HISTORY]
    picked = origins(gapped, test_start=G - 100, horizon=H, min_history=MIN_HISTORY)
    assert picked[0] == G - 100
    assert not np.any((picked >= G - H) & (picked < G + MIN_HISTORY))
    assert G + MIN_HISTORY in picked
    assert G - H - 1 in picked


def test_returns_and_volatility_restart_after_the_gap(gapped, frame):
    c = gapped.close
    cross_gap = np.log(c[G] / c[G - 1])
    assert abs(cross_gap) > 0.01  # the price moved during the outage, so a leak would show
    scaled_return = frame.features[:, 0]
    assert scaled_return[G] == 0.0 and not frame.valid[G]
    assert np.isnan(frame.sigma[G])
    # The first return after the gap is G -> G+1, and the volatility starts from it alone.
    r1 = np.log(c[G + 1] / c[G])
    assert frame.sigma[G + 1] == pytest.approx(max(abs(r1), 1e-5), rel=1e-12)
    assert scaled_return[G + 2] == pytest.approx(np.log(c[G + 2] / c[G + 1]) / frame.sigma[G + 1], rel=1e-12)
    assert not np.isclose(scaled_return[G + 1 : G + 5], cross_gap / frame.sigma[G - 1]).any()


def test_candles_before_the_gap_do_not_reach_after_it(gapped, frame):
    other = build_frame(ramped_before(gapped, G), min_history=MIN_HISTORY)
    y, mask = targets(frame, H)
    y2, mask2 = targets(other, H)
    np.testing.assert_array_equal(frame.features[G:], other.features[G:])
    np.testing.assert_array_equal(frame.sigma[G:], other.sigma[G:])
    np.testing.assert_array_equal(frame.valid[G:], other.valid[G:])
    np.testing.assert_array_equal(y[G:], y2[G:])
    np.testing.assert_array_equal(mask[G:], mask2[G:])
    assert not np.array_equal(frame.features[:G], other.features[:G])  # the change did take


def test_candles_after_the_gap_do_not_reach_targets_before_it(gapped, frame):
    other = build_frame(scaled_after(gapped, G, 2.0), min_history=MIN_HISTORY)
    y, mask = targets(frame, H)
    y2, mask2 = targets(other, H)
    np.testing.assert_array_equal(y[:G], y2[:G])
    np.testing.assert_array_equal(mask[:G], mask2[:G])


def test_model_state_is_reset_at_the_gap(gapped, gapped_model):
    # The LSTM's spread kept whole, whatever share of it validation chose: its state is the point.
    lstm = dataclasses.replace(gapped_model, blend=1.0)
    before, _ = lstm.predict_scaled(gapped)
    after, _ = lstm.predict_scaled(ramped_before(gapped, G))
    np.testing.assert_array_equal(before[G:], after[G:])
    assert not np.array_equal(before[:G], after[:G])


def test_no_forecast_from_just_after_a_gap(gapped, gapped_model):
    with pytest.raises(SeriesError, match="contiguous candles"):
        gapped_model.forecast(gapped.head(G + 10))
