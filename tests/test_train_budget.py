"""bench/train_budget.py: what it refuses, and that its ratios compare each month with itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402
import train_budget as tb  # noqa: E402


def test_the_command_refuses_bad_input_with_the_reason(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_budget.py"), "--candidate", "ensemble=2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert "train_budget: --candidate takes LABEL:name=value[,name=value], not 'ensemble=2'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--candidate", "two:ensemble=two"], "--config ensemble: 'two' is not a int"),
        (["--symbols", "NOPEUSDT"], "no hourly CSV for NOPEUSDT"),
        (["--months", "-1"], "month numbers k >= 0"),
        (["--folder", "{tmp}"], "has no <SYMBOL>-1h.csv file"),
    ],
)
def test_bad_settings_symbols_months_and_folders_are_refused(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        tb.main([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_a_month_is_trained_as_the_grid_trains_it_and_timed_with_its_forecast(data_dir):
    data, _, n_train = fg.month_data(fg.read_series(data_dir / "ETHUSDT-1h.csv"), 3, 365)
    one = tb.time_one(data, n_train, {"max_epochs": 2, "hidden": 8, "ensemble": 1})
    two = tb.time_one(data, n_train, {"max_epochs": 2, "hidden": 8, "ensemble": 2})
    assert len(one["epochs"]) == 1 and len(two["epochs"]) == 2
    assert all(1 <= e <= 2 for e in one["epochs"] + two["epochs"])
    assert one["train_seconds"] > 0 and 0 < two["forecast_seconds"] < 5
    assert 0 < one["band_seconds"] < 5


def test_ratios_are_taken_month_by_month_against_the_defaults():
    base = [{"train_seconds": s, "band_seconds": s / 10, "forecast_seconds": 0.01, "epochs": [10]} for s in (2.0, 8.0)]
    # Twice the defaults every month: a slow minute on the second month does not blur it.
    cand = [
        {"train_seconds": s, "band_seconds": s / 40, "forecast_seconds": 0.02, "epochs": [10, 12]} for s in (4.0, 16.0)
    ]
    s = tb.summarise(cand, base)
    assert s["ratio_median"] == pytest.approx(2.0) and s["ratio_max"] == pytest.approx(2.0)
    assert s["band_ratio_median"] == pytest.approx(0.5) and s["band_max_ms"] == pytest.approx(400.0)
    assert s["train_median"] == pytest.approx(10.0) and s["train_max"] == pytest.approx(16.0)
    assert s["epochs_median"] == 22 and s["forecast_max_ms"] == pytest.approx(20.0)
