"""The EWMA volatility is the recurrence its docstring states, step by step, exactly: the fast loop
must not change a single bit of what every forecast and training reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.ml.data import ewma_volatility


def reference(returns, seg, halflife, squares=None):
    """The definition, one numpy step at a time."""
    squares = returns * returns if squares is None else squares
    alpha = 1 - 0.5 ** (1 / halflife)
    out = np.empty(len(returns))
    var, count = np.nan, 0
    for t in range(len(returns)):
        if t == 0 or seg[t] != seg[t - 1]:
            var, count = np.nan, 0
        if np.isfinite(squares[t]):
            count += 1
            w = 1.0 if count == 1 else max(alpha, 1.0 / count)
            var = squares[t] if count == 1 else (1 - w) * var + w * squares[t]
        out[t] = np.sqrt(var) if np.isfinite(var) else np.nan
    return np.maximum(out, 1e-5)


@pytest.mark.parametrize("n", [1, 2, 50, 5000])
@pytest.mark.parametrize("halflife", [1.0, 7.5, 24.0])
def test_equals_the_recurrence_bit_for_bit(n, halflife):
    rng = np.random.default_rng(n)
    returns = rng.standard_normal(n) * 0.01
    returns[rng.random(n) < 0.02] = np.nan  # a segment's first step, or a gap
    returns[rng.random(n) < 0.01] = 0.0  # flat steps hit the floor
    seg = np.cumsum(rng.random(n) < 0.002)
    assert np.array_equal(ewma_volatility(returns, seg, halflife), reference(returns, seg, halflife), equal_nan=True)
    squares = np.abs(returns)
    assert np.array_equal(
        ewma_volatility(returns, seg, halflife, squares), reference(returns, seg, halflife, squares), equal_nan=True
    )


def test_restarts_in_each_segment_and_never_looks_ahead():
    returns = np.array([math.nan, 0.02, 0.04, math.nan, 0.03, 0.01])
    seg = np.array([0, 0, 0, 1, 1, 1])
    out = ewma_volatility(returns, seg, 24.0)
    assert math.isnan(out[0]) and math.isnan(out[3])
    assert out[1] == pytest.approx(0.02) and out[4] == pytest.approx(0.03)  # a new segment starts afresh
    # The expanding mean at first: the second value of a segment is the mean of two squares.
    assert out[2] == pytest.approx(math.sqrt((0.02**2 + 0.04**2) / 2))
    assert np.array_equal(ewma_volatility(returns[:3], seg[:3], 24.0), out[:3], equal_nan=True)
