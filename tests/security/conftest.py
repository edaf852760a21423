"""The API tests' small world (an asset with candles and forecasts, an owner with a portfolio,
transactions and a token, another user, staff), plus a few objects so every admin page has one
to show. Staff is also a superuser here, so every admin page is really rendered for them."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.support.world import PASSWORD, World, build_world

ROLES = ("anonymous", "owner", "other", "staff")


@pytest.fixture(autouse=True)
def _fresh_counts(fresh_cache):
    """Throttle and sign-in failure counts live in the cache; each test starts from zero."""


@pytest.fixture
def world(db, django_user_model) -> World:
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    w = build_world(django_user_model)
    w.staff.is_superuser = True
    w.staff.save(update_fields=["is_superuser"])
    Group.objects.create(name="operators")
    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    CrontabSchedule.objects.create(minute="5")
    SolarSchedule.objects.create(event="sunrise", latitude=48.85, longitude=2.35)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    PeriodicTask.objects.create(name="refresh", task="forecasting.tasks.tracked_assets_refresh_task", interval=every)
    return w


def client_for(world: World, role: str, **kwargs) -> Client:
    """A browser-like client signed in (by session) as the role."""
    client = Client(**kwargs)
    if role != "anonymous":
        client.force_login(getattr(world, role))
    return client


__all__ = ["PASSWORD", "ROLES", "client_for"]
