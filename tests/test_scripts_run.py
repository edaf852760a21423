"""scripts/run as a person starts it: debug pages off unless asked for, and Chart.js from the local
copy when setup installed one (offline, no chart page waits for the CDN first). The script runs
in a copy of its folder whose setup and Python only record what they were given."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Stands in for .venv/bin/python: one line per call with the arguments and the settings that matter.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$* | DEBUG=${DJANGO_DEBUG-unset} CHARTJS=${MUR_CHARTJS_SOURCE-unset} SETTINGS=${DJANGO_SETTINGS_MODULE-unset}"
"""


@pytest.fixture
def checkout(tmp_path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run", tmp_path / "scripts" / "run")
    (tmp_path / "scripts" / "setup").write_text("#!/usr/bin/env bash\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    for script in (tmp_path / "scripts" / "setup", python):
        script.chmod(0o755)
    return tmp_path


def run(checkout: Path, **env) -> list[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_DEBUG", "MUR_CHARTJS_SOURCE")}
    base.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run(
        ["bash", str(checkout / "scripts" / "run")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def test_the_site_starts_without_debug_pages_and_with_the_local_chartjs(checkout):
    dist = checkout / "node_modules" / "chart.js" / "dist"
    dist.mkdir(parents=True)
    (dist / "chart.umd.min.js").write_text("/* Chart.js */")
    lines = run(checkout)
    # migrate, demo_setup, then runall: every one with debug off and the local Chart.js.
    assert [line.split(" |")[0].split()[1] for line in lines] == ["migrate", "demo_setup", "runall"]
    for line in lines:
        assert line.endswith("| DEBUG=false CHARTJS=local SETTINGS=mur_site.settings.local"), line


def test_debug_and_the_cdn_only_when_asked_for_or_without_a_local_copy(checkout):
    asked = run(checkout, DJANGO_DEBUG="true", MUR_CHARTJS_SOURCE="cdn")
    assert asked[-1].endswith("| DEBUG=true CHARTJS=cdn SETTINGS=mur_site.settings.local")
    # No local copy (npm missing at setup): the settings' default, the CDN with its fallback.
    assert run(checkout)[-1].endswith("| DEBUG=false CHARTJS=unset SETTINGS=mur_site.settings.local")
