"""bench/forecast_grid.py: the months it picks, what it refuses, and one month run as production would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forecast_grid.py"), *args], capture_output=True, text=True, timeout=120
    )


def test_a_folder_with_no_usable_csv_is_refused_with_the_reason(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    out = _run(str(tmp_path))
    assert out.returncode == 2
    assert f"forecast_grid: no usable hourly kline CSV: {tmp_path} has no <SYMBOL>-1h.csv file" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_broken_csv_is_named_and_nothing_runs(tmp_path):
    (tmp_path / "FOOUSDT-1h.csv").write_text("open_time,open,high,low,close\n1,2,3,1,2\n")
    (tmp_path / "BARUSDT-1h.csv").write_text("open_time,open,high,low,close,volume\n0,1,1,1,1,1\n0,1,1,1,1,1\n")
    out = _run(str(tmp_path))
    assert out.returncode == 2
    assert "FOOUSDT-1h.csv: no volume column" in out.stderr
    assert "BARUSDT-1h.csv: time 1970-01-01T00:00 UTC appears twice" in out.stderr


def test_a_missing_folder_and_bad_settings_are_refused(tmp_path):
    out = _run(str(tmp_path / "absent"))
    assert out.returncode == 2 and f"{tmp_path / 'absent'} is not a folder" in out.stderr
    out = _run("--config", "aci_rate=fast")
    assert out.returncode == 2 and "--config aci_rate: 'fast' is not a float" in out.stderr
    out = _run("--config", "colour=red")
    assert out.returncode == 2 and "TrainConfig field, not 'colour=red'" in out.stderr


def test_months_are_fixed_by_their_number_and_need_a_whole_year(data_dir):
    series = fg.read_series(data_dir / "BTCUSDT-1h.csv")
    months = fg.months_of(series, 24)
    assert months == list(range(24))  # five years of candles: every month has its year
    assert [fg.role(k) for k in months[:4]] == ["report", "tuning", "report", "tuning"]
    young = fg.window(series, int(series.times[-1]) - 400 * fg.DAY_MS, int(series.times[-1]) + 1)
    assert fg.months_of(young, 24) == [0]  # 400 days: only the newest month has 365 days before it


def test_one_month_is_gated_on_the_month_before_and_scored_on_itself(data_dir):
    run = fg.run_month(("BTCUSDT", str(data_dir / "BTCUSDT-1h.csv"), 0, {"max_epochs": 2, "hidden": 8}, 365, False))
    series = fg.read_series(data_dir / "BTCUSDT-1h.csv")
    assert run["cut"] == int(series.times[-1]) + fg.HOUR_MS - fg.MONTH_MS
    assert run["origins"] > 600  # the month's origins with a whole day after them
    served = run["methods"]["served"]
    chosen = "model" if run["gate"]["passed"] else "seasonal_band"
    assert served == run["methods"][chosen]
    assert run["methods"]["naive_band"]["pinball_vs_naive_band"] == 1.0
    for name in fg.METHODS:
        assert 0.5 < run["methods"][name]["coverage"] <= 1.0
    # The seasonal band's median is the last price: its point error is naive's exactly.
    assert run["methods"]["seasonal_band"]["mae_vs_naive"] == pytest.approx(1.0, abs=1e-12)
    summary = fg.summary([run])
    assert summary["runs"] == 1
    assert summary["gate_pass_rate"] == float(run["gate"]["passed"])
    assert np.isfinite(summary["methods"]["served"]["pinball_median"])
    # A stored result is summarised again from its runs alone, as the grid summarised it.
    results = {"machine": {}, "seconds": 60.0, "jobs": 1, "overrides": {}, "train_days": 365, "band_only": False}
    again, report = fg.render(results | {"runs": [run]})
    assert again["summaries"]["report"] == summary | {"jobs": 1}
    assert "1 process of one torch thread" in report and "### Per asset, report months" in report
    # The timing sentence says how many grid processes shared the cores.
    assert "one grid process at a time" in "\n".join(fg.table("report", summary | {"jobs": 1}))
    assert "2 grid processes share" in "\n".join(fg.table("report", summary | {"jobs": 2}))


def test_compared_runs_name_only_the_settings_that_shaped_them(tmp_path, monkeypatch):
    import json
    from dataclasses import asdict

    import ingest

    monkeypatch.setattr(ingest, "RESULTS", tmp_path)
    band = {"pinball_median": 1.001, "coverage_in_range": 0.9, "mae_max": 1.0}
    model = band | {"pinball_p10": 0.98, "pinball_p90": 1.02}
    lstm = asdict(fg.TrainConfig(threads=1)) | {"ensemble": 3, "max_epochs": 20}
    # Settings of a discarded experiment: named where a run set them, not where they were off.
    runs = {
        "band": {"config": lstm | {"aci_rate": 0.05}, "band_only": True, "train_days": fg.TRAIN_DAYS},
        "model": {"config": lstm | {"head_rank": 0, "blend_fixed": 0.75}, "train_days": fg.TRAIN_DAYS},
    }
    runs["band"]["summaries"] = {"tuning": {"runs": 96, "methods": {"seasonal_band": band}}}
    runs["model"]["summaries"] = {
        "tuning": {
            "runs": 96,
            "methods": {"model": model, "seasonal_band": band, "served": band},
            "model_beats_seasonal": 0.6,
            "gate_pass_rate": 0.5,
            "train_seconds_max": 4.0,
        }
    }
    for name, r in runs.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(r))
    fg.compare(["band:band alone", "model:three seeds"], "side_by_side")
    rows = {line.split(" (tuning)")[0]: line for line in (tmp_path / "side_by_side.md").read_text().splitlines()}
    # The band-only run is the same whatever the LSTM's settings: only its own are named.
    assert "| aci_rate=0.05, band only |" in rows["| band alone"]
    assert "| max_epochs=20, ensemble=3, blend_fixed=0.75 |" in rows["| three seeds"]


def test_a_share_is_judged_by_calendar_months_not_by_runs():
    months = np.repeat(np.arange(12), 3)  # twelve months of three pairs each
    # The same 24 hits of 36, once spread over every month, once as whole months hit or missed.
    spread = np.tile([1.0, 1.0, 0.0], 12)
    clustered = np.repeat(np.tile([1.0, 1.0, 0.0], 4), 3)
    lo_s, hi_s = fg.month_interval(spread, months)
    lo_c, hi_c = fg.month_interval(clustered, months)
    assert lo_s == hi_s == pytest.approx(2 / 3)  # every month alike: nothing to resample
    assert lo_c < 2 / 3 < hi_c and hi_c - lo_c > 0.3  # twelve pieces of evidence, not 36
    assert fg.month_interval(clustered, months) == (lo_c, hi_c)  # seeded


def test_render_names_a_missing_result(tmp_path, monkeypatch):
    import ingest

    monkeypatch.setattr(ingest, "RESULTS", tmp_path)
    with pytest.raises(fg.GridError, match="no results named absent"):
        fg.grid(["--render", "absent"])
    with pytest.raises(fg.GridError, match="--render NAME"):
        fg.grid(["--render"])


def test_a_candidate_reads_tuple_values_with_their_commas():
    # Shared by bench/train_budget.py and bench/short_history.py.
    label, overrides = fg.parse_candidate("wide:quantiles=0.05,0.5,0.95,seed=2")
    assert (label, overrides) == ("wide", {"quantiles": (0.05, 0.5, 0.95), "seed": 2})
    with pytest.raises(fg.GridError, match="--candidate takes LABEL:name=value"):
        fg.parse_candidate("seed=2")
