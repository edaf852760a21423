"""An LSTM whose median is the last price in training as in serving (TrainConfig.anchored): it
learns the band around the price it is served around, not around a median that serving moves."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch

from forecasting.ml.model import QuantileLSTM, pinball_loss
from forecasting.ml.train import TrainConfig, TrainedModel, train

from .conftest import SMALL, TEST_STEPS

ANCHORED = dataclasses.replace(SMALL, anchored=True)  # the default, named so the tests say so


@pytest.mark.parametrize("quantiles", [(0.1, 0.5, 0.9), (0.05, 0.25, 0.5, 0.75, 0.95)])
def test_the_median_is_zero_and_the_others_lie_on_either_side(quantiles):
    torch.manual_seed(0)
    lstm = QuantileLSTM(n_features=4, horizon=6, quantiles=quantiles, hidden=8, anchored=True)
    with torch.no_grad():
        q, _ = lstm(10 * torch.randn(3, 50, 4))
    mid = len(quantiles) // 2
    assert q.shape == (3, 50, 6, len(quantiles))
    assert torch.equal(q[..., mid], torch.zeros_like(q[..., mid]))
    assert (q[..., :mid] < 0).all() and (q[..., mid + 1 :] > 0).all()
    assert (torch.diff(q, dim=-1) > 0).all()


def test_the_median_output_takes_no_part_in_learning():
    # Its loss is |y| / 2 whatever the weights: every gradient comes from the outer quantiles.
    torch.manual_seed(0)
    lstm = QuantileLSTM(n_features=4, horizon=3, quantiles=(0.1, 0.5, 0.9), hidden=8, anchored=True)
    q, _ = lstm(torch.randn(1, 20, 4))
    y, mask = torch.randn(1, 20, 3), torch.ones(1, 20, 3, dtype=torch.bool)
    pinball_loss(q[..., 1:2], y, mask, torch.tensor([0.5])).backward()
    assert all(p.grad is None or not p.grad.any() for p in lstm.parameters())
    unanchored = QuantileLSTM(n_features=4, horizon=3, quantiles=(0.1, 0.5, 0.9), hidden=8)
    q, _ = unanchored(torch.randn(1, 20, 4))
    pinball_loss(q[..., 1:2], y, mask, torch.tensor([0.5])).backward()
    assert unanchored.head.weight.grad.any()


def test_an_anchored_model_serves_its_band_around_the_last_price(recent, recent_model):
    model = recent_model
    assert model.config == ANCHORED  # anchored is the default
    raw = model.module(torch.zeros(1, 30, len(model.scaler_mean)))[0]
    assert torch.equal(raw[..., 1], torch.zeros_like(raw[..., 1]))
    fc = model.forecast(recent)
    prices = np.asarray(fc["prices"])
    np.testing.assert_allclose(prices[:, 1], fc["last_close"], rtol=1e-12)
    assert (prices[:, 0] < fc["last_close"]).all() and (prices[:, 2] > fc["last_close"]).all()
    again = TrainedModel.from_bytes(model.to_bytes())
    assert again.config.anchored and again.module.hparams.anchored
    assert again.forecast(recent) == fc


def test_an_artifact_from_before_the_setting_loads_unanchored(recent, recent_model):
    before = train(recent, dataclasses.replace(SMALL, anchored=False), train_end=len(recent) - TEST_STEPS)
    blob = torch.load(io.BytesIO(before.to_bytes()), weights_only=True)
    del blob["config"]["anchored"]
    buf = io.BytesIO()
    torch.save(blob, buf)
    old = TrainedModel.from_bytes(buf.getvalue())
    assert not old.config.anchored and not old.module.hparams.anchored
    assert old.forecast(recent) == before.forecast(recent)
    assert TrainedModel.from_bytes(before.to_bytes()).forecast(recent) != recent_model.forecast(recent)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_shrink": 0.5},
        {"quantiles": (0.1, 0.9)},
        {"quantiles": (0.1, 0.4, 0.9)},
    ],
)
def test_anchoring_needs_a_median_kept_at_the_last_price(settings):
    with pytest.raises(ValueError, match="anchored"):
        TrainConfig(anchored=True, **settings)
