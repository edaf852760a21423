"""An asset's first forecast: as soon as it has candles, not at the next schedule.

Setup, tracking and imports call `asset_forecasting_start` after storing candles. It makes the
baseline forecast at once (the statistical band: a second or less), and queues the asset's first
training when there is history enough to train and validate on, so a model can replace that band
within minutes instead of at the next nightly retrain.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from core.broker import QueueUnavailableError

from ..ml.data import SeriesError
from ..models import Asset, Candle, Forecast, ModelVersion, TrainingRun
from .forecasts import forecast_make
from .training_runs import DAY_MS, train_config, training_run_request

log = logging.getLogger(__name__)

FIRST_TRAINING = "first candles"


@dataclass(frozen=True)
class FirstSteps:
    forecast: Forecast | None  # made now (None: one existed already, or the history is too short)
    run: TrainingRun | None  # queued now (None: see `note`)
    note: str  # what happened, in words for a terminal or a log


def candles_needed_to_train(asset: Asset) -> int:
    """Candles a first training needs: the backtest month, the validation month and at least as
    much again to train on."""
    config = train_config(asset)
    step_ms = int(asset.interval_delta.total_seconds() * 1000)
    backtest = settings.BACKTEST_DAYS * DAY_MS // step_ms
    return backtest + 2 * config.val_steps + config.min_history


def asset_forecasting_start(*, asset: Asset) -> FirstSteps:
    """Make the asset's first forecast and queue its first training, each only once.

    Safe to call after every refresh: an asset that has a forecast gets no new one here (the
    forecast schedule makes those), and one that was ever trained or queued is not queued again
    (the daily retrain takes over, and a first training that failed is not retried in a loop)."""
    notes = []
    forecast = None
    if not Forecast.objects.filter(asset=asset).exists():
        try:
            forecast = forecast_make(asset=asset)
            notes.append(f"first forecast made ({forecast.source}, from {forecast.origin_time:%Y-%m-%d %H:%M} UTC)")
        except SeriesError as exc:
            notes.append(f"no forecast yet: {exc}")
    run = None
    if not settings.FIRST_TRAINING:
        return FirstSteps(forecast, None, "; ".join(notes) or "already forecasting")
    if ModelVersion.objects.filter(asset=asset).exists() or TrainingRun.objects.filter(asset=asset).exists():
        return FirstSteps(forecast, None, "; ".join(notes) or "already forecasting")
    have = Candle.objects.filter(asset=asset, interval=asset.interval).count()
    needed = candles_needed_to_train(asset)
    if have < needed:
        notes.append(f"first training waits for {needed} candles ({have} stored); the baseline serves until then")
    else:
        try:
            run = training_run_request(asset=asset, triggered_by=FIRST_TRAINING)
            notes.append("first training queued")
        except QueueUnavailableError as exc:
            # The nightly retrain will train it; the baseline forecast serves meanwhile.
            notes.append(f"first training not queued: {exc}")
            log.warning("%s: first training not queued: %s", asset.symbol, exc)
    return FirstSteps(forecast, run, "; ".join(notes))
