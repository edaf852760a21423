"""Beat schedules live in the database (django-celery-beat), one set per tracked asset.

That table is the single source of truth: staff edit it in admin, and nothing in settings
overwrites it at startup.
"""

from __future__ import annotations

import json

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ..models import Asset

# Refresh just after each candle closes. https://crontab.guru/#1_*_*_*_* for 1h.
_REFRESH_CRON = {
    "1m": {"minute": "*"},
    "3m": {"minute": "*/3"},
    "5m": {"minute": "*/5"},
    "15m": {"minute": "*/15"},
    "30m": {"minute": "*/30"},
    "1h": {"minute": "1"},
    "2h": {"minute": "1", "hour": "*/2"},
    "4h": {"minute": "1", "hour": "*/4"},
    "6h": {"minute": "1", "hour": "*/6"},
    "8h": {"minute": "1", "hour": "*/8"},
    "12h": {"minute": "1", "hour": "*/12"},
    "1d": {"minute": "1", "hour": "0"},
    "3d": {"minute": "1", "hour": "0"},
    "1w": {"minute": "1", "hour": "0", "day_of_week": "1"},
}


def refresh_task_name(asset: Asset) -> str:
    return f"Refresh candles {asset.symbol} {asset.interval}"


def retrain_task_name(asset: Asset) -> str:
    return f"Retrain {asset.symbol}"


def forecast_task_name(asset: Asset) -> str:
    return f"Forecast {asset.symbol}"


# Daily retraining at 02:30 UTC, a quiet hour: https://crontab.guru/#30_2_*_*_*
RETRAIN_CRON = {"minute": "30", "hour": "2"}


def _forecast_cron(interval: str) -> dict:
    """A minute after the refresh, so the forecast sees the candle that just closed."""
    spec = dict(_REFRESH_CRON[interval])
    if spec["minute"] == "1":
        spec["minute"] = "3"
    return spec


def _crontab(spec: dict) -> CrontabSchedule:
    fields = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    fields.update(spec)
    schedule, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **fields)
    return schedule


def asset_schedule_specs(asset: Asset) -> list[tuple[str, str, dict, str]]:
    """(name, task, crontab, queue) of every periodic task an asset has."""
    return [
        (refresh_task_name(asset), "forecasting.tasks.candles_refresh_task", _REFRESH_CRON[asset.interval], "ingest"),
        (forecast_task_name(asset), "forecasting.tasks.forecast_task", _forecast_cron(asset.interval), "forecast"),
        (retrain_task_name(asset), "forecasting.tasks.asset_retrain_task", RETRAIN_CRON, "forecast"),
    ]


@transaction.atomic
def asset_schedules_ensure(*, asset: Asset) -> None:
    """Create the asset's periodic tasks if missing; leave existing ones (and staff edits) alone,
    except that the enabled flag follows the asset's tracked flag."""
    for name, task_name, cron, queue in asset_schedule_specs(asset):
        task, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task_name,
                "crontab": _crontab(cron),
                "kwargs": json.dumps({"asset_id": asset.id}),
                "queue": queue,
                "enabled": asset.tracked,
            },
        )
        if not created and task.enabled != asset.tracked:
            task.enabled = asset.tracked
            task.save(update_fields=["enabled"])


def asset_schedules(asset: Asset):
    return PeriodicTask.objects.filter(name__in=[spec[0] for spec in asset_schedule_specs(asset)])
