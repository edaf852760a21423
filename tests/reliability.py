"""What the fault, security and load checks tried and what they found, for docs/RELIABILITY.md.

Tests call `record(...)` with the numbers they measured; `bench/reliability_report.py` renders the
report from these files and from `bench/results/load.json`. Files go under `var/reliability/`
(not committed); the rendered report is.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("MUR_RELIABILITY_DIR", ROOT / "var" / "reliability"))


def record(section: str, name: str, *, lost: int = 0, duplicated: int = 0, **facts) -> Path:
    """Write one check's outcome: `section` is "faults", "security" or "hostile-input"; `name` says
    what was done in words; `lost` and `duplicated` count rows that went missing or appeared twice
    (the target is zero); `facts` are whatever numbers explain the outcome (requests, statuses...).
    Only called when the test's assertions have passed, so a file means the check held."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{section} {name}".lower()).strip("-")[:120]
    path = RESULTS_DIR / f"{slug}.json"
    payload = {
        "section": section,
        "name": name,
        "lost": lost,
        "duplicated": duplicated,
        "facts": facts,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(path)
    return path
