"""Rolling forecast evaluation over many months: what tuning on one month cannot fool.

    .venv/bin/python bench/forecast_grid.py [FOLDER ...] [--months 24] [--set report] [--jobs 2]
                                            [--config name=value ...] [--train-days 1095] [--band-only]
                                            [--name forecast_grid]
    .venv/bin/python bench/forecast_grid.py --compare OUT NAME [NAME ...]   # results side by side
    .venv/bin/python bench/forecast_grid.py --render NAME   # summarise stored runs again, no training

For every `<SYMBOL>-1h.csv` in the folders (default: ../shared/data, or MUR_SHARED_DATA), month k
(k = 0 is the newest) is the 30 days that start (k + 1) x 30 days before the end of the data. Each
month is run exactly as production runs a retrain just before it: the days before the month
are the training window (candle_series(days=TRAIN_DAYS): three years by default, all there is for
a younger pair); its last 720 candles are the gate's backtest, the 720 before them validate, the
rest train. The gate decides from that backtest
whether the model or the seasonal band serves, and what is served is then scored on the month
itself, which nothing was fitted on (the adaptive band keeps updating through it, as it does in
production). A month needs at least a year of history, so young pairs have fewer months.

The months are split before anything is measured: odd k are the tuning months, on which every
default was chosen; even k are the report months. `--set` picks which are run and summarised.
`--config name=value` overrides a TrainConfig default (for tuning), e.g. `--config aci_rate=0.02`.
Writes bench/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402

from forecasting.ml.backtest import backtest  # noqa: E402
from forecasting.ml.data import DAY_MS, HOUR_MS, Series, SeriesError  # noqa: E402
from forecasting.ml.seasonal import fit_seasonal_band  # noqa: E402
from forecasting.ml.train import LEGACY_SETTINGS, TrainConfig, train  # noqa: E402

MONTH_MS = 30 * DAY_MS
TRAIN_DAYS = 1095  # settings.TRAIN_DAYS
MONTH_HISTORY_DAYS = 365  # a month is in the grid if this much history comes before it, whatever TRAIN_DAYS
GATE_STEPS = 720  # settings.BACKTEST_DAYS of hourly candles
MAE_LIMIT = 1.005  # settings.GATE_MAX_MAE_RATIO
COVERAGE = (0.77, 0.83)
METHODS = ("model", "seasonal_band", "naive_band", "served")
BAND_METHODS = ("seasonal_band", "naive_band")  # --band-only: no training, the band's settings alone
# Settings of the LSTM alone: a band-only run is the same whatever they are.
LSTM_SETTINGS = {
    "hidden",
    "layers",
    "dropout",
    "lr",
    "weight_decay",
    "max_epochs",
    "patience",
    "chunk",
    "batch_size",
    "ensemble",
    "max_shrink",
    "recency_halflife",
    "anchored",
    "seed",
}


# Settings that existed only while an experiment ran (its code not kept), at the values where
# they changed nothing: runs of that time name them only where they were set otherwise.
EXPERIMENT_OFF = {
    "level_features": False,
    "blend_fixed": -1.0,
    "head_rank": 0,
    "aux_quantiles": [],
    "profile_recency": 0.0,
    "residual_head": False,
}


class GridError(Exception):
    """The grid cannot run as asked; the message says why (the command exits with status 2)."""


def default_folder() -> Path:
    return Path(os.environ.get("MUR_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


def read_series(path: Path) -> Series:
    """An hourly kline CSV (open_time,open,high,low,close,volume,...) as a Series; SeriesError or
    ValueError if it is not one."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"open_time", "open", "high", "low", "close", "volume"} - set(reader.fieldnames or ())
        if missing:
            raise SeriesError(f"no {', '.join(sorted(missing))} column")
        rows = list(reader)
    if not rows:
        raise SeriesError("no rows")
    col = lambda name: np.array([float(r[name]) for r in rows])  # noqa: E731
    return Series.from_arrays(
        times=np.array([int(r["open_time"]) for r in rows], dtype=np.int64),
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        volume=col("volume"),
        interval_ms=HOUR_MS,
    )


def discover(folders: list[Path]) -> dict[str, Path]:
    """SYMBOL -> file for every readable hourly CSV; GridError naming each folder's problem if none."""
    found, problems = {}, []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"{folder} is not a folder")
            continue
        files = sorted(folder.glob("*-1h.csv"))
        if not files:
            problems.append(f"{folder} has no <SYMBOL>-1h.csv file")
        for path in files:
            try:
                read_series(path)
            except (SeriesError, ValueError, KeyError, OSError) as exc:
                problems.append(f"{path.name}: {exc}")
                continue
            found[path.name.removesuffix("-1h.csv")] = path
    if not found:
        raise GridError("no usable hourly kline CSV: " + "; ".join(problems or ["nothing to read"]))
    for problem in problems:
        print(f"skipped: {problem}", file=sys.stderr)
    return found


def months_of(series: Series, count: int) -> list[int]:
    """The month numbers k < count with at least a year of data before them."""
    end = int(series.times[-1]) + HOUR_MS
    ok = []
    for k in range(count):
        cut = end - (k + 1) * MONTH_MS
        if cut - MONTH_HISTORY_DAYS * DAY_MS >= int(series.times[0]):
            ok.append(k)
    return ok


def role(k: int) -> str:
    return "tuning" if k % 2 else "report"


def window(series: Series, start_ms: int, end_ms: int) -> Series:
    lo, hi = np.searchsorted(series.times, [start_ms, end_ms])
    return Series(
        series.times[lo:hi],
        series.open[lo:hi],
        series.high[lo:hi],
        series.low[lo:hi],
        series.close[lo:hi],
        series.volume[lo:hi],
        series.interval_ms,
    )


def month_data(series: Series, k: int, train_days: int) -> tuple[Series, int, int]:
    """Month k as production would meet it: the candles from `train_days` before it to its end,
    the month's first open time (the cut) and how many candles come before it."""
    cut = int(series.times[-1]) + HOUR_MS - (k + 1) * MONTH_MS
    data = window(series, cut - train_days * DAY_MS, cut + MONTH_MS)
    return data, cut, int(np.searchsorted(data.times, cut))


def _timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def run_month(job: tuple) -> dict:
    """Train as production would just before month k, gate, then score what is served on month k."""
    symbol, path, k, overrides, train_days, band_only = job
    data, cut, n_train = month_data(read_series(Path(path)), k, train_days)
    test_start = n_train - GATE_STEPS
    config = replace(TrainConfig(threads=1), **overrides)
    out = {"symbol": symbol, "k": k, "role": role(k), "cut": cut, "candles": n_train}
    try:
        band, out["band_seconds"] = _timed(fit_seasonal_band, data, config, train_end=test_start)
        model, out["train_seconds"] = (band, 0.0) if band_only else _timed(train, data, config, train_end=test_start)
    except SeriesError as exc:
        return out | {"error": str(exc)}
    if band_only:
        m = backtest(band, data, test_start=n_train, seasonal=band)["methods"]
        out["methods"] = _ratios(m, BAND_METHODS)
        return out
    gate = backtest(model, data.head(n_train), test_start=test_start, seasonal=band)["methods"]
    served = backtest(model, data, test_start=n_train, seasonal=band)
    m = served["methods"]
    # Production forecasts from the candles it reads (model.history_start), no more.
    recent = data.since(model.history_start(data.interval_ms))
    started = time.perf_counter()
    model.forecast(recent)
    out["forecast_seconds"] = time.perf_counter() - started
    gm = gate["model"]
    out["gate"] = {
        "passed": bool(
            gm["pinball"] < gate["seasonal_band"]["pinball"] and gm["mae"] <= gate["naive"]["mae"] * MAE_LIMIT
        ),
        "pinball_vs_seasonal": gm["pinball"] / gate["seasonal_band"]["pinball"],
        "mae_vs_naive": gm["mae"] / gate["naive"]["mae"],
    }
    m["served"] = m["model"] if out["gate"]["passed"] else m["seasonal_band"]
    out["origins"] = served["origins"]
    out["methods"] = _ratios(m, METHODS)
    out["model_vs_seasonal"] = m["model"]["pinball"] / m["seasonal_band"]["pinball"]
    out["shrink"] = model.shrink
    out["blend"] = model.blend
    out["epochs"] = model.meta["epochs"]
    return out


def _ratios(m: dict, names: tuple[str, ...]) -> dict:
    naive_band, naive = m["naive_band"]["pinball"], m["naive"]["mae"]
    return {
        name: {
            "pinball_vs_naive_band": m[name]["pinball"] / naive_band,
            "coverage": m[name]["coverage"],
            "mae_vs_naive": m[name]["mae"] / naive,
            "width_pct": m[name]["width_pct"],
        }
        for name in names
    }


def month_interval(hits: np.ndarray, months: np.ndarray, *, level: float = 0.9, draws: int = 2000) -> tuple:
    """A `level` interval for the share of `hits`, resampling whole calendar months (`months`,
    one label per run) with replacement. Pairs move together within a month (the misses of
    served coverage fall in the same months across pairs), so a month is the unit of evidence,
    not an (asset, month) run. Seeded: the same runs give the same interval."""
    labels, idx = np.unique(months, return_inverse=True)
    hits_per, runs_per = np.bincount(idx, weights=hits), np.bincount(idx)
    picks = np.random.default_rng(0).integers(0, len(labels), size=(draws, len(labels)))
    shares = hits_per[picks].sum(axis=1) / runs_per[picks].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(shares, tail)), float(np.quantile(shares, 1 - tail))


def summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"runs": 0}
    lo, hi = COVERAGE
    names = tuple(ok[0]["methods"])
    months = np.array([r["k"] for r in ok])
    out = {"runs": len(ok), "errors": len(runs) - len(ok), "months": int(len(set(months))), "methods": {}}
    for name in names:
        pin = np.array([r["methods"][name]["pinball_vs_naive_band"] for r in ok])
        cov = np.array([r["methods"][name]["coverage"] for r in ok])
        mae = np.array([r["methods"][name]["mae_vs_naive"] for r in ok])
        in_range = ((cov >= lo) & (cov <= hi)).astype(float)
        out["methods"][name] = {
            "pinball_median": float(np.median(pin)),
            "pinball_p10": float(np.quantile(pin, 0.1)),
            "pinball_p90": float(np.quantile(pin, 0.9)),
            "pinball_below_1": float(np.mean(pin < 1)),
            "coverage_median": float(np.median(cov)),
            "coverage_min": float(cov.min()),
            "coverage_max": float(cov.max()),
            "coverage_in_range": float(in_range.mean()),
            "coverage_in_range_interval": month_interval(in_range, months),
            "mae_median": float(np.median(mae)),
            "mae_max": float(mae.max()),
            "mae_over_limit": int(np.sum(mae > MAE_LIMIT)),
        }
    out["band_seconds_max"] = float(max(r["band_seconds"] for r in ok))
    if "model" not in names:
        return out
    mvs = np.array([r["model_vs_seasonal"] for r in ok])
    out["model_beats_seasonal"] = float(np.mean(mvs < 1))
    out["model_beats_seasonal_interval"] = month_interval((mvs < 1).astype(float), months)
    out["model_vs_seasonal_median"] = float(np.median(mvs))
    out["gate_pass_rate"] = float(np.mean([r["gate"]["passed"] for r in ok]))
    train_s = np.array([r["train_seconds"] for r in ok])
    out["train_seconds_median"], out["train_seconds_max"] = float(np.median(train_s)), float(train_s.max())
    fc = np.array([r["forecast_seconds"] for r in ok])
    out["forecast_seconds_median"], out["forecast_seconds_max"] = float(np.median(fc)), float(fc.max())
    return out


def targets(s: dict) -> dict:
    if not s.get("runs") or "model" not in s["methods"]:
        return {}
    return {
        "served covers 77-83% in >= 90% of months": s["methods"]["served"]["coverage_in_range"] >= 0.9,
        "model beats the seasonal band in >= 70% of months": s["model_beats_seasonal"] >= 0.7,
        "model median pinball <= 0.985 x naive band": s["methods"]["model"]["pinball_median"] <= 0.985,
        "served MAE never above 1.005 x naive": s["methods"]["served"]["mae_over_limit"] == 0,
        "training under 10 s": s["train_seconds_max"] < 10.0,
        "inference under 50 ms": s["forecast_seconds_max"] < 0.05,
    }


def table(title: str, s: dict) -> list[str]:
    if not s.get("runs"):
        return [f"### {title}", "", "No runs.", ""]
    lines = [
        f"### {title}: {s['runs']} (asset, month) runs",
        "",
        "| method | pinball / naive band: median (p10-p90) | below 1 | coverage: median (min-max) | in 77-83% "
        "(90% interval) | MAE / naive: median (max) |",
        "|---|---|---:|---|---:|---|",
    ]
    for name in s["methods"]:
        m = s["methods"][name]
        lines.append(
            f"| {name} | {m['pinball_median']:.4f} ({m['pinball_p10']:.4f}-{m['pinball_p90']:.4f}) | "
            f"{m['pinball_below_1']:.0%} | {m['coverage_median']:.1%} ({m['coverage_min']:.1%}-"
            f"{m['coverage_max']:.1%}) | {m['coverage_in_range']:.0%}"
            f"{_interval(m.get('coverage_in_range_interval'))} | "
            f"{m['mae_median']:.4f} ({m['mae_max']:.4f}) |"
        )
    if "model" not in s["methods"]:
        return lines + ["", f"The seasonal band fits in {s['band_seconds_max'] * 1000:.0f} ms at most.", ""]
    bounds = s.get("model_beats_seasonal_interval")
    beats = f"90% interval {bounds[0]:.0%}-{bounds[1]:.0%}; " if bounds else ""
    lines += [
        "",
        f"Model beats the seasonal band in {s['model_beats_seasonal']:.0%} of months ({beats}"
        f"median ratio {s['model_vs_seasonal_median']:.4f}); the gate let the model serve in "
        f"{s['gate_pass_rate']:.0%}. "
        f"Training {s['train_seconds_median']:.1f} s median, {s['train_seconds_max']:.1f} s at most (one torch "
        f"thread); the seasonal band fits in {s['band_seconds_max'] * 1000:.0f} ms at most; one forecast "
        f"{s['forecast_seconds_median'] * 1000:.0f} ms median, {s['forecast_seconds_max'] * 1000:.0f} ms at most "
        f"({_sharing(s.get('jobs'))}).",
        "",
    ]
    t = targets(s)
    if t:
        lines += ["Targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in t.items()) + ".", ""]
    if s.get("months"):
        lines += [
            f"Intervals: the middle 90% of the shares when the {s['months']} calendar months are drawn again "
            "with replacement, all pairs of a month together (their outcomes move together, so a month, not a "
            "run, is one piece of evidence).",
            "",
        ]
    return lines


def _interval(bounds) -> str:
    return f" ({bounds[0]:.0%}-{bounds[1]:.0%})" if bounds else ""


def _sharing(jobs: int | None) -> str:
    if jobs == 1:
        return "one grid process at a time, as the training queue runs"
    return f"{jobs or 'two'} grid processes share {os.cpu_count()} cores while it is timed"


def per_asset(runs: list[dict]) -> list[str]:
    lines = [
        "| asset | months | model pinball / naive band (median) | seasonal band | served coverage "
        "(median) | model beats band | gate pass |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for symbol in sorted({r["symbol"] for r in runs}):
        rs = [r for r in runs if r["symbol"] == symbol and "error" not in r]
        if not rs:
            continue
        med = lambda f: float(np.median([f(r) for r in rs]))  # noqa: E731, B023  (used in this iteration)
        lines.append(
            f"| {symbol} | {len(rs)} | {med(lambda r: r['methods']['model']['pinball_vs_naive_band']):.4f} | "
            f"{med(lambda r: r['methods']['seasonal_band']['pinball_vs_naive_band']):.4f} | "
            f"{med(lambda r: r['methods']['served']['coverage']):.1%} | "
            f"{np.mean([r['model_vs_seasonal'] < 1 for r in rs]):.0%} | "
            f"{np.mean([r['gate']['passed'] for r in rs]):.0%} |"
        )
    return lines + [""]


def parse_overrides(pairs: list[str]) -> dict:
    known = {f.name: f for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            raise GridError(f"--config takes name=value with a TrainConfig field, not {pair!r}")
        default = getattr(TrainConfig(), name)
        try:
            if isinstance(default, bool):
                out[name] = {"true": True, "false": False}[value.lower()]
            elif isinstance(default, tuple):
                out[name] = tuple(float(v) for v in value.split(","))
            else:
                out[name] = type(default)(value)
        except (ValueError, KeyError):
            raise GridError(f"--config {name}: {value!r} is not a {type(default).__name__}") from None
    try:
        TrainConfig(**out)
    except ValueError as exc:
        raise GridError(f"--config: {exc}") from None
    return out


def parse_candidate(text: str) -> tuple[str, dict]:
    """LABEL:name=value[,name=value] as (label, overrides); a tuple value (quantiles=0.1,0.5,0.9)
    has commas too, so a part without '=' continues the value before it."""
    label, sep, settings = text.partition(":")
    if not sep or not label or not settings:
        raise GridError(f"--candidate takes LABEL:name=value[,name=value], not {text!r}")
    pairs: list[str] = []
    for part in settings.split(","):
        if "=" in part or not pairs:
            pairs.append(part)
        else:
            pairs[-1] = f"{pairs[-1]},{part}"
    return label, parse_overrides(pairs)


def compare(names: list[str], out_name: str) -> None:
    """One table of several grid results (bench/results/<name>.json, or <name>:<label>), e.g. every
    tuning run. Each run's settings are shown as they differ from today's defaults."""
    from ingest import RESULTS, publish

    defaults = asdict(TrainConfig(threads=1))
    lines = [
        "| run | months | settings (against today's defaults) | model pinball / naive band (p10-p90) | "
        "beats seasonal | seasonal band | served coverage in 77-83% | served MAE max | gate pass | "
        "train s max |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for item in names:
        name, _, label = item.partition(":")
        path = RESULTS / f"{name}.json"
        if not path.is_file():
            raise GridError(f"no results named {name} ({path})")
        r = json.loads(path.read_text())
        config = r["config"]
        diff = [
            f"{k}={config[k]}" for k in defaults if k in config and k != "threads" and _differs(config[k], defaults[k])
        ]
        # A setting a run does not name did not exist yet: it ran as models then did.
        diff += [
            f"{k}={LEGACY_SETTINGS[k]}"
            for k in defaults
            if k not in config and k in LEGACY_SETTINGS and _differs(LEGACY_SETTINGS[k], defaults[k])
        ]
        # A setting that has since been renamed or removed, as the run named it.
        diff += [
            f"{k}={config[k]}"
            for k in config
            if k not in defaults and k != "threads" and not (k in EXPERIMENT_OFF and config[k] == EXPERIMENT_OFF[k])
        ]
        if r.get("band_only"):
            diff = [d for d in diff if d.partition("=")[0] not in LSTM_SETTINGS]
        # Runs written before --train-days existed read one year.
        days = r.get("train_days", 365)
        if days != TRAIN_DAYS:
            diff.append(f"{days} days")
        if r.get("band_only"):
            diff.append("band only")
        cfg = ", ".join(diff) or "today's defaults"
        for which, s in r["summaries"].items():
            if "," in which or not s.get("runs"):
                continue
            m, b = s["methods"].get("model"), s["methods"]["seasonal_band"]
            served = s["methods"].get("served", b)
            rows.append({"name": name, "label": label, "set": which, "config": cfg, "summary": s})
            model_cells = (
                (
                    f"{m['pinball_median']:.4f} ({m['pinball_p10']:.4f}-{m['pinball_p90']:.4f}) | "
                    f"{s['model_beats_seasonal']:.0%}"
                )
                if m
                else "— | —"
            )
            tail = f"{s['gate_pass_rate']:.0%} | {s['train_seconds_max']:.1f}" if m else "— | —"
            lines.append(
                f"| {label or name} ({which}) | {s['runs']} | {cfg} | {model_cells} | "
                f"{b['pinball_median']:.4f} | {served['coverage_in_range']:.0%} | {served['mae_max']:.4f} | "
                f"{tail} |"
            )
    intro = (
        "Each row is one run of bench/forecast_grid.py (its own .md and .json are beside this file), "
        "summarised over the months it ran; ratios as in forecast_grid.md. Settings are shown as they "
        "differ from today's defaults."
    )
    publish(
        out_name, {"compared": rows}, "\n".join(["# Forecast grid results side by side", "", intro, ""] + lines + [""])
    )


def _differs(a, b) -> bool:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return list(a) != list(b)
    return a != b


def main(argv: list[str] | None = None) -> None:
    try:
        grid(argv)
    except GridError as exc:
        print(f"forecast_grid: {exc}", file=sys.stderr)
        sys.exit(2)


def grid(argv: list[str] | None = None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--render"]:
        if len(argv) != 2:
            raise GridError("--render NAME: the results to summarise again from their runs")
        rerender(argv[1])
        return
    if argv[:1] == ["--compare"]:
        if len(argv) < 3:
            raise GridError("--compare OUT NAME [NAME ...]: the table's name, then the results to compare")
        compare(argv[2:], argv[1])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="folders of <SYMBOL>-1h.csv (default: shared data)")
    parser.add_argument("--months", type=int, default=24, help="months per asset at most (default 24)")
    parser.add_argument("--set", choices=["tuning", "report", "all"], default="all")
    parser.add_argument("--symbols", nargs="*", help="only these symbols")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument(
        "--train-days",
        type=int,
        default=TRAIN_DAYS,
        help=f"days of history each training reads, as MUR_TRAIN_DAYS (default {TRAIN_DAYS}); "
        "the months are the same whatever it is",
    )
    parser.add_argument(
        "--band-only",
        action="store_true",
        help="score the seasonal band alone (no training): for tuning its settings quickly",
    )
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--name", default="forecast_grid", help="results file name under bench/results")
    args = parser.parse_args(argv)
    if args.months < 1 or args.jobs < 1 or args.train_days < 60:
        raise GridError("--months and --jobs must be at least 1, --train-days at least 60")
    overrides = parse_overrides(args.config)
    files = discover(args.folders or [default_folder()])
    if args.symbols:
        files = {s: p for s, p in files.items() if s in set(args.symbols)}
        if not files:
            raise GridError(f"none of {', '.join(args.symbols)} is in the folders")
    jobs = []
    for symbol, path in files.items():
        for k in months_of(read_series(path), args.months):
            if args.set == "all" or role(k) == args.set:
                jobs.append((symbol, str(path), k, overrides, args.train_days, args.band_only))
    if not jobs:
        raise GridError("no asset has a month with a whole year of history before it")
    print(f"{len(jobs)} runs over {len(files)} assets, {args.jobs} processes ...", flush=True)
    started = time.perf_counter()
    runs = []
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for i, r in enumerate(pool.imap_unordered(run_month, jobs), 1):
            runs.append(r)
            if "error" in r:
                print(f"[{i}/{len(jobs)}] {r['symbol']} k={r['k']}: {r['error']}", flush=True)
            elif args.band_only:
                print(
                    f"[{i}/{len(jobs)}] {r['symbol']} k={r['k']} ({r['role']}): band "
                    f"{r['methods']['seasonal_band']['pinball_vs_naive_band']:.4f}, coverage "
                    f"{r['methods']['seasonal_band']['coverage']:.1%}",
                    flush=True,
                )
            else:
                print(
                    f"[{i}/{len(jobs)}] {r['symbol']} k={r['k']} ({r['role']}): model "
                    f"{r['methods']['model']['pinball_vs_naive_band']:.4f}, band "
                    f"{r['methods']['seasonal_band']['pinball_vs_naive_band']:.4f}, served coverage "
                    f"{r['methods']['served']['coverage']:.1%}, gate {'pass' if r['gate']['passed'] else 'fail'}",
                    flush=True,
                )
    runs.sort(key=lambda r: (r["symbol"], r["k"]))
    from ingest import machine, publish

    results = {
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "jobs": args.jobs,
        "folders": [str(p) for p in files.values()],
        "config": asdict(replace(TrainConfig(threads=1), **overrides)),
        "overrides": overrides,
        "train_days": args.train_days,
        "band_only": args.band_only,
        "runs": runs,
    }
    publish(args.name, *render(results))


def summaries(runs: list[dict], jobs: int | None) -> dict:
    """Each set's summary, and the shared pairs' apart."""
    shared = {"BTCUSDT", "ETHUSDT", "BNBUSDT"}
    sets = {}
    for which in ("tuning", "report"):
        rs = [r for r in runs if r["role"] == which]
        if rs:
            sets[which] = summary(rs) | {"jobs": jobs}
            shared_rs = [r for r in rs if r["symbol"] in shared]
            if shared_rs and len(shared_rs) < len(rs):
                sets[f"{which}, BTC/ETH/BNB"] = summary(shared_rs) | {"jobs": jobs}
    return sets


def render(results: dict) -> tuple[dict, str]:
    """The results with their summaries, and the report, from the runs alone: a stored run can be
    summarised again (--render) without training anything."""
    runs, jobs = results["runs"], results.get("jobs")
    results = results | {"summaries": summaries(runs, jobs)}
    overrides = results["overrides"]
    processes = f"{jobs} process{'es' if jobs > 1 else ''}" if jobs else "processes"
    lines = [
        "# Forecast grid: the model, the seasonal band and what is served, month by month",
        "",
        f"{results['machine'].get('date', '')}, commit {results['machine'].get('commit', '')}; {len(runs)} runs in "
        f"{results['seconds'] / 60:.1f} min with {processes} of one torch thread.",
        "",
        "Each month is scored after a retrain just before it, exactly as production trains (TRAIN_DAYS of history, the "
        "last 720 candles the gate's backtest, the 720 before them validation); the gate picks the model if "
        "its pinball loss beats the seasonal band's on that backtest with MAE within 0.5% of naive's, else the "
        "seasonal band serves. Odd months back (k = 1, 3, ...) are the tuning months on which defaults were "
        "chosen; even months are the report months. Ratios are to the naive band (normal band from a 24-hour "
        "EWMA, uncalibrated) and naive (the last price) on the same origins.",
        "",
        ("The seasonal band alone (--band-only). " if results["band_only"] else "")
        + "Config: "
        + (", ".join(f"{k}={v}" for k, v in overrides.items()) or "the defaults")
        + f"; {results['train_days']} days of history per training.",
        "",
    ]
    for which, s in results["summaries"].items():
        lines += table(which, s)
    for which in ("report", "tuning"):
        rs = [r for r in runs if r["role"] == which]
        if rs and not results["band_only"]:
            lines += [f"### Per asset, {which} months", ""] + per_asset(rs)
    return results, "\n".join(lines)


def rerender(name: str) -> None:
    from ingest import RESULTS, publish

    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise GridError(f"no results named {name} ({path})")
    results = json.loads(path.read_text())
    # Runs stored before "jobs" was kept at the top kept it in each summary, if at all.
    stored = [v.get("jobs") for v in results.get("summaries", {}).values() if v.get("jobs")]
    results.setdefault("jobs", stored[0] if stored else None)
    publish(name, *render(results))


if __name__ == "__main__":
    main()
