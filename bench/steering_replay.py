"""Replay: other ways to steer the seasonal band, on the tuning and the report months side by side.

    .venv/bin/python bench/steering_replay.py [FOLDER ...] [--months 24] [--variants NAME ...]

On the grid's report months what is served covered 77-83% in 81% of BTC/ETH/BNB months, against
92% on the tuning months it was chosen on, and the months out of range were mostly below 77% there
and mostly above 83% on the tuning months. This asks whether another way of steering the band,
chosen on the tuning months, would have held on the report months:

- today: pooled adaptive shift (aci_rate), each outcome judged in the volatility at its target
  time, served as its EWMA over aci_smooth steps (band.adaptive_offsets);
- closed: the adaptive shift learns from the misses of the band actually served (the smoothed
  one), not of its own unsmoothed band, so the served band's coverage is what it steers;
- experts: several adaptive shifts at once (rates 0.01-0.08), served as their average weighted by
  each one's pinball loss on the outcomes resolved so far (dynamically tuned ACI, with a fixed
  share so no expert is ever silenced), smoothed as today;
- origin / half: outcomes judged in the volatility at their origin (as the coverage is scored), or
  half-way between the two (band.in_target_volatility's power 0 or 0.5).

Every month and pair is fitted exactly as the grid fits its band-only runs (bench/market_steering.py
`fitted`) and scored with the grid's own score(); the 'today' row reproduces the grid's band-only
row. Writes bench/results/steering_replay.json and .md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from forecast_grid import GridError, default_folder, discover, role  # noqa: E402
from market_steering import SHARED, fitted, judged_rel, scored, summary  # noqa: E402

from forecasting.ml.config import TrainConfig  # noqa: E402

EXPERT_RATES = (0.01, 0.02, 0.04, 0.08)
_TODAY = TrainConfig()
# name -> (kind, judge power, rate, smoothing half-life in steps)
VARIANTS = {
    "today": ("open", _TODAY.aci_judge, _TODAY.aci_rate, _TODAY.aci_smooth),
    "closed 0.04 / 24 h": ("closed", 1.0, 0.04, 24.0),
    "closed 0.03 / 12 h": ("closed", 1.0, 0.03, 12.0),
    "closed 0.02 / 24 h": ("closed", 1.0, 0.02, 24.0),
    "experts / 24 h": ("experts", 1.0, 0.0, 24.0),
    "origin 0.04 / 24 h": ("open", 0.0, 0.04, 24.0),
    "origin 0.03 / 12 h": ("open", 0.0, 0.03, 12.0),
    "half 0.03 / 24 h": ("open", 0.5, 0.03, 24.0),
    "half 0.04 / 12 h": ("open", 0.5, 0.04, 12.0),
}


class ReplayError(ValueError):
    pass


def steer(rel: np.ndarray, start: int, *, rate: float, alpha: float, smooth: float, closed: bool) -> np.ndarray:
    """The served shift per step (n,), from `rel` ([t, j]: the (j + 1)-step score resolved at t less
    its step's validation offset). Open: the adaptive shift judges outcomes against itself and is
    served smoothed. Closed: it judges them against the smoothed shift, the one served."""
    n, horizon = rel.shape
    w = 1.0 - 0.5 ** (1.0 / smooth) if smooth else 1.0
    judged = np.zeros(n + horizon)  # the shift after step t is kept at t + horizon
    served = np.zeros(n + horizon)
    q = s = 0.0
    for t in range(start, n):
        known = np.isfinite(rel[t])
        if known.any():
            in_force = judged[t : t + horizon][::-1][known]
            q += rate * (np.count_nonzero(rel[t][known] > in_force) / known.sum() - alpha)
        s += w * (q - s)
        served[t + horizon] = s
        judged[t + horizon] = s if closed else q
    return served[horizon:]


def experts(
    rel: np.ndarray, start: int, *, rates: tuple[float, ...], alpha: float, eta: float = 1.0, share: float = 0.01
) -> np.ndarray:
    """Adaptive shifts at several `rates`, each judged against itself, served as their average
    weighted by exp(-eta x their summed pinball loss), with `share` of the weight spread evenly."""
    n, horizon = rel.shape
    rates_ = np.asarray(rates, dtype=float)
    k = len(rates_)
    hist = np.zeros((n + horizon, k))
    q, w = np.zeros(k), np.full(k, 1.0 / k)
    out = np.zeros(n)
    for t in range(start, n):
        known = np.isfinite(rel[t])
        if known.any():
            in_force = hist[t : t + horizon][::-1][known]  # (m, k)
            scores = rel[t][known][:, None]
            missed = scores > in_force
            loss = np.where(missed, (1 - alpha) * (scores - in_force), alpha * (in_force - scores)).mean(axis=0)
            q = q + rates_ * (missed.mean(axis=0) - alpha)
            w = w * np.exp(-eta * loss)
            w = (1 - share) * w / w.sum() + share / k
        hist[t + horizon] = q
        out[t] = w @ q
    return out


def replay_pair(p: dict, variant: str, config: TrainConfig) -> dict:
    kind, _, rate, smooth = VARIANTS[variant]
    alpha = 1 - config.band
    if kind == "experts":
        return scored(p, experts(p["rel"], p["start"], rates=EXPERT_RATES, alpha=alpha), config, smooth)
    shift = steer(p["rel"], p["start"], rate=rate, alpha=alpha, smooth=smooth, closed=kind == "closed")
    return scored(p, shift, config, 0.0)  # steer() has already smoothed what it serves


def run(files: dict[str, Path], months: int, variants: list[str], config: TrainConfig, log=print) -> dict:
    runs = {(v, s): [] for v in variants for s in ("tuning", "report")}
    judges = sorted({VARIANTS[v][1] for v in variants})
    for k in range(months):
        for symbol, path in files.items():
            fit = fitted(path, k, config)  # once: only the judged scores differ between variants
            if fit is None:
                continue
            for judge in judges:
                p = fit | {"rel": judged_rel(fit, judge)}
                for v in (v for v in variants if VARIANTS[v][1] == judge):
                    runs[v, role(k)].append({"symbol": symbol, "k": k, **replay_pair(p, v, config)})
        log(f"month {k} done", flush=True)
    if not any(runs.values()):
        raise ReplayError("no pair had a month with enough candles before it")
    return runs


def table(runs: dict, variants: list[str]) -> list[str]:
    lines = [
        "| steering | set | runs | pinball / naive band (median) | coverage median | in 77-83% | below / above | "
        "BTC/ETH/BNB pinball | BTC/ETH/BNB in 77-83% | BTC/ETH/BNB below / above |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        for which in ("tuning", "report"):
            every = summary(runs[v, which])
            shared = summary([r for r in runs[v, which] if r["symbol"] in SHARED])
            lines.append(
                f"| {v} | {which} | {every['runs']} | {every['pinball_median']:.4f} | "
                f"{every['coverage_median']:.1%} | {every['coverage_in_range']:.0%} | "
                f"{every['below']} / {every['above']} | {shared['pinball_median']:.4f} | "
                f"{shared['coverage_in_range']:.0%} | {shared['below']} / {shared['above']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.exit(2, f"steering_replay: unknown variant {', '.join(unknown)}; known: {', '.join(VARIANTS)}\n")
    if args.months < 2:
        parser.exit(2, "steering_replay: --months must be at least 2 (one tuning, one report month)\n")
    folders = args.folders or [default_folder(), default_folder() / "more-pairs"]
    try:
        files = discover([f for f in folders if f.is_dir()] or folders)
        started = time.perf_counter()
        runs = run(files, args.months, args.variants, TrainConfig(threads=1))
    except (GridError, ValueError, OSError) as exc:
        parser.exit(2, f"steering_replay: {exc}\n")
    from ingest import machine, publish

    lines = [
        "# Other ways to steer the seasonal band, tuning and report months side by side (replay)",
        "",
        f"{machine()['date']}, commit {machine()['commit']}; {len(files)} pairs, the grid's months "
        f"(tuning: odd, report: even, {args.months} per pair where the data reaches). Band only: what the grid "
        "serves when no model passes the gate. Pinball over the naive band's; 'in 77-83%' is the share of "
        "(pair, month) runs whose coverage is in range, 'below / above' how many fell out on each side.",
        "",
        *table(runs, args.variants),
    ]
    results = {
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "variants": {v: list(VARIANTS[v]) for v in args.variants},
        "runs": {f"{v} | {s}": r for (v, s), r in runs.items()},
    }
    publish("steering_replay", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
