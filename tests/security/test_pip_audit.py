"""scripts/audit (run by scripts/test before pytest) says what pip-audit found, prominently, fails
the run on a known vulnerability, and never reports "no vulnerabilities" when it could not check.
pip-audit itself is replaced by a stand-in module that answers as the real one does, so each
outcome is reproducible without the vulnerability service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.reliability import record

ROOT = Path(__file__).resolve().parents[2]


def run_audit(tmp_path: Path, *, report: dict | None = None, error: str | None = None):
    fake = tmp_path / "fake" / "pip_audit"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text(
        textwrap.dedent("""
        import json, os, sys
        sys.argv[1:] and open(os.environ["FAKE_ARGS"], "w").write(json.dumps(sys.argv[1:]))
        if os.environ.get("FAKE_ERROR"):
            raise ConnectionError(os.environ["FAKE_ERROR"])
        report = json.loads(os.environ["FAKE_REPORT"])
        print(json.dumps(report))
        sys.exit(1 if any(d.get("vulns") for d in report["dependencies"]) else 0)
    """)
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(fake.parent),
        "FAKE_ARGS": str(tmp_path / "args.json"),
        "FAKE_REPORT": json.dumps(report or {}),
        "FAKE_ERROR": error or "",
        "MUR_RELIABILITY_DIR": str(tmp_path / "reliability"),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    written = json.loads((tmp_path / "reliability" / "security-pip-audit.json").read_text())
    args = json.loads((tmp_path / "args.json").read_text())
    return result, written, args


def dep(name, version="1.0", vulns=None, skip=None):
    return {"name": name, "skip_reason": skip} if skip else {"name": name, "version": version, "vulns": vulns or []}


def test_a_known_vulnerability_is_printed_and_fails_the_run(tmp_path):
    vuln = {
        "id": "GHSA-xxxx-yyyy-zzzz",
        "fix_versions": ["5.2.99"],
        "aliases": ["CVE-2099-0001"],
        "description": "SQL injection in a made-up lookup.",
    }
    result, written, args = run_audit(
        tmp_path, report={"dependencies": [dep("django", "5.2.19", [vuln]), dep("celery", "5.7.0")], "fixes": []}
    )
    assert result.returncode == 1
    assert "pip-audit: KNOWN VULNERABILITIES in 1 pinned package(s)" in result.stdout
    assert "django 5.2.19: GHSA-xxxx-yyyy-zzzz (fixed in: 5.2.99)" in result.stdout
    assert written["facts"] == {
        "outcome": "vulnerabilities found",
        "packages": 2,
        "audited": 2,
        "not_checked": 0,
        "vulnerabilities": 1,
        "ignored": [],
    }
    # Both pinned files, without resolving (they pin every package).
    assert args[:4] == ["-r", "requirements.txt", "-r", "requirements-dev.txt"] and "--no-deps" in args
    record("security", "pip-audit report: a known vulnerability fails the run", exit_status=result.returncode)


@pytest.mark.parametrize("case", ["unreachable", "no answers", "partly"])
def test_what_could_not_be_checked_is_said_and_does_not_fail_the_run(tmp_path, case):
    if case == "unreachable":
        result, written, _ = run_audit(tmp_path, error="Failed to resolve the vulnerability service")
        assert "NOT CHECKED: the vulnerability service could not be reached" in result.stdout
        assert written["facts"]["outcome"] == "not checked"
    elif case == "no answers":
        result, written, _ = run_audit(
            tmp_path,
            report={
                "dependencies": [dep("django", skip="Dependency not found and could not be audited: django (5.2.19)")]
            },
        )
        assert "NOT CHECKED: the vulnerability service answered for none of the 1 packages" in result.stdout
        assert "not a pass" in result.stdout
        assert written["facts"]["not_checked"] == 1
    else:
        result, written, _ = run_audit(
            tmp_path,
            report={
                "dependencies": [dep("celery", "5.7.0"), dep("torch", skip="Dependency not found: torch (2.13.0+cpu)")]
            },
        )
        assert "no known vulnerabilities in the 1 packages checked; NOT CHECKED: torch" in result.stdout
        assert written["facts"]["outcome"] == "partly checked"
    assert result.returncode == 0
    assert "no known vulnerabilities in the" not in result.stdout or case == "partly"
    record("security", f"pip-audit report: {case} is said, not passed", exit_status=result.returncode)


def test_the_test_command_runs_the_audit_before_pytest():
    script = (ROOT / "scripts" / "test").read_text()
    assert script.index("scripts/setup") < script.index("scripts/audit") < script.index(".venv/bin/pytest")
    record("security", "pip-audit runs in the test command before pytest", order_checked=3)
