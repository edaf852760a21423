"""bench/forecast_cost.py: each ensemble size is timed on the same candles, its ratio is to the
first size's median, and arguments it cannot use are refused with the reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_cost as fc  # noqa: E402
import forecast_grid as fg  # noqa: E402


def test_sizes_are_timed_side_by_side_on_the_candles_production_reads(tmp_path, monkeypatch):
    import ingest

    monkeypatch.setattr(ingest, "RESULTS", tmp_path)
    fc.main([str(fg.default_folder()), "--symbol", "BTCUSDT", "--members", "1", "2", "--repeat", "3", "--epochs", "1"])
    stored = json.loads((tmp_path / "forecast_cost.json").read_text())
    one, two = stored["rows"]
    assert (one["members"], two["members"]) == (1, 2)
    assert one["ratio"] == 1.0
    assert two["ratio"] == pytest.approx(two["median_ms"] / one["median_ms"])
    # Both read the same stretch: what production reads for the adaptive band, a month and more.
    assert one["candles_read"] == two["candles_read"] > 720
    assert all(0 < r["median_ms"] <= r["p90_ms"] for r in stored["rows"])
    # As a forecast task serves it: the model read back from its artifact, then one forecast.
    assert all(0 < r["loaded_median_ms"] <= r["loaded_p90_ms"] for r in stored["rows"])
    assert one["loaded_ratio"] == 1.0
    assert two["loaded_ratio"] == pytest.approx(two["loaded_median_ms"] / one["loaded_median_ms"])
    # As it serves now: the bytes checked, the model kept from an earlier parse, one forecast.
    assert all(0 < r["kept_median_ms"] <= r["kept_p90_ms"] for r in stored["rows"])
    assert all(
        r["kept_against_loaded"] == pytest.approx(r["kept_median_ms"] / r["loaded_median_ms"]) for r in stored["rows"]
    )
    assert "| 2 |" in (tmp_path / "forecast_cost.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--members", "0"], "--members, --repeat and --epochs must be at least 1"),
        (["--repeat", "0"], "--members, --repeat and --epochs must be at least 1"),
        (["--symbol", "NOPEUSDT"], "no NOPEUSDT-1h.csv in"),
    ],
)
def test_arguments_it_cannot_use_are_refused(args, message):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "forecast_cost.py"), *args], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert message in done.stderr
