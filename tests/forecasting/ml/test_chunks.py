"""Chunked training: chunks overlap by the burn-in, and every target is trained on exactly once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.ml.data import build_frame, targets
from forecasting.ml.model import QuantileLSTM, pinball_loss
from forecasting.ml.train import _chunks


def _check(mask, seg, end, chunk, burn_in):
    n, horizon = mask.shape
    # Feature 0 is the step number + 1, so a chunk tells which steps it holds (0 is padding).
    x = np.column_stack([np.arange(1, n + 1), np.zeros(n)]).astype(np.float64)
    y = np.zeros((n, horizon))
    xs, _, ms = _chunks(x, y, mask, seg, end, chunk, burn_in)
    assert xs.shape[1] == chunk and ms.shape[1:] == (chunk, horizon)
    covered = np.zeros((n, horizon), dtype=int)
    previous = None
    for cx, cm in zip(xs.numpy(), ms.numpy(), strict=True):
        steps = cx[:, 0].astype(int) - 1
        real = steps >= 0
        assert np.all(real[: real.sum()]), "padding only at the end"
        steps = steps[real]
        assert not cm[~real].any(), "padding is never a target"
        assert np.all(np.diff(steps) == 1) and steps[-1] < end
        assert np.all(seg[steps] == seg[steps[0]]), "a chunk never spans a gap"
        np.testing.assert_array_equal(cm[real], mask[steps])
        if previous is not None and seg[previous[0]] == seg[steps[0]]:
            overlap = np.intersect1d(previous, steps)
            np.testing.assert_array_equal(overlap, previous[-burn_in:])
            np.testing.assert_array_equal(overlap, steps[:burn_in])
        covered[steps[burn_in:]] += cm[real][burn_in:]
        previous = steps
    expected = np.zeros((n, horizon), dtype=int)
    expected[:end] = mask[:end]
    np.testing.assert_array_equal(covered, expected)
    return len(xs)


def test_chunks_on_the_real_gap(gapped):
    frame = build_frame(gapped, min_history=48)
    _, mask = targets(frame, 24)
    end = 2400
    t = np.arange(len(gapped))[:, None]
    train_mask = mask & (t + np.arange(1, 25)[None, :] < end)
    count = _check(train_mask, frame.seg, end, chunk=512, burn_in=48)
    # 790 steps before the gap, 1610 after it: 2 + 4 chunks of 512 overlapping by 48.
    assert count == 2 + 4


@pytest.mark.parametrize("lengths", [(250, 15, 400, 335), (100, 81, 82, 1000)])
def test_chunks_on_many_segments(lengths):
    burn_in, chunk = 20, 100
    seg = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.concatenate([np.arange(k) for k in lengths])
    rng = np.random.default_rng(0)
    mask = (rng.random((len(seg), 3)) < 0.7) & (pos >= burn_in)[:, None]  # no target before a full burn-in
    _check(mask, seg, len(seg) - 37, chunk, burn_in)


def test_loss_ignores_the_burn_in():
    torch.manual_seed(0)
    burn_in = 10
    model = QuantileLSTM(n_features=3, horizon=2, quantiles=(0.1, 0.5, 0.9), hidden=4, burn_in=burn_in)
    x, y = torch.randn(2, 30, 3), torch.randn(2, 30, 2)
    mask = torch.ones(2, 30, 2, dtype=torch.bool)
    base = model._loss((x, y, mask))
    y2 = y.clone()
    y2[:, :burn_in] += 100
    assert torch.equal(model._loss((x, y2, mask)), base)
    y2[:, burn_in] += 100
    assert model._loss((x, y2, mask)) > base


def test_pinball_loss_and_its_gradient_are_the_textbook_ones():
    torch.manual_seed(1)
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    pred = torch.randn(3, 7, 4, 3, requires_grad=True)
    y, mask = torch.randn(3, 7, 4), torch.rand(3, 7, 4) > 0.3
    diff = y.unsqueeze(-1) - pred
    textbook = (torch.maximum(quantiles * diff, (quantiles - 1) * diff) * mask.unsqueeze(-1)).sum() / mask.sum()
    (want,) = torch.autograd.grad(textbook, pred)
    loss = pinball_loss(pred, y, mask, quantiles)
    (got,) = torch.autograd.grad(loss, pred)
    assert loss.item() == pytest.approx(textbook.item(), rel=1e-6)
    assert torch.allclose(got, want, atol=1e-7)
