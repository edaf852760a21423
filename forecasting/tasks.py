"""Thin Celery tasks: take ids, call services."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
)
def candles_refresh_task(asset_id: int) -> dict | None:
    from .binance import BinanceError
    from .models import Asset
    from .services.market_data import candles_refresh

    asset = Asset.objects.filter(id=asset_id, tracked=True).first()
    if asset is None:
        log.info("candles_refresh_task: asset %s is gone or untracked", asset_id)
        return None
    try:
        result = candles_refresh(asset=asset)
    except BinanceError:
        # The adapter already retried with backoff; the next beat tick tries again.
        log.exception("Refreshing %s failed", asset.symbol)
        raise
    log.info("Refreshed %s: %s new, %s updated", asset.symbol, result.created, result.updated)
    if result.written:
        from .services.first_forecast import asset_forecasting_start

        # A new asset's first forecast now and its first training queued; otherwise, new candles,
        # new forecast.
        if asset_forecasting_start(asset=asset).forecast is None:
            forecast_task.delay(asset.id)
    return {"symbol": asset.symbol, "created": result.created, "updated": result.updated}


@shared_task
def tracked_assets_refresh_task() -> int:
    """Enqueue a refresh for every tracked asset (used by `refresh_candles --all --async`)."""
    from .models import Asset

    ids = list(Asset.objects.filter(tracked=True).values_list("id", flat=True))
    for asset_id in ids:
        candles_refresh_task.delay(asset_id)
    return len(ids)


# Training is long and CPU-bound: its own queue, limits sized for it, and one attempt per claim.
TRAIN_SOFT_LIMIT = 30 * 60
TRAIN_HARD_LIMIT = 35 * 60


@shared_task(bind=True, acks_late=True, soft_time_limit=TRAIN_SOFT_LIMIT, time_limit=TRAIN_HARD_LIMIT, max_retries=3)
def training_run_task(self, run_id: int) -> int | None:
    """Retry policy only: what a failure means for the run is the service's decision."""
    from django.conf import settings
    from django.db import InterfaceError, OperationalError

    from .services.training_runs import training_run_execute

    attempt, attempts = self.request.retries + 1, self.max_retries + 1
    try:
        version = training_run_execute(
            run_id=run_id, worker=self.request.hostname or "", attempt=attempt, attempts=attempts
        )
    except (OperationalError, InterfaceError) as exc:
        # The database went away (transient): the service gave the run back while attempts are left.
        if attempt >= attempts:
            raise
        raise self.retry(exc=exc, countdown=settings.TRAINING_RETRY_SECONDS) from exc
    return version.id if version else None


@shared_task
def asset_retrain_task(asset_id: int) -> int | None:
    """Beat's daily retraining: queue a run unless one is already queued or running."""
    from .models import Asset
    from .services.training_runs import training_run_request

    asset = Asset.objects.filter(id=asset_id, tracked=True).first()
    if asset is None:
        log.info("asset_retrain_task: asset %s is gone or untracked", asset_id)
        return None
    return training_run_request(asset=asset, triggered_by="schedule").id


# A forecast whose worker process died (OOM killer, SIGKILL) is sent again after
# default_retry_delay seconds instead of waiting for the next scheduled one; max_retries bounds it,
# so a forecast that kills every process it runs in cannot loop. Safe to repeat: one forecast per
# origin and source (get_or_create on a unique constraint).
@shared_task(
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=3,
    acks_late=True,
    retry_on_worker_lost=True,
    default_retry_delay=10,
)
def forecast_task(asset_id: int) -> int | None:
    from .ml.data import SeriesError
    from .models import Asset
    from .services.forecasts import forecast_make

    asset = Asset.objects.filter(id=asset_id).first()
    if asset is None:
        log.info("forecast_task: asset %s is gone", asset_id)
        return None
    try:
        return forecast_make(asset=asset).id
    except SeriesError as exc:
        log.warning("No forecast for %s: %s", asset.symbol, exc)
        return None


@shared_task
def training_runs_reap_task() -> int:
    from .services.training_runs import training_runs_reap

    return training_runs_reap()
