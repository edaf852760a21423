"""docs/RELIABILITY.md is rendered from the tests' records and the load benchmark's numbers: the
numbers appear, and a check that lost rows is shown as a loss."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests import reliability

ROOT = Path(__file__).resolve().parent.parent


def _bench(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def records(tmp_path, monkeypatch):
    folder = tmp_path / "reliability"
    monkeypatch.setattr(reliability, "RESULTS_DIR", folder)
    reliability.record("faults", "PostgreSQL connections cut during writes", writes=417, acknowledged=409)
    reliability.record("faults", "Worker killed while importing candles", lost=3, duplicated=0, candles=4519)
    reliability.record("hostile-input", "oversized CSV uploads", requests=23, statuses={413: 23})
    reliability.record("hostile-input", "API fuzzing against the schema", requests=1877, server_errors=0)
    reliability.record("security", "CSRF refused on every form", forms=11, status_403=11)
    reliability.record("security", "pip-audit report in the test command", outcomes_checked=4)
    reliability.record(
        "security",
        "pip-audit",
        outcome="no known vulnerabilities",
        packages=93,
        audited=93,
        not_checked=0,
        vulnerabilities=0,
    )
    return folder


def load_json(tmp_path) -> Path:
    """A load result made by the benchmark's own summary, so the renderer reads what it writes."""
    load = _bench("load")
    requests = [("page_dashboard", "200", 40.0 + i, True) for i in range(50)] + [
        ("api_tx_add", "201", 90.0, True),
        ("api_tx_add", "500", 1234.5, False),
        ("page_portfolio", "timeout", 30000, False),
    ]
    writes = [
        {"op": "add", "via": "api", "marker": "load:1:u0:1", "status": "201", "acked": True, "tx_id": 5, "user": 0},
        {"op": "add", "via": "api", "marker": "load:1:u0:2", "status": "500", "acked": False, "tx_id": None, "user": 0},
    ]
    checked = {
        k: []
        for k in (
            "lost",
            "duplicated",
            "not_deleted",
            "stored_despite_refusal",
            "unknown_outcome_stored",
            "unknown_outcome_absent",
            "unacknowledged_delete_applied",
            "unexpected_rows",
        )
    }
    tasks = {
        "enqueued": {"forecast_task": 18},
        "succeeded": {"forecast_task": 18},
        "lost": 0,
        "forecasts_before": 3,
        "forecasts_after": 3,
    }
    args = SimpleNamespace(users=50, seconds=60.0, think=[2.0, 6.0], workers=3, concurrency=2)
    summary = load.summarize(
        {"elapsed": 61.3, "requests": requests, "writes": writes, "events": {}},
        checked,
        tasks,
        args,
        {"assets": [], "forecasts": 3, "transactions": 600},
    )
    path = tmp_path / "load.json"
    path.write_text(
        json.dumps(
            {
                "machine": {
                    "date": "2026-11-27 00:00 UTC",
                    "nproc": 2,
                    "load_1m": 3.5,
                    "python": "3.11",
                    "platform": "Linux",
                    "commit": "abc1234",
                },
                "load_1m_end": 4.0,
                **summary,
            }
        )
    )
    return path


def test_report_shows_the_numbers_and_the_loss(records, tmp_path):
    out = tmp_path / "RELIABILITY.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "reliability_report.py"),
            "--records",
            str(records),
            "--load",
            str(load_json(tmp_path)),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = out.read_text()

    # The load: requests, the 5xx it saw, latencies from the summary, and the verdict.
    assert "| requests served | 53 (0.9 per second) |" in text
    assert "| 5xx answers | 1 |" in text
    assert "500: 1, timeout: 1" in text
    # Nearest rank over the 52 answered: the 26th is 65 ms, the 52nd the slow 500; the timeout has no latency.
    assert "| latency, all requests | p50 65.0 ms, p99 1234.5 ms |" in text
    assert "Load: NOT MET (50 users, 53 requests, 1 5xx, 0 writes lost)" in text

    # Each check with its counts, under its section.
    faults = text.split("## Faults survived")[1].split("## Hostile inputs tried")[0]
    assert (
        "| PostgreSQL connections cut during writes | nothing lost or duplicated | writes: 417; acknowledged: 409 |"
    ) in faults
    hostile = text.split("## Hostile inputs tried")[1].split("## Security checks")[0]
    assert "Tried in all: requests: 1,900, server errors: 0." in hostile
    assert "Tried in all" not in faults
    assert "statuses: {413: 23}" in hostile
    assert "CSRF refused on every form" in text.split("## Security checks")[1]
    audit = "outcome: no known vulnerabilities; packages: 93; audited: 93; not checked: 0; vulnerabilities: 0"
    assert audit in text.split("## Dependency audit (pip-audit)")[1]
    assert f"- pip-audit: {audit}" in text
    security = text.split("## Security checks")[1].split("## Dependency audit")[0]
    assert "| pip-audit report in the test command |" in security
    assert "| pip-audit |" not in security

    # The loss is shown where the check is listed and in the summary, not hidden.
    assert "| Worker killed while importing candles | **3 lost** | candles: 4,519 |" in faults
    assert "**1 check lost or duplicated rows.**" in faults
    assert (
        "Lost rows across all checks: 3; duplicated: 0. **Losses in: Worker killed while importing candles.**"
    ) in text
    assert "Worker killed while importing candles" in done.stdout


def test_missing_inputs_are_said_to_be_missing(tmp_path):
    report = _bench("reliability_report")
    (tmp_path / "half.json").write_text('{"section": "faults"')
    records, unreadable = report.load_records(tmp_path)
    text = report.render(
        records, None, {"date": "d", "commit": "c", "nproc": 1, "python": "3", "platform": "p"}, unreadable
    )
    assert records == [] and unreadable and unreadable[0].startswith("half.json")
    assert "Load: not measured" in text
    assert "Unreadable record files: half.json" in text
    assert "No pip-audit result in the records." in text
    assert text.count("No records yet") == 3
