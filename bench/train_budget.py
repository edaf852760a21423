"""Training time side by side: today's defaults against candidate settings, on the same months.

    .venv/bin/python bench/train_budget.py [--candidate LABEL:name=value,name=value ...]
                                           [--symbols BTCUSDT ETHUSDT BNBUSDT] [--months 1 5 9]
                                           [--name train_budget]

The machine is shared and its speed varies about twofold from one hour to the next, so an absolute
time measured in one run says little about a setting measured in another. Here every setting trains
on the same (asset, month) right after the others, in one process of one torch thread with nothing
else of this script running, and the result is each setting's median and maximum beside the
defaults' and their ratio. Each month is trained as bench/forecast_grid.py trains it (the tuning
months by default: k odd). One forecast from what production reads is timed too, and the
seasonal band's fit. Writes
bench/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from forecast_grid import (  # noqa: E402
    GATE_STEPS,
    TRAIN_DAYS,
    GridError,
    default_folder,
    discover,
    month_data,
    parse_candidate,
    read_series,
)

from forecasting.ml.seasonal import fit_seasonal_band  # noqa: E402
from forecasting.ml.train import TrainConfig, pin_threads, train  # noqa: E402

BUDGET_SECONDS = 10.0
FORECAST_BUDGET_SECONDS = 0.05


def time_one(data, n_train: int, overrides: dict) -> dict:
    config = replace(TrainConfig(threads=1), **overrides)
    started = time.perf_counter()
    fit_seasonal_band(data, config, train_end=n_train - GATE_STEPS)
    band_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model = train(data, config, train_end=n_train - GATE_STEPS)
    seconds = time.perf_counter() - started
    recent = data.head(n_train).since(model.history_start(data.interval_ms))
    started = time.perf_counter()
    model.forecast(recent)
    return {
        "train_seconds": seconds,
        "band_seconds": band_seconds,
        "forecast_seconds": time.perf_counter() - started,
        "epochs": [m["epochs"] for m in model.meta["members"]],
    }


def summarise(times: list[dict], base: list[dict]) -> dict:
    t = np.array([r["train_seconds"] for r in times])
    b = np.array([r["train_seconds"] for r in base])
    f = np.array([r["forecast_seconds"] for r in times])
    band = np.array([r["band_seconds"] for r in times])
    band_base = np.array([r["band_seconds"] for r in base])
    return {
        "train_median": float(np.median(t)),
        "train_max": float(t.max()),
        "ratio_median": float(np.median(t / b)),  # per month, then the median: same data, same minute
        "ratio_max": float((t / b).max()),
        "epochs_median": float(np.median([sum(r["epochs"]) for r in times])),
        "forecast_median_ms": float(np.median(f) * 1000),
        "forecast_max_ms": float(f.max() * 1000),
        "band_median_ms": float(np.median(band) * 1000),
        "band_max_ms": float(band.max() * 1000),
        "band_ratio_median": float(np.median(band / band_base)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", action="append", default=[], metavar="LABEL:NAME=VALUE[,NAME=VALUE]")
    parser.add_argument("--symbols", nargs="*", default=["BTCUSDT", "ETHUSDT", "BNBUSDT"])
    parser.add_argument("--months", nargs="*", type=int, default=[1, 5, 9], help="months back (k), as in the grid")
    parser.add_argument("--folder", type=Path, default=None, help="folder of <SYMBOL>-1h.csv (default: shared data)")
    parser.add_argument("--name", default="train_budget", help="results file name under bench/results")
    args = parser.parse_args(argv)
    try:
        settings = [("defaults", {})] + [parse_candidate(c) for c in args.candidate]
        files = discover([args.folder or default_folder()])
        missing = [s for s in args.symbols if s not in files]
        if missing:
            raise GridError(f"no hourly CSV for {', '.join(missing)}")
        if not args.months or min(args.months) < 0:
            raise GridError("--months takes month numbers k >= 0")
    except GridError as exc:
        print(f"train_budget: {exc}", file=sys.stderr)
        sys.exit(2)

    pin_threads(1)
    runs = {label: [] for label, _ in settings}
    for symbol in args.symbols:
        series = read_series(files[symbol])
        for k in args.months:
            data, _, n_train = month_data(series, k, TRAIN_DAYS)
            for label, overrides in settings:
                r = time_one(data, n_train, overrides) | {"symbol": symbol, "k": k}
                runs[label].append(r)
                print(
                    f"{symbol} k={k} {label}: {r['train_seconds']:.2f} s, epochs {r['epochs']}, "
                    f"forecast {r['forecast_seconds'] * 1000:.1f} ms, "
                    f"seasonal band fitted in {r['band_seconds'] * 1000:.0f} ms",
                    flush=True,
                )
    summaries = {label: summarise(rs, runs["defaults"]) for label, rs in runs.items()}

    from ingest import machine, publish

    lines = [
        "# Training time side by side",
        "",
        f"{machine().get('date', '')}, commit {machine().get('commit', '')}. "
        f"{', '.join(args.symbols)}, months k = {', '.join(map(str, args.months))} (as bench/forecast_grid.py "
        f"trains them: {TRAIN_DAYS} days of history); every setting trained on each month in turn, one process "
        "of one torch thread. Ratios are taken month by month against the defaults, so a slower minute of "
        "the machine weighs on both.",
        "",
        "| setting | train s median | train s max | x defaults (median, max) | epochs (median, all members) "
        "| one forecast ms (median, max) | seasonal band fit ms (median, max; x defaults) |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for label, overrides in settings:
        s = summaries[label]
        name = label if not overrides else f"{label} ({', '.join(f'{k}={v}' for k, v in overrides.items())})"
        lines.append(
            f"| {name} | {s['train_median']:.2f} | {s['train_max']:.2f} | {s['ratio_median']:.2f}, "
            f"{s['ratio_max']:.2f} | {s['epochs_median']:.0f} | {s['forecast_median_ms']:.1f}, "
            f"{s['forecast_max_ms']:.1f} | {s['band_median_ms']:.0f}, {s['band_max_ms']:.0f}; "
            f"{s['band_ratio_median']:.2f} |"
        )
    lines += [
        "",
        f"Budget: training under {BUDGET_SECONDS:.0f} s per asset, one forecast under "
        f"{FORECAST_BUDGET_SECONDS * 1000:.0f} ms.",
        "",
    ]
    publish(
        args.name,
        {
            "machine": machine(),
            "symbols": args.symbols,
            "months": args.months,
            "settings": dict(settings),
            "summaries": summaries,
            "runs": runs,
        },
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
