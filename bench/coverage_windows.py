"""How often what is served covers 77-83% when coverage is judged over longer windows than a month.

    .venv/bin/python bench/coverage_windows.py [NAME ...] [--lengths 1 2 3 6] [--name coverage_windows]

The grid (bench/forecast_grid.py) judges coverage month by month. Outcomes in a month move
together, so even a band that knew the true distribution would leave the range in some months.
This reads stored grid results (default: the tuning months of today's defaults and the report
months, bench/results/tuning/bl_min_blend-0.5_s0 and forecast_grid), joins each pair's months in
order and judges coverage over consecutive, non-overlapping windows of 1, 2, 3 and 6 months,
each window's coverage being that of all its origins together. Nothing is trained.

Writes bench/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_RESULTS = ("tuning/bl_min_blend-0.5_s0", "forecast_grid")
RANGE = (0.77, 0.83)
BIG_THREE = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


class WindowsError(Exception):
    """The results cannot be read as asked; the message says why."""


def load_runs(names: list[str], results_dir: Path) -> dict[tuple[str, int], dict]:
    """(symbol, k) -> run of every trained month in the named results; a later name's run of the
    same month is refused rather than silently preferred."""
    runs: dict[tuple[str, int], dict] = {}
    for name in names:
        path = results_dir / f"{name}.json"
        if not path.is_file():
            raise WindowsError(f"no results named {name} ({path})")
        stored = json.loads(path.read_text())
        if stored.get("band_only"):
            raise WindowsError(f"{name} is a band-only run: nothing was served")
        for r in stored.get("runs", []):
            if "error" in r:
                continue
            key = (r["symbol"], r["k"])
            if key in runs:
                raise WindowsError(f"{r['symbol']} month {r['k']} is in more than one of the results")
            runs[key] = r
    if not runs:
        raise WindowsError("the results hold no trained month")
    return runs


def windows(runs: dict[tuple[str, int], dict], length: int) -> list[dict]:
    """Each pair's consecutive months k, k+1, ... cut into non-overlapping windows of `length`
    (a window with a month missing is left out), with the served coverage of all its origins."""
    out = []
    for symbol in sorted({s for s, _ in runs}):
        ks = sorted(k for s, k in runs if s == symbol)
        for start in range(0, len(ks) - length + 1, length):
            months = ks[start : start + length]
            if months != list(range(months[0], months[0] + length)):
                continue
            origins = [runs[(symbol, k)]["origins"] for k in months]
            covered = sum(o * runs[(symbol, k)]["methods"]["served"]["coverage"] for o, k in zip(origins, months))
            coverage = covered / sum(origins)
            out.append(
                {
                    "symbol": symbol,
                    "months": months,
                    "coverage": coverage,
                    "in_range": RANGE[0] <= coverage <= RANGE[1],
                }
            )
    return out


def summary(runs: dict[tuple[str, int], dict], lengths: list[int]) -> list[dict]:
    rows = []
    for length in lengths:
        ws = windows(runs, length)
        big = [w for w in ws if w["symbol"] in BIG_THREE]
        rows.append(
            {
                "length": length,
                "windows": len(ws),
                "in_range": sum(w["in_range"] for w in ws) / len(ws) if ws else None,
                "big_three_windows": len(big),
                "big_three_in_range": sum(w["in_range"] for w in big) / len(big) if big else None,
                "coverage_min": min((w["coverage"] for w in ws), default=None),
                "coverage_max": max((w["coverage"] for w in ws), default=None),
            }
        )
    return rows


def render(names: list[str], rows: list[dict], date: str, commit: str) -> str:
    share = lambda v: "—" if v is None else f"{v:.0%}"  # noqa: E731
    pct = lambda v: "—" if v is None else f"{v:.1%}"  # noqa: E731
    lines = [
        "# Served coverage judged over windows longer than a month",
        "",
        f"{date}, commit {commit}; from {', '.join(names)} (nothing trained again). Each pair's months are "
        "joined in order and cut into consecutive, non-overlapping windows; a window's coverage is that of all "
        "its origins together, in range if within 77-83%.",
        "",
        "| window | windows | in 77-83% | BTC/ETH/BNB windows | BTC/ETH/BNB in 77-83% | coverage min-max |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['length']} month{'s' if r['length'] > 1 else ''} | {r['windows']} | {share(r['in_range'])} | "
            f"{r['big_three_windows']} | {share(r['big_three_in_range'])} | "
            f"{pct(r['coverage_min'])}-{pct(r['coverage_max'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="*", default=list(DEFAULT_RESULTS), help="grid results under bench/results")
    parser.add_argument("--lengths", nargs="+", type=int, default=[1, 2, 3, 6])
    parser.add_argument("--name", default="coverage_windows")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.lengths):
        parser.exit(2, "coverage_windows: --lengths must be at least 1\n")
    from ingest import RESULTS, machine, publish

    try:
        runs = load_runs(args.results, RESULTS)
    except (WindowsError, ValueError, KeyError, OSError) as exc:
        parser.exit(2, f"coverage_windows: {exc}\n")
    rows = summary(runs, args.lengths)
    info = machine()
    publish(
        args.name,
        {"date": info["date"], "commit": info["commit"], "results": args.results, "rows": rows},
        render(args.results, rows, info["date"], info["commit"]),
    )


if __name__ == "__main__":
    main()
