"""The seasonal band on young assets: fitted on a few months of candles, as a new listing has them.

    .venv/bin/python bench/short_history.py [FOLDER ...] [--days 100 150 250 400]
                                            [--candidate LABEL:name=value,name=value ...]
                                            [--jobs 2] [--name short_history]

bench/forecast_grid.py scores months that have at least a year of candles before them; an asset
listed last quarter has far less, and until a model beats it the seasonal band is what its users
see. Here every pair's history is cut into windows of D days starting every 150 days from its
first candle (so the first window is the pair's own first months). In each window the band is
fitted exactly as production fits it (the last 720 candles are the backtest, the 720 before them
validation, the rest the training part) and scored on the backtest against the naive band on the
same origins. Windows alternate between a tuning set and a report set by their start (even, odd
multiples of 150 days), fixed here before any result: choose on tuning, report on report. Each
setting (today's defaults, then every --candidate) is scored on the same windows.

Writes bench/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from forecast_grid import (  # noqa: E402
    COVERAGE,
    GATE_STEPS,
    GridError,
    default_folder,
    discover,
    parse_candidate,
    read_series,
)

from forecasting.ml.backtest import backtest  # noqa: E402
from forecasting.ml.data import SeriesError  # noqa: E402
from forecasting.ml.seasonal import fit_seasonal_band  # noqa: E402
from forecasting.ml.train import TrainConfig, pin_threads  # noqa: E402

DAY = 24
OFFSET_DAYS = 150
DEFAULT_DAYS = (100, 150, 250, 400)


def windows(lengths: dict[str, int], days: list[int]) -> list[tuple[str, int, int, str]]:
    """(symbol, start step, length in steps, set) for every window that fits in its pair's data."""
    out = []
    for symbol, n in sorted(lengths.items()):
        for d in days:
            i = 0
            while (i * OFFSET_DAYS + d) * DAY <= n:
                out.append((symbol, i * OFFSET_DAYS * DAY, d * DAY, "tuning" if i % 2 == 0 else "report"))
                i += 1
    return out


@functools.cache
def _series(path: Path):
    """Each pair's CSV parsed once per process, not once per window: parsing took longer than
    fitting and scoring the band."""
    return read_series(path)


def score_window(task) -> list[dict]:
    path, start, length, settings = task
    pin_threads(1)
    series = _series(path)
    data = series.tail(len(series) - start).head(length)
    out = []
    for label, overrides in settings:
        config = replace(TrainConfig(threads=1), **overrides)
        try:
            band = fit_seasonal_band(data, config, train_end=length - GATE_STEPS)
            methods = backtest(band, data, test_start=length - GATE_STEPS, seasonal=band)["methods"]
        except SeriesError as exc:
            out.append({"setting": label, "error": str(exc)})
            continue
        naive = methods["naive_band"]["pinball"]
        out.append(
            {
                "setting": label,
                "pinball_vs_naive_band": methods["seasonal_band"]["pinball"] / naive,
                "coverage": methods["seasonal_band"]["coverage"],
                "naive_coverage": methods["naive_band"]["coverage"],
            }
        )
    return out


def summarise(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"runs": 0, "errors": len(runs)}
    p = np.array([r["pinball_vs_naive_band"] for r in ok])
    c = np.array([r["coverage"] for r in ok])
    return {
        "runs": len(ok),
        "errors": len(runs) - len(ok),
        "pinball_median": float(np.median(p)),
        "pinball_p10": float(np.quantile(p, 0.1)),
        "pinball_p90": float(np.quantile(p, 0.9)),
        "pinball_below_1": float(np.mean(p < 1)),
        "coverage_median": float(np.median(c)),
        "coverage_in_range": float(np.mean((c >= COVERAGE[0]) & (c <= COVERAGE[1]))),
    }


def render(summaries: dict, settings: list[tuple[str, dict]], info: dict, seconds: float) -> str:
    lines = [
        "# The seasonal band on short histories",
        "",
        f"{info['date']}, commit {info['commit']}; {seconds / 60:.1f} min. Windows of D days from every "
        f"{OFFSET_DAYS} days of each pair's history; in each the band is fitted as production fits it "
        f"and scored on its last {GATE_STEPS} candles. Pinball over the naive band's on the same origins "
        "(below 1: sharper); 'in range' is the share of windows whose coverage is within 77-83%.",
        "",
        "Settings: " + "; ".join(f"{label}: {_text(o)}" for label, o in settings) + ".",
    ]
    for role in ("tuning", "report"):
        lines += [
            "",
            f"### {role}",
            "",
            "| days | setting | windows | pinball / naive band: median (p10-p90) | below 1 | in 77-83% |",
            "|---:|---|---:|---|---:|---:|",
        ]
        for key, s in summaries.items():
            r, d, label = key.split("|")
            if r != role or not s["runs"]:
                continue
            lines.append(
                f"| {d} | {label} | {s['runs']} | {s['pinball_median']:.4f} ({s['pinball_p10']:.4f}-"
                f"{s['pinball_p90']:.4f}) | {s['pinball_below_1']:.0%} | {s['coverage_in_range']:.0%} |"
            )
    return "\n".join(lines) + "\n"


def _text(overrides: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the defaults"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="kline CSV folders (default ../shared/data)")
    parser.add_argument("--days", nargs="+", type=int, default=list(DEFAULT_DAYS))
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL:NAME=VALUE[,NAME=VALUE]")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--name", default="short_history")
    args = parser.parse_args(argv)
    need = 2 * GATE_STEPS // DAY + 1
    if any(d < need for d in args.days) or args.jobs < 1:
        parser.exit(2, f"short_history: --days must each be at least {need} and --jobs at least 1\n")
    try:
        files = discover(args.folders or [default_folder()])
        settings = [("defaults", {})] + [parse_candidate(c) for c in args.candidate]
    except GridError as exc:
        parser.exit(2, f"short_history: {exc}\n")
    from ingest import machine, publish

    lengths = {symbol: len(_series(path)) for symbol, path in files.items()}
    todo = windows(lengths, sorted(set(args.days)))
    if not todo:
        parser.exit(2, f"short_history: no pair has {min(args.days)} days of candles\n")
    started = time.perf_counter()
    tasks = [(files[symbol], start, length, settings) for symbol, start, length, _ in todo]
    if args.jobs == 1:
        results = [score_window(t) for t in tasks]
    else:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(score_window, tasks, chunksize=1)
    runs = []
    for (symbol, start, length, role), scored in zip(todo, results):
        for r in scored:
            runs.append({"symbol": symbol, "start_day": start // DAY, "days": length // DAY, "role": role, **r})
    summaries = {}
    for role in ("tuning", "report"):
        for d in sorted(set(args.days)):
            for label, _ in settings:
                chosen = [r for r in runs if r["role"] == role and r["days"] == d and r["setting"] == label]
                summaries[f"{role}|{d}|{label}"] = summarise(chosen)
    seconds = time.perf_counter() - started
    info = machine()
    publish(
        args.name,
        {
            "date": info["date"],
            "commit": info["commit"],
            "seconds": seconds,
            "settings": [{"label": label, "overrides": o} for label, o in settings],
            "summaries": summaries,
            "runs": runs,
        },
        render(summaries, settings, info, seconds),
    )


if __name__ == "__main__":
    main()
