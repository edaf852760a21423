"""Recency weighting of the training targets: recent months weigh more, the learning rate means the same."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from forecasting.ml.model import pinball_loss
from forecasting.ml.train import _chunks, recency_weights, train

from .conftest import SMALL, TEST_STEPS


def test_weights_halve_every_half_life_back_and_average_one():
    mask = np.ones((1000, 3), dtype=bool)
    mask[::7, 1] = False
    w = recency_weights(mask, 1000, 100.0)
    assert w[899, 0] == pytest.approx(w[999, 0] / 2)
    assert w[699, 0] == pytest.approx(w[999, 0] / 8)
    assert np.all(w[~mask] == 0)
    assert w[mask].mean() == pytest.approx(1.0)


def test_no_half_life_leaves_the_mask_as_it_is():
    mask = np.random.default_rng(0).random((50, 4)) > 0.3
    assert recency_weights(mask, 50, 0.0) is mask


def test_a_weighted_target_counts_as_its_weight_and_light_batches_move_less():
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.zeros(1, 2, 1, 3)
    y = torch.tensor([[[1.0], [3.0]]])
    plain = pinball_loss(pred, y, torch.ones(1, 2, 1, dtype=torch.bool), quantiles)
    weighted = pinball_loss(pred, y, torch.tensor([[[1.0], [3.0]]]), quantiles)
    per_entry = torch.maximum(quantiles * y.unsqueeze(-1), (quantiles - 1) * y.unsqueeze(-1)).sum(-1).flatten()
    assert plain == pytest.approx(float(per_entry.sum() / 2))
    assert weighted == pytest.approx(float((per_entry[0] + 3 * per_entry[1]) / 2))
    light = pinball_loss(pred, y, torch.full((1, 2, 1), 0.25), quantiles)
    assert light == pytest.approx(float(plain) / 4)


def test_chunks_carry_the_weights():
    n, horizon = 300, 2
    mask = np.ones((n, horizon), dtype=bool)
    w = recency_weights(mask, n, 50.0)
    _, _, ms = _chunks(np.zeros((n, 1)), np.zeros((n, horizon)), w, np.zeros(n, dtype=int), n, 128, 16)
    assert ms.dtype == torch.float32
    np.testing.assert_allclose(ms[0, :128].numpy(), w[:128], rtol=1e-6)
    assert ms[-1].max() > ms[0].max()  # the newest chunk weighs more than the oldest


def test_training_with_recency_weights_learns_other_weights(recent, recent_model):
    weighted = train(recent, dataclasses.replace(SMALL, recency_halflife=500.0), train_end=len(recent) - TEST_STEPS)
    again = train(recent, dataclasses.replace(SMALL, recency_halflife=500.0), train_end=len(recent) - TEST_STEPS)
    head = "head.weight"
    assert not torch.equal(weighted.module.state_dict()[head], recent_model.module.state_dict()[head])
    assert torch.equal(weighted.module.state_dict()[head], again.module.state_dict()[head])


def test_a_negative_half_life_is_refused():
    with pytest.raises(ValueError, match="recency_halflife must be a non-negative number of steps"):
        dataclasses.replace(SMALL, recency_halflife=-1.0)
