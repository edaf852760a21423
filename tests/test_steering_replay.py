"""bench/steering_replay.py: its 'today' row is the band the grid scores, each other way of steering
reduces to today's where it should, and bad input is refused with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402
import market_steering as ms  # noqa: E402
import steering_replay as sr  # noqa: E402

from forecasting.ml.band import in_target_volatility  # noqa: E402
from forecasting.ml.config import TrainConfig  # noqa: E402

CONFIG = TrainConfig(threads=1)
ALPHA = 1 - CONFIG.band


@pytest.fixture(scope="module")
def month(data_dir):
    # The newest tuning month of one pair, fitted once for the tests here.
    return ms.fitted(data_dir / "BTCUSDT-1h.csv", 1, CONFIG)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "steering_replay.py"), *args], capture_output=True, text=True, timeout=120
    )


def test_today_replays_the_band_the_grid_scores(month, data_dir):
    replayed = sr.replay_pair(month, "today", CONFIG)
    grid = fg.run_month(("BTCUSDT", str(data_dir / "BTCUSDT-1h.csv"), 1, {}, fg.TRAIN_DAYS, True))
    band = grid["methods"]["seasonal_band"]
    assert replayed["coverage"] == pytest.approx(band["coverage"], abs=1e-12)
    assert replayed["pinball_vs_naive_band"] == pytest.approx(band["pinball_vs_naive_band"], rel=1e-9)


def test_closed_loop_differs_from_open_only_through_the_smoothing(month):
    rel, start = month["rel"], month["start"]
    open_ = sr.steer(rel, start, rate=0.04, alpha=ALPHA, smooth=0.0, closed=False)
    closed = sr.steer(rel, start, rate=0.04, alpha=ALPHA, smooth=0.0, closed=True)
    np.testing.assert_array_equal(open_, closed)
    smoothed_open = sr.steer(rel, start, rate=0.04, alpha=ALPHA, smooth=24.0, closed=False)
    smoothed_closed = sr.steer(rel, start, rate=0.04, alpha=ALPHA, smooth=24.0, closed=True)
    assert not np.allclose(smoothed_open[start:], smoothed_closed[start:])
    assert np.all(smoothed_open[:start] == 0) and np.any(smoothed_open[start:] != 0)


def test_one_expert_is_plain_adaptive_steering(month):
    rel, start = month["rel"], month["start"]
    alone = sr.experts(rel, start, rates=(0.03,), alpha=ALPHA)
    np.testing.assert_allclose(alone, sr.steer(rel, start, rate=0.03, alpha=ALPHA, smooth=0.0, closed=False))
    # Two experts: the served shift lies between theirs, weighted towards the lower loss.
    both = sr.experts(rel, start, rates=(0.01, 0.08), alpha=ALPHA)
    slow = sr.experts(rel, start, rates=(0.01,), alpha=ALPHA)
    fast = sr.experts(rel, start, rates=(0.08,), alpha=ALPHA)
    lo, hi = np.minimum(slow, fast), np.maximum(slow, fast)
    assert np.all((both >= lo - 1e-12) & (both <= hi + 1e-12))
    assert not np.allclose(both[start:], slow[start:]) and not np.allclose(both[start:], fast[start:])


def test_judging_power_runs_from_the_origin_volatility_to_the_target_one(month):
    frame = month["frame"]
    y = np.random.default_rng(0).normal(size=(len(frame.sigma), CONFIG.horizon))
    np.testing.assert_array_equal(in_target_volatility(y, frame, 0.0), y)
    full, half = in_target_volatility(y, frame), in_target_volatility(y, frame, 0.5)
    ok = np.isfinite(full) & (y != 0)
    np.testing.assert_allclose(half[ok] ** 2, full[ok] * y[ok], rtol=1e-9)


def test_unknown_variants_and_empty_folders_are_refused(tmp_path):
    out = _run("--variants", "today", "louder")
    assert out.returncode == 2 and "unknown variant louder; known: today," in out.stderr
    (tmp_path / "notes.txt").write_text("nothing here")
    out = _run(str(tmp_path))
    assert out.returncode == 2
    assert f"steering_replay: no usable hourly kline CSV: {tmp_path} has no <SYMBOL>-1h.csv file" in out.stderr
    assert "Traceback" not in out.stderr
