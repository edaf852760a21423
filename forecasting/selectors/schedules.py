"""When an asset's next refresh, forecast and retraining are due, read from its beat schedules
(the table staff edit in admin), so the pages say what will actually happen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ..models import Asset
from ..services.schedules import forecast_task_name, refresh_task_name, retrain_task_name


def asset_next_runs(*, asset: Asset, now: datetime | None = None) -> dict[str, datetime | None]:
    """{"refresh", "forecast", "retrain"}: when each is next due (UTC), None when paused or absent.
    One query."""
    now = now or timezone.now()
    names = {
        refresh_task_name(asset): "refresh",
        forecast_task_name(asset): "forecast",
        retrain_task_name(asset): "retrain",
    }
    out: dict[str, datetime | None] = dict.fromkeys(names.values())
    tasks = PeriodicTask.objects.filter(name__in=names, enabled=True, crontab__isnull=False).select_related("crontab")
    for task in tasks:
        out[names[task.name]] = crontab_next(task.crontab.schedule, now, ZoneInfo(str(task.crontab.timezone)))
    return out


def crontab_next(schedule, now: datetime, tz) -> datetime | None:
    """The first minute after `now` that a celery crontab matches, in UTC (None: none in a year).
    Celery's own estimate counts from the real clock, not from a given time."""
    local = now.astimezone(tz)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(367):
        # celery numbers the days of the week from Sunday = 0.
        if (
            day.month in schedule.month_of_year
            and day.day in schedule.day_of_month
            and (day.weekday() + 1) % 7 in schedule.day_of_week
        ):
            for hour in sorted(schedule.hour):
                for minute in sorted(schedule.minute):
                    at = day.replace(hour=hour, minute=minute)
                    if at > local:
                        return at.astimezone(UTC)
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # the next day, across a clock change too
    return None
