"""Forecasts: made from the newest candle by the champion, or by the statistical baseline when there
is none; one per origin and source, so making one twice is harmless."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.utils import timezone

from core.times import ms_to_datetime

from ..intervals import interval_ms
from ..ml.data import SeriesError
from ..models import Asset, Forecast, ModelVersion
from ..selectors.market_data import candle_series
from .artifacts import ArtifactError
from .model_versions import model_version_load
from .training_runs import backtest_steps, train_config

log = logging.getLogger(__name__)

FORECAST_CANDLES = 24 * 60  # enough history to warm the LSTM state and the volatility estimate


def forecast_make(*, asset: Asset) -> Forecast:
    """Forecast from the newest candle with the champion, or the statistical baseline when there is none."""
    champion, model = None, None
    for _attempt in range(3):
        champion = ModelVersion.objects.filter(asset=asset, status=ModelVersion.Status.CHAMPION).first()
        if champion is None:
            break
        try:
            model = model_version_load(champion)
            break
        except ArtifactError:
            champion = None  # flagged; the previous good version (if any) is champion now
    if model is not None:
        start = model.history_start(interval_ms(asset.interval))
        if start is not None:
            series, _ = candle_series(asset=asset, since=ms_to_datetime(start), digest=False)
        else:
            series, _ = candle_series(asset=asset, limit=FORECAST_CANDLES, digest=False)
        out = model.forecast(series)
        kind, source = Forecast.Kind.MODEL, f"v{champion.version}"
        age_limit = timedelta(hours=settings.MODEL_MAX_AGE_HOURS)
        stale = timezone.now() - champion.created_at > age_limit
    else:
        out, source = _baseline_forecast(asset)
        kind, stale = Forecast.Kind.BASELINE, False
    steps = [
        {"target_time": ms_to_datetime(t).isoformat(), "values": [_price(v) for v in values]}
        for t, values in zip(out["target_times"], out["prices"])
    ]
    forecast, _ = Forecast.objects.get_or_create(
        asset=asset,
        origin_time=ms_to_datetime(out["origin_time"]),
        source=source,
        defaults={
            "kind": kind,
            "model_version": champion if model is not None else None,
            "last_close": _price(out["last_close"]),
            "quantiles": list(out["quantiles"]),
            "steps": steps,
            "stale": stale,
        },
    )
    return forecast


def _baseline_forecast(asset: Asset) -> tuple[dict, str]:
    """(forecast, source): the seasonal band fitted as the gate's backtest fits it, so the band that
    serves is the one every model had to beat; the naive band while the history is too short for it."""
    from ..ml.backtest import naive_band_forecast
    from ..ml.seasonal import fit_seasonal_band

    config = replace(train_config(asset), seasonal=True)
    series, _ = candle_series(asset=asset, days=settings.TRAIN_DAYS, digest=False)
    # Fitted before the last BACKTEST_DAYS, as in the backtest: that month is then covered by its
    # adaptive updates instead of its fit.
    train_end = max(len(series) - backtest_steps(series), 0)
    try:
        band = fit_seasonal_band(series, config, train_end=train_end)
        return band.forecast(series), Forecast.SEASONAL_SOURCE
    except SeriesError as exc:
        log.info("%s: the naive band serves instead of the seasonal band: %s", asset.symbol, exc)
    out = naive_band_forecast(
        series.tail(FORECAST_CANDLES),
        horizon=config.horizon,
        levels=config.quantiles,
        ewma_halflife=config.ewma_halflife,
    )
    return out, Forecast.NAIVE_SOURCE


def _price(value: float) -> str:
    """Prices as decimal strings with 8 places (what candles hold), never binary floats."""
    return f"{float(np.round(value, 8)):.8f}"
