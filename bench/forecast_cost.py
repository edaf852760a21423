"""What one forecast costs with an ensemble of LSTMs against one, measured side by side.

    .venv/bin/python bench/forecast_cost.py [FOLDER] [--symbol ETHUSDT] [--month 2]
                                            [--members 1 2] [--repeat 40] [--epochs 3] [--name forecast_cost]

The grid (bench/forecast_grid.py) times one forecast per month, cold and right after training,
often with a second grid process on the other core: a fair count of what a month costs, a poor
measure of what a forecast costs. This trains each model on the same month once (a few epochs:
the number of epochs does not change the network, so not what a forecast costs), then times
forecasts from the candles production reads (model.history_start), the models taking turns
round after round so that the machine's noise falls on all of them alike. One torch thread, as
production pins it. Each round also times a forecast from the artifact's bytes two ways: parsed
anew and forecast once ("loaded", what a forecast task did before the worker kept its models),
and checksummed, found among the kept models and forecast once ("kept", what
model_version_load does now once a model has been parsed in the process).

Writes bench/results/<name>.json and .md.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from forecast_grid import TRAIN_DAYS, default_folder, month_data, read_series  # noqa: E402

from forecasting.ml.data import SeriesError  # noqa: E402
from forecasting.ml.train import TrainConfig, TrainedModel, train  # noqa: E402


def measure(path: Path, *, month: int, members: list[int], repeat: int, epochs: int) -> list[dict]:
    """Median and 90th percentile of `repeat` warmed forecasts per ensemble size, each median's
    ratio to the first size's, the same for a forecast from the model loaded anew, and for one from
    the kept model after checking the bytes' checksum (with its ratio to loading anew)."""
    data, _, n_train = month_data(read_series(path), month, TRAIN_DAYS)
    models = []
    for size in members:
        config = replace(TrainConfig(threads=1), ensemble=size, max_epochs=epochs)
        model = train(data, config, train_end=n_train)
        recent = data.head(n_train).since(model.history_start(data.interval_ms))
        model.forecast(recent)  # warm: the first call pays for allocations a serving worker has made
        models.append((size, model, recent, model.to_bytes()))
    times: dict[int, list[float]] = {size: [] for size in members}
    loaded: dict[int, list[float]] = {size: [] for size in members}
    kept: dict[int, list[float]] = {size: [] for size in members}
    cache = {hashlib.sha256(blob).hexdigest(): model for _, model, _, blob in models}
    for _ in range(repeat):
        for size, model, recent, blob in models:
            started = time.perf_counter()
            model.forecast(recent)
            times[size].append(time.perf_counter() - started)
            started = time.perf_counter()
            TrainedModel.from_bytes(blob).forecast(recent)
            loaded[size].append(time.perf_counter() - started)
            started = time.perf_counter()
            cache[hashlib.sha256(blob).hexdigest()].forecast(recent)
            kept[size].append(time.perf_counter() - started)
    first, first_loaded = statistics.median(times[members[0]]), statistics.median(loaded[members[0]])
    return [
        {
            "members": size,
            "candles_read": len(recent),
            "median_ms": statistics.median(times[size]) * 1000,
            "p90_ms": _p90(times[size]) * 1000,
            "ratio": statistics.median(times[size]) / first,
            "loaded_median_ms": statistics.median(loaded[size]) * 1000,
            "loaded_p90_ms": _p90(loaded[size]) * 1000,
            "loaded_ratio": statistics.median(loaded[size]) / first_loaded,
            "kept_median_ms": statistics.median(kept[size]) * 1000,
            "kept_p90_ms": _p90(kept[size]) * 1000,
            "kept_against_loaded": statistics.median(kept[size]) / statistics.median(loaded[size]),
        }
        for size, _, recent, _ in models
    ]


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def render(symbol: str, month: int, repeat: int, rows: list[dict], date: str, commit: str) -> str:
    lines = [
        "# What a forecast costs, one LSTM against an ensemble",
        "",
        f"{date}, commit {commit}; {symbol}, trained just before month k={month} as the grid trains it; "
        f'{repeat} warmed forecasts each, the models taking turns; one torch thread. "Loaded": the model '
        "parsed anew from its artifact's bytes and one forecast. \"Kept\": the bytes' checksum "
        "checked, the model already parsed in the process and one forecast, as a forecast task does it now.",
        "",
        "| LSTMs | candles read | median ms | p90 ms | median against the first | loaded: median ms | "
        "loaded: p90 ms | loaded: against the first | kept: median ms | kept: p90 ms | kept against loaded |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['members']} | {r['candles_read']} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['ratio']:.2f} x | "
            f"{r['loaded_median_ms']:.1f} | {r['loaded_p90_ms']:.1f} | {r['loaded_ratio']:.2f} x | "
            f"{r['kept_median_ms']:.1f} | {r['kept_p90_ms']:.1f} | {r['kept_against_loaded']:.2f} x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=None, help="kline CSVs (default ../shared/data)")
    parser.add_argument("--symbol", default="ETHUSDT")
    parser.add_argument("--month", type=int, default=2, help="months back from the end of the data, as the grid's k")
    parser.add_argument("--members", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--name", default="forecast_cost")
    args = parser.parse_args(argv)
    if any(m < 1 for m in args.members) or args.repeat < 1 or args.epochs < 1 or args.month < 0:
        parser.exit(2, "forecast_cost: --members, --repeat and --epochs must be at least 1, --month at least 0\n")
    folder = args.folder or default_folder()
    path = folder / f"{args.symbol}-1h.csv"
    if not path.is_file():
        parser.exit(2, f"forecast_cost: no {path.name} in {folder}\n")
    from ingest import machine, publish

    try:
        rows = measure(path, month=args.month, members=args.members, repeat=args.repeat, epochs=args.epochs)
    except (SeriesError, ValueError) as exc:
        parser.exit(2, f"forecast_cost: {exc}\n")
    info = machine()
    publish(
        args.name,
        {"date": info["date"], "commit": info["commit"], "symbol": args.symbol, "month": args.month, "rows": rows},
        render(args.symbol, args.month, args.repeat, rows, info["date"], info["commit"]),
    )


if __name__ == "__main__":
    main()
