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
    return {"symbol": asset.symbol, "created": result.created, "updated": result.updated}


@shared_task
def tracked_assets_refresh_task() -> int:
    """Enqueue a refresh for every tracked asset (used by `refresh_candles --all --async`)."""
    from .models import Asset

    ids = list(Asset.objects.filter(tracked=True).values_list("id", flat=True))
    for asset_id in ids:
        candles_refresh_task.delay(asset_id)
    return len(ids)
