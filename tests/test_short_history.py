"""bench/short_history.py: the windows it cuts, its tuning and report sets, the settings scored on the
same windows, and what it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402
import short_history as sh  # noqa: E402


def test_windows_start_at_the_first_candle_and_alternate_between_the_sets():
    days = 24
    found = sh.windows({"AUSDT": 700 * days, "BUSDT": 120 * days}, [100, 400])
    a = [(start // days, length // days, role) for symbol, start, length, role in found if symbol == "AUSDT"]
    assert a == [
        (0, 100, "tuning"),
        (150, 100, "report"),
        (300, 100, "tuning"),
        (450, 100, "report"),
        (600, 100, "tuning"),
        (0, 400, "tuning"),
        (150, 400, "report"),
        (300, 400, "tuning"),
    ]
    # A pair shorter than a window has none of that length.
    assert [(s // days, n // days) for sym, s, n, _ in found if sym == "BUSDT"] == [(0, 100)]


def test_every_setting_is_scored_on_the_same_windows(tmp_path, monkeypatch):
    import ingest

    folder = tmp_path / "klines"
    folder.mkdir()
    (folder / "BTCUSDT-1h.csv").symlink_to(fg.default_folder() / "BTCUSDT-1h.csv")
    monkeypatch.setattr(ingest, "RESULTS", tmp_path)
    sh.main([str(folder), "--days", "100", "--candidate", "skewed:base_shape=empirical,profile_prior=0"])
    stored = json.loads((tmp_path / "short_history.json").read_text())
    runs = stored["runs"]
    by_setting = {
        label: {(r["start_day"], r["role"]) for r in runs if r["setting"] == label} for label in ("defaults", "skewed")
    }
    assert by_setting["defaults"] == by_setting["skewed"]
    assert {role for _, role in by_setting["defaults"]} == {"tuning", "report"}
    assert min(start for start, _ in by_setting["defaults"]) == 0
    for r in runs:
        assert r["days"] == 100 and r["start_day"] % 150 == 0
        assert 0.5 < r["pinball_vs_naive_band"] < 1.5 and 0 < r["coverage"] <= 1
    # The settings differ only in the band's shape and profile: their scores differ too.
    scores = {
        label: [r["pinball_vs_naive_band"] for r in sorted(runs, key=lambda r: r["start_day"]) if r["setting"] == label]
        for label in ("defaults", "skewed")
    }
    assert scores["defaults"] != scores["skewed"]
    summary = stored["summaries"]["tuning|100|defaults"]
    assert summary["runs"] == sum(1 for r in runs if r["setting"] == "defaults" and r["role"] == "tuning")
    text = (tmp_path / "short_history.md").read_text()
    assert "### tuning" in text and "### report" in text and "| 100 | skewed |" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["--days", "50"], "--days must each be at least 61"),
        (["--candidate", "base_shape=normal"], "--candidate takes LABEL:name=value[,name=value]"),
        (["--candidate", "x:base_shape=laplace"], "base_shape must be 'empirical' or 'normal'"),
        (["{tmp}"], "has no <SYMBOL>-1h.csv file"),
    ],
)
def test_bad_arguments_and_folders_are_refused_with_the_reason(tmp_path, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "short_history.py"), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
