"""Where the pinball loss is: per horizon step and per quantile, model against the bands.

    .venv/bin/python bench/loss_by_horizon.py [FOLDER ...] [--set tuning] [--symbols BTCUSDT ...]
                                              [--months 24] [--name loss_by_horizon]

The grid (bench/forecast_grid.py) scores one number per month: the pinball loss over the levels
0.1, 0.5 and 0.9 and all 24 steps, in prices. This runs the grid's months the same way (the same
retrain, the same month scored) and splits that number up:

- how much of the loss each horizon step carries (far steps move more, so they weigh more);
- the median's share: every method here serves the last price as its median, so that part of
  the loss is the same for all of them and no band can win it back;
- the model's and the seasonal band's loss against the naive band's on the outer quantiles alone,
  which is where they differ, and what the grid's overall ratio comes to from it.

Writes bench/results/<name>.json and .md.
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
    months_of,
    read_series,
    role,
)

from forecasting.ml.backtest import actuals, band_forecasts, baselines, origins  # noqa: E402
from forecasting.ml.data import SeriesError  # noqa: E402
from forecasting.ml.seasonal import fit_seasonal_band  # noqa: E402
from forecasting.ml.train import TrainConfig, train  # noqa: E402

SHOWN_STEPS = (1, 2, 4, 6, 12, 18, 24)
METHODS = ("model", "seasonal_band", "naive_band")


def month_losses(series, k: int, overrides: dict | None = None) -> dict | None:
    """(H, Q) mean pinball loss of each method on month k, trained and fitted as the grid does
    (`overrides` as the grid's --config), or None if the month cannot be trained."""
    data, _cut, n_train = month_data(series, k, TRAIN_DAYS)
    test_start = n_train - GATE_STEPS
    config = replace(TrainConfig(threads=1), **(overrides or {}))
    try:
        band = fit_seasonal_band(data, config, train_end=test_start)
        model = train(data, config, train_end=test_start)
    except SeriesError:
        return None
    idx = origins(data, test_start=n_train, horizon=config.horizon, min_history=config.min_history)
    actual = actuals(data, idx, config.horizon)
    levels = np.asarray(config.quantiles)
    quantiles = {
        "model": band_forecasts(model, data, idx).quantiles,
        "seasonal_band": band_forecasts(band, data, idx).quantiles,
        "naive_band": baselines(data, idx, horizon=config.horizon, levels=config.quantiles, train_end=n_train)[
            "naive_band"
        ].quantiles,
    }
    out = {}
    for name, q in quantiles.items():
        diff = actual[..., None] - q
        out[name] = np.maximum(levels * diff, (levels - 1) * diff).mean(axis=0)
    return out


def summarise(losses: list[dict]) -> dict:
    stack = {m: np.array([r[m] for r in losses]) for m in METHODS}  # (runs, H, Q)
    naive = stack["naive_band"]
    total = naive.sum(axis=(1, 2))
    out = {
        "runs": len(losses),
        "median_share": float(np.median(naive[..., naive.shape[-1] // 2].sum(axis=1) / total)),
        "step_share": np.median(naive.sum(axis=2) / total[:, None], axis=0).tolist(),
        "methods": {},
    }
    for m in ("model", "seasonal_band"):
        s = stack[m]
        outer = s[..., [0, -1]].sum(axis=(1, 2)) / naive[..., [0, -1]].sum(axis=(1, 2))
        by_step = s.sum(axis=2) / stack["seasonal_band"].sum(axis=2)
        out["methods"][m] = {
            "overall": float(np.median(s.sum(axis=(1, 2)) / total)),
            "outer": float(np.median(outer)),
            "outer_p10": float(np.percentile(outer, 10)),
            "outer_p90": float(np.percentile(outer, 90)),
            "vs_band_by_step": np.median(by_step, axis=0).tolist(),
            "beats_band_by_step": np.mean(by_step < 1, axis=0).tolist(),
        }
    # How far below the naive band's the outer quantiles' loss must be for an overall ratio of
    # 0.985 when the median is the last price: what that target asks of the band.
    out["outer_needed_for_0.985"] = float(1 - 0.015 / (1 - out["median_share"]))
    return out


def render(results: dict) -> str:
    s = results["summary"]
    lines = [
        "# Where the pinball loss is: per horizon step and per quantile",
        "",
        f"{results['date']}, commit {results['commit']}; {s['runs']} (asset, month) runs of the grid's "
        f"{results['set']} months ({', '.join(results['symbols'])}), today's defaults, in "
        f"{results['seconds'] / 60:.1f} min. "
        "Medians over the runs; each run is one month scored in prices as bench/forecast_grid.py scores it.",
        "",
        f"- The median (the last price, for every method here) carries {s['median_share']:.1%} of the naive "
        "band's loss: the same for all methods, so no band can win it back.",
        f"- On the outer quantiles (0.1 and 0.9) alone, against the naive band's: model "
        f"{s['methods']['model']['outer']:.4f} (p10-p90 {s['methods']['model']['outer_p10']:.4f}-"
        f"{s['methods']['model']['outer_p90']:.4f}), seasonal band {s['methods']['seasonal_band']['outer']:.4f}. "
        f"Overall (all three levels): model {s['methods']['model']['overall']:.4f}, seasonal band "
        f"{s['methods']['seasonal_band']['overall']:.4f}.",
        f"- An overall ratio of 0.985 asks the outer quantiles for about {s['outer_needed_for_0.985']:.4f} x "
        "the naive band's loss.",
        "",
        "| step ahead | share of the naive band's loss | model / seasonal band (median) | model beats the band |",
        "|---:|---:|---:|---:|",
    ]
    m = s["methods"]["model"]
    for step in SHOWN_STEPS:
        h = step - 1
        lines.append(
            f"| {step} | {s['step_share'][h]:.1%} | {m['vs_band_by_step'][h]:.4f} | {m['beats_band_by_step'][h]:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path, help="folders of <SYMBOL>-1h.csv (default: shared data)")
    parser.add_argument("--set", choices=["tuning", "report"], default="tuning")
    parser.add_argument("--symbols", nargs="*", help="only these symbols")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--name", default="loss_by_horizon")
    args = parser.parse_args(argv)
    folders = args.folders or [default_folder(), default_folder() / "more-pairs"]
    try:
        files = discover([f for f in folders if f.is_dir()] or folders)
        if args.symbols:
            files = {s: p for s, p in files.items() if s in set(args.symbols)}
            if not files:
                raise GridError(f"none of {', '.join(args.symbols)} is in the folders")
        started = time.perf_counter()
        losses, runs = [], []
        for symbol, path in files.items():
            series = read_series(path)
            for k in months_of(series, args.months):
                if role(k) != args.set:
                    continue
                r = month_losses(series, k)
                if r is None:
                    continue
                losses.append(r)
                runs.append({"symbol": symbol, "k": k} | {m: v.tolist() for m, v in r.items()})
                print(f"{symbol} k={k}", flush=True)
        if not losses:
            raise GridError(f"no {args.set} month could be trained")
    except (GridError, ValueError, OSError) as exc:
        parser.exit(2, f"loss_by_horizon: {exc}\n")
    from ingest import machine, publish

    info = machine()
    results = {
        "date": info["date"],
        "commit": info["commit"],
        "set": args.set,
        "symbols": sorted(files),
        "seconds": time.perf_counter() - started,
        "summary": summarise(losses),
        "runs": runs,
    }
    publish(args.name, results, render(results))


if __name__ == "__main__":
    main()
