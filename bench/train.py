"""Training benchmark: this project's quantile LSTM against the reference recipe and the baselines.

    .venv/bin/python bench/train.py [--threads 1] [--reference-epochs 10]

For BTCUSDT, ETHUSDT and BNBUSDT: the last 365 days of 1h candles from the shared CSVs; the last 720
steps are the walk-forward backtest, the 720 before them validate both models. Every method is
scored on the same origins. The reference recipe forecasts one hour ahead only, so it is compared
on step 1. Writes bench/results/train.json and train.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from ingest import publish  # noqa: E402
from reference_recipe import ReferenceConfig, train_reference  # noqa: E402

from forecasting.ml.backtest import actuals, backtest, metrics, origins  # noqa: E402
from forecasting.ml.data import HOUR_MS, Series, segment_ids  # noqa: E402
from forecasting.ml.train import TrainConfig, train  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
DAYS = 365
TEST_STEPS = 720
TARGETS = {
    "train_seconds_max": 10.0,
    "speedup_min": 20.0,
    "coverage_range": (0.77, 0.83),
    "mae_vs_naive_max": 1.005,
}


def data_dir() -> Path:
    path = Path(os.environ.get("MUR_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
    if not (path / "BTCUSDT-1h.csv").is_file():
        sys.exit(
            f"Market data not found in {path}. Put the shared folder beside the project or set "
            f"MUR_SHARED_DATA to its data folder."
        )
    return path


def last_year(path: Path) -> Series:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    times = np.array([int(r["open_time"]) for r in rows], dtype=np.int64)
    keep = times > times[-1] - DAYS * 24 * HOUR_MS  # the last 8,760 hourly slots, gaps included
    col = lambda name: np.array([float(r[name]) for r in rows])[keep]  # noqa: E731
    return Series.from_arrays(
        times=times[keep],
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        volume=col("volume"),
        interval_ms=HOUR_MS,
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def run_asset(symbol: str, series: Series, threads: int, reference_epochs: int) -> dict:
    n = len(series)
    test_start = n - TEST_STEPS
    config = TrainConfig(threads=threads)
    val_start = test_start - config.val_steps

    print(f"{symbol}: our model ...", flush=True)
    started = time.perf_counter()
    model = train(series, config, train_end=test_start)
    ours_seconds = time.perf_counter() - started
    bt = backtest(model, series, test_start=test_start)
    idx = origins(
        series,
        test_start=test_start,
        horizon=config.horizon,
        min_history=config.min_history,
        ewma_halflife=config.ewma_halflife,
    )
    assert bt["origins"] == len(idx)

    ref_config = ReferenceConfig(max_epochs=reference_epochs, threads=threads)
    print(f"{symbol}: reference recipe (up to {reference_epochs} epochs) ...", flush=True)
    started = time.perf_counter()
    ref = train_reference(series, val_start=val_start, test_start=test_start, config=ref_config)
    ref_seconds = time.perf_counter() - started

    # Step 1 of every method on the same origins, with the same MASE scale as the backtest.
    actual1 = actuals(series, idx, 1)
    last = series.close[idx]
    seg = segment_ids(series.head(test_start))
    mase_scale = float(np.mean(np.abs(np.diff(series.close[:test_start]))[seg[1:] == seg[:-1]]))
    ref_point = ref.predict_next_close(series, idx)
    h1 = {"reference": metrics(ref_point[:, None], actual1, last, mase_scale=mase_scale)}
    pred, frame = model.predict_prices(series)
    ours_point = pred[idx, :, config.quantiles.index(0.5)]
    h1["ours"] = metrics(ours_point[:, :1], actual1, last, mase_scale=mase_scale)
    h1["naive"] = metrics(last[:, None], actual1, last, mase_scale=mase_scale)
    assert abs(h1["ours"]["mae"] - bt["methods"]["model"]["mae_h1"]) < 1e-9 * max(1.0, h1["ours"]["mae"])
    assert abs(h1["naive"]["mae"] - bt["methods"]["naive"]["mae_h1"]) < 1e-9 * max(1.0, h1["naive"]["mae"])
    for name in ("drift", "naive_band"):
        h1[name] = {"mae": bt["methods"][name]["mae_h1"]}

    m = bt["methods"]
    naive_mae, naive_mae_h1 = m["naive"]["mae"], m["naive"]["mae_h1"]
    ours = m["model"]
    out = {
        "candles": n,
        "first_time": _when(series.times[0]),
        "last_time": _when(series.times[-1]),
        "gaps": int(segment_ids(series)[-1]),
        "val_start_time": _when(series.times[val_start]),
        "test_start_time": _when(series.times[test_start]),
        "origins": bt["origins"],
        "ours": {
            "train_seconds": round(ours_seconds, 3),
            "epochs": model.meta["epochs"],
            "best_epoch": model.meta["best_epoch"],
            "max_epochs": config.max_epochs,
            "patience": config.patience,
            "shrink": round(model.shrink, 6),
            "params": sum(p.numel() for p in model.module.parameters()),
            "metrics": ours,
        },
        "reference": {
            "train_seconds": round(ref_seconds, 3),
            "epochs": ref.meta["epochs"],
            "best_epoch": ref.meta["best_epoch"],
            "max_epochs": ref_config.max_epochs,
            "early_stopped": ref.meta["early_stopped"],
            "patience": ref_config.patience,
            "train_windows": ref.meta["train_windows"],
            "params": sum(p.numel() for p in ref.module.parameters()),
            "metrics_h1": h1["reference"],
        },
        "baselines": {k: m[k] for k in ("naive", "drift", "naive_band")},
        "h1": h1,
        "ratios": {
            "reference_over_ours_train_time": round(ref_seconds / ours_seconds, 2),
            "ours_mae_over_naive": ours["mae"] / naive_mae,
            "ours_mae_h1_over_naive_h1": ours["mae_h1"] / naive_mae_h1,
            "reference_mae_h1_over_naive_h1": h1["reference"]["mae"] / naive_mae_h1,
            "drift_mae_over_naive": m["drift"]["mae"] / naive_mae,
        },
    }
    lo, hi = TARGETS["coverage_range"]
    out["targets"] = {
        "train_under_10s": ours_seconds < TARGETS["train_seconds_max"],
        "at_least_20x_faster_than_reference": ref_seconds / ours_seconds >= TARGETS["speedup_min"],
        "coverage_77_to_83": lo <= ours["coverage"] <= hi,
        "pinball_below_naive_band": ours["pinball"] < m["naive_band"]["pinball"],
        "mae_within_0.5pct_of_naive": ours["mae"] / naive_mae <= TARGETS["mae_vs_naive_max"],
    }
    return out


def machine(threads: int) -> dict:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    cpu = ""
    try:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), ""
        )
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "commit": commit,
        "torch_threads": threads,
    }


def _f(v, fmt="{:,.2f}"):
    return "—" if v is None else fmt.format(v)


def asset_table(symbol: str, r: dict) -> list[str]:
    m, h1, ours, ref = r["baselines"], r["h1"], r["ours"], r["reference"]
    naive_mae, naive_h1 = m["naive"]["mae"], m["naive"]["mae_h1"]
    lines = [
        f"## {symbol}",
        "",
        f"{r['candles']:,} candles {r['first_time']} to {r['last_time']} UTC ({r['gaps']} gaps); validation from "
        f"{r['val_start_time']}, backtest from {r['test_start_time']}: {r['origins']} origins, 24 steps each.",
        "",
        "| method | train s | epochs (best / cap) | MAE 24-step | MAE 1h | MAE / naive | MASE | dir. acc. "
        "| pinball | 80% coverage | 80% width |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    om = ours["metrics"]
    lines.append(
        f"| ours (quantile LSTM) | {ours['train_seconds']:.2f} | {ours['epochs']} ({ours['best_epoch']} / "
        f"{ours['max_epochs']}) | {om['mae']:,.3f} | {om['mae_h1']:,.3f} | {om['mae'] / naive_mae:.4f} "
        f"(1h {om['mae_h1'] / naive_h1:.4f}) | {om['mase']:.4f} | {_f(om['directional_accuracy'], '{:.1%}')} | "
        f"{om['pinball']:,.3f} | {om['coverage']:.1%} | {om['width']:,.2f} ({om['width_pct']:.2f}%) |"
    )
    rm = ref["metrics_h1"]
    lines.append(
        f"| reference recipe (1h only) | {ref['train_seconds']:.2f} | {ref['epochs']} ({ref['best_epoch']} / "
        f"{ref['max_epochs']}) | — | {rm['mae']:,.3f} | 1h {rm['mae'] / naive_h1:.2f} | {rm['mase']:.4f} (1h) | "
        f"{_f(rm['directional_accuracy'], '{:.1%}')} (1h) | — | — | — |"
    )
    for name in ("naive", "drift", "naive_band"):
        b = m[name]
        lines.append(
            f"| {name} | — | — | {b['mae']:,.3f} | {b['mae_h1']:,.3f} | {b['mae'] / naive_mae:.4f} | {b['mase']:.4f} | "
            f"{_f(b['directional_accuracy'], '{:.1%}')} | {_f(b['pinball'], '{:,.3f}')} | "
            f"{_f(b['coverage'], '{:.1%}')} | "
            + ("—" if b["width"] is None else f"{b['width']:,.2f} ({b['width_pct']:.2f}%)")
            + " |"
        )
    lines += [
        "",
        "One hour ahead, same origins:",
        "",
        "| method | MAE 1h | RMSE 1h | MAPE 1h | MASE 1h | dir. acc. 1h | MAE 1h / naive |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("ours", "ours"), ("reference", "reference recipe"), ("naive", "naive")):
        x = h1[name]
        lines.append(
            f"| {label} | {x['mae']:,.3f} | {x['rmse']:,.3f} | {x['mape']:.3f}% | {x['mase']:.4f} | "
            f"{_f(x['directional_accuracy'], '{:.1%}')} | {x['mae'] / naive_h1:.4f} |"
        )
    ra = r["ratios"]
    lines += [
        "",
        f"Training time, reference / ours: {ra['reference_over_ours_train_time']:.1f}x. "
        f"Reference: {ref['train_windows']:,} windows of 120 steps per epoch, {ref['params']:,} parameters, "
        + ("early stopping ended it" if ref["early_stopped"] else "it hit the epoch cap")
        + f" after {ref['epochs']} epochs. Ours: {ours['params']:,} parameters, "
        f"keeps {ours['shrink']:.0%} of its predicted median move (fitted on validation).",
        "",
        "Targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in r["targets"].items()) + ".",
        "",
    ]
    return lines


def markdown(results: dict) -> str:
    mc = results["machine"]
    lines = [
        "# Training benchmark: quantile LSTM vs the reference recipe and baselines",
        "",
        f"{mc['date']}, {mc['nproc']} CPUs ({mc['cpu']}), Python {mc['python']}, torch {mc['torch']}, "
        f"Lightning {mc['lightning']}, {mc['platform']}, commit {mc['commit']}. "
        f"torch.set_num_threads({mc['torch_threads']}) for both models, one process.",
        "",
        "Data: the last 365 days of 1h candles per asset; the last 720 steps are the walk-forward backtest "
        "and the 720 before them are the validation period of both models. Ours: default TrainConfig, "
        "trained on everything before the backtest. Reference recipe (bench/reference_recipe.py): "
        "calendar + OHLC + close-open, MinMax(-1, 1), window 120, LSTM 2x128, dropout 0.2, AdamW 1e-4, "
        f"batch 64, early stopping patience 2, next-hour close by MSE, epochs capped at "
        f"{results['reference_max_epochs']}. It forecasts 1 hour ahead only, so it is compared on step 1. "
        "Training seconds include feature building (and, for ours, calibration). Prices in USDT; "
        "MASE divides by the training period's mean one-step change. "
        f"Our band: conformal offsets from validation, then adaptive conformal inference at rate "
        f"{results['ours_config']['aci_rate']:g} with each outcome judged in the volatility of its target time; "
        "calibration.md compares other ways of keeping it calibrated, and other seeds.",
        "",
    ]
    for symbol in results["assets"]:
        lines += asset_table(symbol, results["assets"][symbol])
    lines += [
        "## Targets",
        "",
        "| target | " + " | ".join(results["assets"]) + " |",
        "|---|" + "---|" * len(results["assets"]),
    ]
    keys = next(iter(results["assets"].values()))["targets"]
    for k in keys:
        lines.append(
            f"| {k} | " + " | ".join("met" if r["targets"][k] else "MISSED" for r in results["assets"].values()) + " |"
        )
    lines += ["", f"All targets met: {'yes' if results['all_targets_met'] else 'no'}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both models (default 1)")
    parser.add_argument("--reference-epochs", type=int, default=10, help="epoch cap of the reference recipe")
    parser.add_argument("--symbols", nargs="*", default=list(SYMBOLS))
    args = parser.parse_args()

    data = data_dir()
    torch.set_num_threads(args.threads)
    results = {
        "machine": machine(args.threads),
        "targets": TARGETS,
        "reference_max_epochs": args.reference_epochs,
        "ours_config": asdict(TrainConfig(threads=args.threads)),
        "assets": {},
    }
    for symbol in args.symbols:
        series = last_year(data / f"{symbol}-1h.csv")
        results["assets"][symbol] = run_asset(symbol, series, args.threads, args.reference_epochs)
        print("\n".join(asset_table(symbol, results["assets"][symbol])), flush=True)
    results["all_targets_met"] = all(all(r["targets"].values()) for r in results["assets"].values())
    report = markdown(results)
    publish("train", results, report)


if __name__ == "__main__":
    main()
