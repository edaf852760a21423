"""Renders docs/RELIABILITY.md from what was measured: the load benchmark's numbers
(bench/results/load.json) and the records the fault, security and hostile-input tests write through
tests/reliability.py's `record()` (var/reliability/*.json, or MUR_RELIABILITY_DIR).

    scripts/test                                    # a whole run starts var/reliability/ afresh
    .venv/bin/python bench/load.py                  # optional: slow, not part of the test command
    .venv/bin/python bench/reliability_report.py [--records DIR] [--load FILE] [--out FILE]

Every record is shown with what it counted; one that lost or duplicated anything is marked as such
in its table and in the summary, never left out. Missing inputs are said to be missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine  # noqa: E402

RECORDS = Path(os.environ.get("MUR_RELIABILITY_DIR", ROOT / "var" / "reliability"))
LOAD = ROOT / "bench" / "results" / "load.json"
OUT = ROOT / "docs" / "RELIABILITY.md"
PIP_AUDIT = "security-pip-audit"
SECTIONS = {
    "faults": (
        "Faults survived",
        "What was broken while the site ran, and what was lost or duplicated (target: nothing).",
    ),
    "hostile-input": (
        "Hostile inputs tried",
        "Malformed, oversized and malicious input: each must get a clear "
        "4xx or form error and leave nothing half-written.",
    ),
    "security": ("Security checks", "Access to other people's data, authentication, CSRF and headers."),
}


def load_records(folder: Path) -> tuple[list[dict], list[str]]:
    """The records in `folder`, and the names of files that could not be read (reported, not skipped)."""
    records, unreadable = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict) or "section" not in data or "name" not in data:
                raise ValueError("not a record")
        except (OSError, ValueError) as exc:
            unreadable.append(f"{path.name} ({exc})")
            continue
        data["file"] = path.stem
        records.append(data)
    return records, unreadable


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _facts(facts: dict) -> str:
    return "; ".join(f"{k.replace('_', ' ')}: {_value(v)}" for k, v in facts.items()) or "-"


def _outcome(r: dict) -> str:
    bad = [
        f"**{r['lost']} lost**" if r.get("lost") else "",
        f"**{r['duplicated']} duplicated**" if r.get("duplicated") else "",
    ]
    return ", ".join(b for b in bad if b) or "nothing lost or duplicated"


NOT_COUNTS = ("status", "code", "pid", "second", "port")


def _totals(records: list[dict]) -> str:
    """Integer facts summed over the checks: how many requests, inputs, ... were tried in all (not
    statuses, exit codes or times, which do not add up)."""
    sums: dict[str, int] = {}
    for r in records:
        for k, v in r.get("facts", {}).items():
            if isinstance(v, int) and not isinstance(v, bool) and not any(w in k for w in NOT_COUNTS):
                sums[k] = sums.get(k, 0) + v
    return ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in sums.items())


def _section(title: str, intro: str, records: list[dict], totals: bool = False) -> list[str]:
    lines = [f"## {title}", "", intro, ""]
    if not records:
        return lines + ["No records yet: run the test command (`scripts/test`).", ""]
    losses = sum(r.get("lost", 0) for r in records)
    dups = sum(r.get("duplicated", 0) for r in records)
    failed = sum(1 for r in records if r.get("lost") or r.get("duplicated"))
    lines.append(
        f"{_n(len(records), 'check')}; rows lost {losses}, duplicated {dups}"
        + (f": **{_n(failed, 'check')} lost or duplicated rows.**" if failed else ".")
    )
    if totals and (summed := _totals(records)):
        lines.append(f"Tried in all: {summed}.")
    lines += ["", "| check | outcome | measured | recorded |", "|---|---|---|---|"]
    for r in sorted(records, key=lambda r: r["name"].lower()):
        lines.append(
            f"| {_cell(r['name'])} | {_outcome(r)} | {_cell(_facts(r.get('facts', {})))} | "
            f"{_cell(r.get('recorded_at', '?'))} |"
        )
    return lines + [""]


def _load(load: dict | None) -> tuple[list[str], str]:
    lines = ["## Load held", ""]
    if load is None:
        return lines + [
            "Not measured yet: run `.venv/bin/python bench/load.py` (50 users for 60 s; it writes "
            "bench/results/load.json).",
            "",
        ], "not measured"
    m, w, t = load["machine"], load["writes"], load["tasks"]
    verdict = "MET" if load["target_met"] else "NOT MET"
    errors = ", ".join(f"{s}: {n}" for s, n in load["errors_by_status"].items()) or "none"
    lines += [
        f"{load['users']} simulated users for {load['seconds']:g} s against gunicorn ({load['gunicorn_workers']} "
        f"workers), a Celery worker, PostgreSQL and Redis, each signing in and pausing {load['think_s'][0]:g} to "
        f"{load['think_s'][1]:g} s between actions (bench/load.py; details in bench/results/load.md). Run "
        f"{m['date']}, commit {m['commit']}, {m['nproc']} CPUs shared with other work (load average "
        f"{m['load_1m']} at start).",
        "",
        "| | |",
        "|---|---|",
        f"| requests served | {load['requests']:,} ({load['rps']} per second) |",
        f"| latency, all requests | p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms |",
        f"| 5xx answers | {load['five_xx']} |",
        f"| unexpected answers by status | {errors} |",
        f"| transactions added / acknowledged | {w['adds']} / {w['adds_acknowledged']} (API {w['adds_api']}, "
        f"form {w['adds_form']}) |",
        f"| transactions deleted / acknowledged | {w['deletes']} / {w['deletes_acknowledged']} |",
        f"| acknowledged writes lost | {w['lost_total']} |",
        f"| writes duplicated | {w['duplicated']} |",
        f"| refused writes stored, rows nobody sent | {w['stored_despite_refusal']}, {w['unexpected_rows']} |",
        f"| writes without an answer (stored / absent) | {w['unknown_outcome_stored']} / "
        f"{w['unknown_outcome_absent']} |",
        f"| Celery tasks enqueued / missing | {sum(t['enqueued'].values())} / {t['lost']} |",
        "",
        "| request | count | not as expected | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, k in load["kinds"].items():
        lines.append(f"| {kind} | {k['requests']:,} | {k['errors']} | {k['p50_ms']} | {k['p99_ms']} |")
    lines += ["", f"Target (no 5xx, no lost or duplicated write, every task ran): **{verdict}**.", ""]
    return lines, verdict


def _pip_audit(record: dict | None) -> list[str]:
    lines = ["## Dependency audit (pip-audit)", ""]
    if record is None:
        return lines + ["No pip-audit result in the records.", ""]
    facts = record.get("facts", {})
    if "dependencies" in facts:  # pip-audit's own JSON kept as it is
        deps = facts["dependencies"]
        vulns = [(d.get("name"), v.get("id")) for d in deps for v in d.get("vulns", [])]
        facts = {
            "packages": len(deps),
            "vulnerabilities": len(vulns),
            **({"found": ", ".join(f"{n} {i}" for n, i in vulns)} if vulns else {}),
        }
    return lines + [f"{_facts(facts)} (recorded {record.get('recorded_at', '?')}).", ""]


def render(records: list[dict], load: dict | None, where: dict, unreadable: list[str] | None = None) -> str:
    # scripts/audit's record; other checks may have "pip-audit" in their names too.
    audit = next((r for r in records if r.get("file") == PIP_AUDIT or r["name"].lower() == "pip-audit"), None)
    checks = [r for r in records if r is not audit]
    by_section: dict[str, list[dict]] = {}
    for r in checks:
        by_section.setdefault(r["section"], []).append(r)
    load_lines, load_verdict = _load(load)
    lost = sum(r.get("lost", 0) for r in checks)
    dups = sum(r.get("duplicated", 0) for r in checks)
    losing = [r["name"] for r in checks if r.get("lost") or r.get("duplicated")]
    dates = sorted(r["recorded_at"] for r in records if r.get("recorded_at"))
    lines = [
        "# Reliability",
        "",
        "What was tried against Make Us Rich and what held, from the numbers the tests and the load benchmark "
        "measured. Rendered by `bench/reliability_report.py`; do not edit by hand.",
        "",
        f"Rendered {where['date']} at commit {where['commit']} on {where['nproc']} CPUs, Python {where['python']}, "
        f"{where['platform']}." + (f" Records from {dates[0]} to {dates[-1]}." if dates else ""),
        "",
        "## Summary",
        "",
        f"- Load: {load_verdict}"
        + (
            f" ({load['users']} users, {load['requests']:,} requests, {load['five_xx']} "
            f"5xx, {load['writes']['lost_total']} writes lost)"
            if load
            else ""
        )
        + ".",
    ]
    for key, (title, _) in SECTIONS.items():
        lines.append(f"- {title}: {_n(len(by_section.get(key, [])), 'check')}.")
    lines.append(
        f"- Lost rows across all checks: {lost}; duplicated: {dups}."
        + (f" **Losses in: {', '.join(losing)}.**" if losing else "")
    )
    if audit is not None:
        lines.append("- pip-audit: " + _pip_audit(audit)[2])
    if unreadable:
        lines.append(f"- Unreadable record files: {', '.join(unreadable)}.")
    lines += [""] + load_lines
    for key, (title, intro) in SECTIONS.items():
        lines += _section(title, intro, by_section.pop(key, []), totals=key == "hostile-input")
    for key, rs in sorted(by_section.items()):
        lines += _section(f"Other checks: {key}", "Records of a section this report does not know.", rs)
    lines += _pip_audit(audit)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=Path, default=RECORDS, help=f"folder of records (default {RECORDS})")
    parser.add_argument("--load", type=Path, default=LOAD, help="the load benchmark's JSON")
    parser.add_argument("--out", type=Path, default=OUT, help="the Markdown file to write")
    args = parser.parse_args()
    records, unreadable = load_records(args.records)
    load = json.loads(args.load.read_text()) if args.load.is_file() else None
    text = render(records, load, machine(), unreadable)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    losses = [r["name"] for r in records if r.get("lost") or r.get("duplicated")]
    print(
        f"Written {args.out}: {len(records)} records from {args.records}, load "
        f"{'from ' + str(args.load) if load else 'not measured'}."
    )
    if losses:
        print(f"Checks that lost or duplicated rows: {', '.join(losses)}")


if __name__ == "__main__":
    main()
