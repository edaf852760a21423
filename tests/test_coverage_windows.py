"""bench/coverage_windows.py: a window's coverage is that of all its origins, windows never span
a missing month, and results it cannot use are refused with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import coverage_windows as cw  # noqa: E402


def _run(symbol: str, k: int, coverage: float, origins: int = 700) -> dict:
    return {"symbol": symbol, "k": k, "origins": origins, "methods": {"served": {"coverage": coverage}}}


def _write(folder: Path, name: str, runs: list[dict], **extra) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"runs": runs, **extra}))


def test_a_window_weighs_its_months_by_their_origins(tmp_path):
    _write(tmp_path, "a", [_run("BTCUSDT", 0, 0.76, origins=300), _run("BTCUSDT", 2, 0.90)])
    _write(tmp_path, "b", [_run("BTCUSDT", 1, 0.84, origins=900), _run("BTCUSDT", 3, 0.80)])
    runs = cw.load_runs(["a", "b"], tmp_path)
    one = cw.windows(runs, 1)
    assert [w["in_range"] for w in one] == [False, False, False, True]
    two = cw.windows(runs, 2)
    assert [w["months"] for w in two] == [[0, 1], [2, 3]]
    # (300 x 0.76 + 900 x 0.84) / 1200 = 0.82: in range, though neither month is.
    assert two[0]["coverage"] == pytest.approx(0.82)
    assert two[0]["in_range"] and not two[1]["in_range"]  # (0.90 + 0.80) / 2 = 0.85
    rows = cw.summary(runs, [1, 2])
    assert rows[0]["in_range"] == 0.25 and rows[1]["in_range"] == 0.5
    assert rows[1]["big_three_windows"] == 2


def test_a_window_never_spans_a_missing_month(tmp_path):
    # Month 1 failed to train (an error run): 0 and 2 are not consecutive.
    failed = {"symbol": "ETHUSDT", "k": 1, "error": "gaps"}
    _write(tmp_path, "a", [_run("ETHUSDT", 0, 0.8), failed, _run("ETHUSDT", 2, 0.8)])
    runs = cw.load_runs(["a"], tmp_path)
    assert cw.windows(runs, 2) == []
    assert len(cw.windows(runs, 1)) == 2


def test_results_it_cannot_use_are_refused(tmp_path):
    _write(tmp_path, "a", [_run("BTCUSDT", 0, 0.8)])
    _write(tmp_path, "again", [_run("BTCUSDT", 0, 0.8)])
    _write(tmp_path, "band", [_run("BTCUSDT", 1, 0.8)], band_only=True)
    with pytest.raises(cw.WindowsError, match="BTCUSDT month 0 is in more than one of the results"):
        cw.load_runs(["a", "again"], tmp_path)
    with pytest.raises(cw.WindowsError, match="band is a band-only run"):
        cw.load_runs(["band"], tmp_path)
    with pytest.raises(cw.WindowsError, match="no results named missing"):
        cw.load_runs(["missing"], tmp_path)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "coverage_windows.py"), "no/such/results"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "coverage_windows: no results named no/such/results" in out.stderr
    assert "Traceback" not in out.stderr
