"""Replay: the seasonal band steered on the outcomes of every pair at once, not its own alone.

    .venv/bin/python bench/market_steering.py [FOLDER ...] [--set tuning] [--rates OWN:MARKET ...]

The months that miss 77-83% coverage are market-wide: at today's defaults 8 of the 9 tuning months
out of range fall in two calendar months, four pairs each. A shift learnt from the misses of all
pairs gets several times more evidence per hour than one pair's, so it might react to such a month
sooner for the same noise. This measures that before anything is built for it.

For every month of the grid (bench/forecast_grid.py: the same months, windows and split), each
pair's seasonal band is fitted exactly as the grid fits it. Its pooled adaptive shift is then
replayed with two learners on the same feedback, each outcome judged against their sum in force at
its origin: the pair's own shift (rate OWN, as served today when MARKET is 0) and one market shift
shared by all pairs (rate MARKET), moved each hour by the share of every pair's resolved outcomes
that missed. The served offset is the validation conformal offset plus both, smoothed as served
(aci_smooth). Scored with the grid's own score(): pinball loss over the naive band's, coverage.
The row with MARKET 0 reproduces the grid's band-only row. Writes bench/results/market_steering.json
and .md.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from forecast_grid import (  # noqa: E402
    GATE_STEPS,
    HOUR_MS,
    TRAIN_DAYS,
    default_folder,
    discover,
    month_data,
    months_of,
    read_series,
    role,
)

from forecasting.ml.backtest import Forecasts, origins, score  # noqa: E402
from forecasting.ml.band import _smoothed, in_target_volatility, resolved_at, to_prices  # noqa: E402
from forecasting.ml.config import TrainConfig  # noqa: E402
from forecasting.ml.data import SeriesError, targets  # noqa: E402
from forecasting.ml.seasonal import fit_seasonal_band  # noqa: E402

SHARED = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
LOW, HIGH = 0.77, 0.83


def fitted(path: Path, k: int, config: TrainConfig, *, judge: float = 1.0) -> dict | None:
    """One pair's month as the grid runs it, with what the replay needs. `judge`: how far each
    outcome is re-measured in the volatility at its target time (band.in_target_volatility;
    judged_rel gives the same month under another)."""
    series = _series(path)
    if k not in months_of(series, k + 1):
        return None
    data, _, n_train = month_data(series, k, TRAIN_DAYS)
    try:
        band = fit_seasonal_band(data, config, train_end=n_train - GATE_STEPS)
    except SeriesError:
        return None
    horizon = config.horizon
    frame = band.frame(data)
    y, mask = targets(frame, horizon)
    p = {
        "data": data,
        "frame": frame,
        "raw": band.raw_quantiles(data, frame),
        "y": y,
        "mask": mask,
        "base": np.asarray(band.calibration, dtype=float),
        "start": int(np.searchsorted(data.times, band.aci_start_time)),
        "n_train": n_train,
    }
    p["idx"] = origins(
        data, test_start=n_train, horizon=horizon, min_history=config.min_history, ewma_halflife=config.ewma_halflife
    )
    p["rel"] = judged_rel(p, judge)
    return p


def judged_rel(p: dict, judge: float) -> np.ndarray:
    """[t, j]: the (j + 1)-step score that closed at t, outcomes judged as `judge` says, less
    that step's validation offset (NaN where none closed)."""
    outcome = in_target_volatility(p["y"], p["frame"], judge)
    raw = p["raw"]
    scores = np.where(p["mask"], np.maximum(raw[..., 0] - outcome, outcome - raw[..., -1]), np.nan)
    return resolved_at(scores, start=p["start"]) - p["base"][None, :]


# Each month reads the pair's whole file: read it once per process.
_series = functools.lru_cache(maxsize=None)(read_series)


def replay(pairs: dict[str, dict], own_rate: float, market_rate: float, config: TrainConfig) -> dict[str, dict]:
    horizon, alpha = config.horizon, 1 - config.band
    t0 = min(int(p["data"].times[p["start"]]) for p in pairs.values())
    t1 = max(int(p["data"].times[-1]) for p in pairs.values())
    hours = (t1 - t0) // HOUR_MS + 1
    row_at = {}
    for symbol, p in pairs.items():
        clock = (p["data"].times - t0) // HOUR_MS
        row_at[symbol] = {int(c): t for t, c in enumerate(clock) if t >= p["start"]}
        p["clock"] = np.clip(clock, 0, hours - 1).astype(int)
    # The shift after clock hour c is kept at c + horizon, so [c : c + horizon][::-1] is the shift
    # in force at the origins of the outcomes resolved at c (1 step back, 2 steps back, ...).
    own = {s: np.zeros(hours + horizon) for s in pairs}
    market = np.zeros(hours + horizon)
    own_now = dict.fromkeys(pairs, 0.0)
    market_now = 0.0
    for c in range(hours):
        missed_all = total_all = 0
        for symbol, p in pairs.items():
            t = row_at[symbol].get(c)
            if t is not None:
                rel = p["rel"][t]
                known = np.isfinite(rel)
                if known.any():
                    in_force = (own[symbol][c : c + horizon] + market[c : c + horizon])[::-1]
                    missed = int(np.count_nonzero(rel[known] > in_force[known]))
                    own_now[symbol] += own_rate * (missed / known.sum() - alpha)
                    missed_all += missed
                    total_all += int(known.sum())
            own[symbol][c + horizon] = own_now[symbol]
        if total_all:
            market_now += market_rate * (missed_all / total_all - alpha)
        market[c + horizon] = market_now
    return {
        symbol: scored(p, own[symbol][p["clock"] + horizon] + market[p["clock"] + horizon], config, config.aci_smooth)
        for symbol, p in pairs.items()
    }


def scored(p: dict, shift: np.ndarray, config: TrainConfig, smooth: float) -> dict:
    """The pair's month scored as the grid scores it, its band widened by the validation offsets
    plus `shift` (one value per step, used from the adaptive start on) smoothed over `smooth` steps."""
    horizon = config.horizon
    n, start = len(p["data"]), p["start"]
    offsets = np.broadcast_to(p["base"], (n, horizon)).copy()
    offsets[start:] += shift[start:, None]
    offsets = _smoothed(offsets, p["base"], start, smooth)
    pred = p["raw"].copy()
    pred[..., 0] = np.minimum(pred[..., 0] - offsets, pred[..., 1])
    pred[..., -1] = np.maximum(pred[..., -1] + offsets, pred[..., -2])
    idx = p["idx"]
    prices = to_prices(pred[idx], p["frame"].take(idx), horizon)
    methods = score(
        p["data"],
        idx,
        {"steered": Forecasts(prices[..., 1], prices)},
        train_end=p["n_train"],
        horizon=horizon,
        levels=config.quantiles,
        min_history=config.min_history,
    )["methods"]
    return {
        "pinball_vs_naive_band": methods["steered"]["pinball"] / methods["naive_band"]["pinball"],
        "coverage": methods["steered"]["coverage"],
    }


def summary(runs: list[dict]) -> dict:
    pin = np.array([r["pinball_vs_naive_band"] for r in runs])
    cov = np.array([r["coverage"] for r in runs])
    return {
        "runs": len(runs),
        "pinball_median": float(np.median(pin)),
        "pinball_p10": float(np.quantile(pin, 0.1)),
        "pinball_p90": float(np.quantile(pin, 0.9)),
        "coverage_in_range": float(np.mean((cov >= LOW) & (cov <= HIGH))),
        "coverage_p10": float(np.quantile(cov, 0.1)),
        "coverage_p90": float(np.quantile(cov, 0.9)),
        "coverage_median": float(np.median(cov)),
        "below": int(np.sum(cov < LOW)),
        "above": int(np.sum(cov > HIGH)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--set", choices=("tuning", "report"), default="tuning")
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rates", nargs="+", default=["0.04:0", "0.03:0.01", "0.02:0.02", "0.015:0.025", "0.02:0.03"])
    args = parser.parse_args()
    folders = args.folders or [default_folder(), default_folder() / "more-pairs"]
    files = discover([f for f in folders if f.is_dir()])
    config = TrainConfig(threads=1)
    rates = [tuple(float(x) for x in item.split(":")) for item in args.rates]
    started = time.perf_counter()
    runs = {r: [] for r in rates}
    for k in (k for k in range(args.months) if role(k) == args.set):
        pairs = {s: p for s, p in ((s, fitted(path, k, config)) for s, path in files.items()) if p is not None}
        if not pairs:
            continue
        for r in rates:
            for symbol, m in replay(pairs, *r, config).items():
                runs[r].append({"symbol": symbol, "k": k, **m})
        print(f"k={k}: {len(pairs)} pairs", flush=True)
    from ingest import machine, publish

    rows = []
    lines = [
        "# The seasonal band steered on every pair's outcomes (replay)",
        "",
        f"{machine()['date']}, commit {machine()['commit']}; {args.set} months of the forecast grid, "
        f"{len(files)} pairs; today's defaults except the steering rates. Pinball over the naive band's; "
        "'in range' is the share of (pair, month) runs covering 77-83%. Own 0.04, market 0 is today's band.",
        "",
        "| own rate | market rate | runs | pinball / naive band: median (p10-p90) | in 77-83% | "
        "BTC/ETH/BNB pinball | BTC/ETH/BNB in 77-83% |",
        "|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rates:
        every, shared = summary(runs[r]), summary([x for x in runs[r] if x["symbol"] in SHARED])
        rows.append({"own_rate": r[0], "market_rate": r[1], "all": every, "shared": shared, "runs": runs[r]})
        lines.append(
            f"| {r[0]:g} | {r[1]:g} | {every['runs']} | {every['pinball_median']:.4f} "
            f"({every['pinball_p10']:.4f}-{every['pinball_p90']:.4f}) | {every['coverage_in_range']:.0%} | "
            f"{shared['pinball_median']:.4f} | {shared['coverage_in_range']:.0%} |"
        )
    results = {"machine": machine(), "seconds": time.perf_counter() - started, "set": args.set, "rows": rows}
    publish("market_steering", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
