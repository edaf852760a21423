"""bench/loss_by_horizon.py: its split of a month's loss adds back up to the grid's score of that
month, the summary's arithmetic holds, and bad input is refused with the reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402
import loss_by_horizon as lbh  # noqa: E402

SMALL = {"max_epochs": 2, "hidden": 8}


def test_the_split_adds_up_to_the_grids_score_of_the_month(data_dir):
    path = data_dir / "BTCUSDT-1h.csv"
    losses = lbh.month_losses(fg.read_series(path), 1, SMALL)
    grid = fg.run_month(("BTCUSDT", str(path), 1, SMALL, fg.TRAIN_DAYS, False))
    naive = losses["naive_band"].sum()
    for name in ("model", "seasonal_band"):
        assert losses[name].shape == (24, 3)
        assert losses[name].sum() / naive == pytest.approx(grid["methods"][name]["pinball_vs_naive_band"], rel=1e-9)
    # Every method here serves the last price as its median: that column is the same for all.
    np.testing.assert_allclose(losses["model"][:, 1], losses["naive_band"][:, 1], rtol=1e-9)
    np.testing.assert_allclose(losses["seasonal_band"][:, 1], losses["naive_band"][:, 1], rtol=1e-9)


def test_the_overall_ratio_is_the_median_share_plus_the_outer_ratio():
    rng = np.random.default_rng(3)
    naive = rng.uniform(1.0, 2.0, size=(24, 3))
    model = naive.copy()
    model[:, [0, 2]] *= 0.97  # outer quantiles 3% better, median the same
    s = lbh.summarise([{"model": model, "seasonal_band": naive, "naive_band": naive}])
    share = naive[:, 1].sum() / naive.sum()
    assert s["median_share"] == pytest.approx(share)
    assert s["methods"]["model"]["outer"] == pytest.approx(0.97)
    assert s["methods"]["model"]["overall"] == pytest.approx(share + (1 - share) * 0.97)
    assert s["methods"]["seasonal_band"]["overall"] == pytest.approx(1.0)
    # The outer ratio that an overall 0.985 asks for, at this median share.
    needed = s["outer_needed_for_0.985"]
    assert share + (1 - share) * needed == pytest.approx(0.985)
    assert sum(s["step_share"]) == pytest.approx(1.0)
    assert s["methods"]["model"]["beats_band_by_step"] == [1.0] * 24


def test_an_empty_folder_or_unknown_symbol_is_refused(tmp_path, data_dir):
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "bench" / "loss_by_horizon.py"), *a], capture_output=True, text=True, timeout=120
    )
    out = run(str(tmp_path))
    assert out.returncode == 2
    assert f"loss_by_horizon: no usable hourly kline CSV: {tmp_path} has no <SYMBOL>-1h.csv file" in out.stderr
    out = run(str(data_dir), "--symbols", "NOPEUSDT")
    assert out.returncode == 2 and "loss_by_horizon: none of NOPEUSDT is in the folders" in out.stderr
    assert "Traceback" not in out.stderr
