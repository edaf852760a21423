"""Walk-forward backtest in price space: the model and the baselines on the same origins.

Baselines: naive (the last price), drift (the last price moved by the training period's mean
log-return), a naive band (the last price with a normal band from the EWMA volatility known
at the origin) and the seasonal band (seasonal.SeasonalBand, fitted on the same training data and
calibrated as the model is), the one a model has to beat to serve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import norm
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_pinball_loss,
    root_mean_squared_error,
)

from .band import BandForecaster, to_prices
from .config import TRACK_AHEAD
from .data import Series, SeriesError, build_frame, segment_ids
from .seasonal import fit_seasonal_band

# The naive band every backtest measures methods against. Fixed rather than taken from the
# forecaster's settings: a candidate with another volatility half-life must not move its own
# yardstick (the grid's ratios to the naive band would then compare different things).
NAIVE_HALFLIFE = 24.0


@dataclass
class Forecasts:
    """Per origin (N), per step (H): the point forecast and, if any, quantiles (N, H, Q)."""

    point: np.ndarray
    quantiles: np.ndarray | None


def origins(
    series: Series, *, test_start: int, horizon: int, min_history: int, stride: int = 1, ewma_halflife: float = 24.0
) -> np.ndarray:
    """Origins t >= test_start whose whole horizon exists in the same segment, with enough history."""
    frame = build_frame(series, ewma_halflife=ewma_halflife, min_history=min_history)
    n = len(series)
    cand = np.arange(test_start, n - horizon, stride)
    ok = frame.valid[cand] & (frame.seg[cand + horizon] == frame.seg[cand])
    picked = cand[ok]
    if len(picked) == 0:
        raise SeriesError("no backtest origin has a complete horizon after it")
    return picked


def actuals(series: Series, idx: np.ndarray, horizon: int) -> np.ndarray:
    return series.close[idx[:, None] + np.arange(1, horizon + 1)[None, :]]


def metrics(
    point: np.ndarray,
    actual: np.ndarray,
    last: np.ndarray,
    *,
    mase_scale: float,
    quantiles: np.ndarray | None = None,
    levels: tuple[float, ...] = (0.1, 0.5, 0.9),
) -> dict:
    # scikit-learn's definitions, over every (origin, step) at once; per step where named.
    flat_actual, flat_point = actual.ravel(), point.ravel()
    mae = float(mean_absolute_error(flat_actual, flat_point))
    out = {
        "mae": mae,
        "mae_h1": float(mean_absolute_error(actual[:, 0], point[:, 0])),
        "rmse": float(root_mean_squared_error(flat_actual, flat_point)),
        "mape": float(mean_absolute_percentage_error(flat_actual, flat_point) * 100),
        "mase": mae / mase_scale,
        "mae_by_step": np.asarray(mean_absolute_error(actual, point, multioutput="raw_values")).round(6).tolist(),
    }
    # exp(log(price)) is not always the price to the last bit: a move that small is no move at all.
    move = point - last[:, None]
    moved = np.where(np.abs(move) > 1e-9 * last[:, None], np.sign(move), 0.0)
    actual_move = np.sign(actual - last[:, None])
    # A forecast of "no change" calls no direction, so directional accuracy does not apply to it.
    out["directional_accuracy"] = None if not np.any(moved) else float(np.mean(moved == actual_move))
    if quantiles is not None:
        # The mean over the levels of each level's pinball loss (equal weights: one value per level).
        out["pinball"] = float(
            np.mean(
                [
                    mean_pinball_loss(flat_actual, quantiles[..., i].ravel(), alpha=level)
                    for i, level in enumerate(levels)
                ]
            )
        )
        lo, hi = quantiles[..., 0], quantiles[..., -1]
        out["coverage"] = float(np.mean((actual >= lo) & (actual <= hi)))
        out["width"] = float(np.mean(hi - lo))
        out["width_pct"] = float(np.mean((hi - lo) / last[:, None]) * 100)
        out["band"] = round(levels[-1] - levels[0], 6)
    else:
        out.update(pinball=None, coverage=None, width=None, width_pct=None)
    return out


def baselines(
    series: Series,
    idx: np.ndarray,
    *,
    horizon: int,
    levels: tuple[float, ...],
    train_end: int,
    ewma_halflife: float = NAIVE_HALFLIFE,
    min_history: int = 48,
) -> dict[str, Forecasts]:
    last = series.close[idx]
    h = np.arange(1, horizon + 1)
    train_returns = np.diff(np.log(series.close[:train_end]))
    frame = build_frame(series.head(train_end), ewma_halflife=ewma_halflife, min_history=min_history)
    gaps_free = frame.seg[1:] == frame.seg[:-1]
    mu = float(np.mean(train_returns[gaps_free])) if gaps_free.any() else 0.0
    full = build_frame(series, ewma_halflife=ewma_halflife, min_history=min_history)
    sigma = full.sigma[idx]
    z = norm.ppf(np.asarray(levels))
    band = last[:, None, None] * np.exp(z[None, None, :] * sigma[:, None, None] * np.sqrt(h)[None, :, None])
    naive = np.repeat(last[:, None], horizon, axis=1)
    return {
        "naive": Forecasts(naive, None),
        "drift": Forecasts(last[:, None] * np.exp(mu * h[None, :]), None),
        "naive_band": Forecasts(naive, band),
    }


def backtest(
    model: BandForecaster, series: Series, *, test_start: int, stride: int = 1, seasonal: BandForecaster | None = None
) -> dict:
    """Score the model from every `stride`-th origin at or after `test_start`, and the baselines
    on exactly the same origins. The model only reads candles up to each origin.

    The seasonal band is fitted on the candles before `test_start` unless one is given (fitted
    on data that ends there too)."""
    cfg = model.config
    idx = origins(
        series,
        test_start=test_start,
        horizon=cfg.horizon,
        min_history=cfg.min_history,
        stride=stride,
        ewma_halflife=cfg.ewma_halflife,
    )
    if seasonal is None:
        seasonal = fit_seasonal_band(series, replace(cfg, seasonal=True), train_end=test_start)
    forecasts = {"model": band_forecasts(model, series, idx), "seasonal_band": band_forecasts(seasonal, series, idx)}
    result = score(
        series,
        idx,
        forecasts,
        train_end=test_start,
        horizon=cfg.horizon,
        levels=cfg.quantiles,
        ewma_halflife=NAIVE_HALFLIFE,
        min_history=cfg.min_history,
    )
    result["track"] = track(series, idx, forecasts, horizon=cfg.horizon)
    return result


def track(series: Series, idx: np.ndarray, forecasts: dict[str, Forecasts], *, horizon: int) -> dict:
    """What each forecast said 1, 6 and 24 steps ahead (low, median, high of the band) beside the
    close that followed, per origin: the track record a version has before it ever served.
    Prices to 8 significant digits, which is what a chart can show."""

    def rounded(a: np.ndarray) -> list:
        return [[float(f"{v:.8g}") for v in row] for row in a] if a.ndim == 2 else [float(f"{v:.8g}") for v in a]

    out = {"origin_times": [int(t) for t in series.times[idx]], "last_close": rounded(series.close[idx]), "steps": {}}
    for ahead in TRACK_AHEAD:
        if ahead > horizon:
            continue
        step = {"actual": rounded(series.close[idx + ahead])}
        for name, f in forecasts.items():
            if f.quantiles is None:
                continue
            q = f.quantiles[:, ahead - 1, :]
            step[name] = rounded(np.stack([q[:, 0], f.point[:, ahead - 1], q[:, -1]], axis=1))
        out["steps"][str(ahead)] = step
    return out


def band_forecasts(forecaster: BandForecaster, series: Series, idx: np.ndarray) -> Forecasts:
    cfg = forecaster.config
    pred, frame = forecaster.predict_scaled(series)
    prices = to_prices(pred[idx], frame.take(idx), cfg.horizon)
    point = prices[..., cfg.quantiles.index(0.5)] if 0.5 in cfg.quantiles else prices.mean(axis=-1)
    return Forecasts(point, prices)


def score(
    series: Series,
    idx: np.ndarray,
    forecasts: dict[str, Forecasts],
    *,
    train_end: int,
    horizon: int,
    levels: tuple[float, ...],
    ewma_halflife: float = NAIVE_HALFLIFE,
    min_history: int = 48,
) -> dict:
    """Metrics of each forecast and of the baselines on origins `idx`."""
    actual = actuals(series, idx, horizon)
    last = series.close[idx]
    train_close = series.close[:train_end]
    # One-step naive errors inside segments only: a jump across a gap is not a one-step change.
    seg = segment_ids(series.head(train_end))
    mase_scale = float(np.mean(np.abs(np.diff(train_close))[seg[1:] == seg[:-1]]))
    all_forecasts = dict(forecasts)
    all_forecasts.update(
        baselines(
            series,
            idx,
            horizon=horizon,
            levels=levels,
            train_end=train_end,
            ewma_halflife=ewma_halflife,
            min_history=min_history,
        )
    )
    result = {
        name: metrics(f.point, actual, last, mase_scale=mase_scale, quantiles=f.quantiles, levels=levels)
        for name, f in all_forecasts.items()
    }
    return {
        "origins": int(len(idx)),
        "horizon": horizon,
        "first_origin_time": int(series.times[idx[0]]),
        "last_origin_time": int(series.times[idx[-1]]),
        "methods": result,
    }


def _sub(frame, idx):
    return frame.take(idx)


def naive_band_forecast(
    series: Series, *, horizon: int, levels: tuple[float, ...], ewma_halflife: float = 24.0
) -> dict:
    """The baseline served when an asset has no champion: the last price with a normal band from
    the EWMA volatility at the newest candle."""
    frame = build_frame(series, ewma_halflife=ewma_halflife, min_history=1)
    last, sigma = float(series.close[-1]), float(frame.sigma[-1])
    h = np.arange(1, horizon + 1)
    z = norm.ppf(np.asarray(levels))
    prices = last * np.exp(z[None, :] * sigma * np.sqrt(h)[:, None])
    return {
        "origin_time": int(series.times[-1]),
        "target_times": (series.times[-1] + h * series.interval_ms).tolist(),
        "quantiles": list(levels),
        "prices": prices.tolist(),
        "last_close": last,
    }
