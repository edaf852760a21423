"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Fixtures every folder may use, each defined once (no conftest imports another).
pytest_plugins = ["tests.fakes.fixtures", "tests.support.world", "tests.support.browser", "tests.support.exchange"]

ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """The real Binance data the suite reads (never copied into the project)."""
    path = Path(os.environ.get("MUR_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
    if not (path / "BTCUSDT-1h.csv").is_file():
        pytest.exit(
            f"Real market data not found in {path}. Put the shared folder beside the project "
            f"or set MUR_SHARED_DATA to its data folder.",
            returncode=4,
        )
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data_dir()


@pytest.fixture
def on_postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail(
            "This test needs PostgreSQL: run it through the test command (scripts/test), which sets DATABASE_URL."
        )
    return connection


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct-horse-battery-staple")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def btc(db):
    """BTCUSDT, hourly, no candles (a module that needs them overrides this fixture)."""
    from tests.factories import AssetFactory

    return AssetFactory(symbol="BTCUSDT")


@pytest.fixture
def eth(db):
    from tests.factories import AssetFactory

    return AssetFactory(symbol="ETHUSDT")


@pytest.fixture
def folio(user):
    """alice's portfolio "Main", empty."""
    from portfolio.services import portfolio_create

    return portfolio_create(owner=user, name="Main")


class Clock:
    """core.clock moved by hand: `advance(seconds)` instead of sleeping through a window."""

    def __init__(self, start: float):
        self.seconds = start

    def now(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@pytest.fixture
def clock(monkeypatch):
    import time

    from core import clock as core_clock

    fake = Clock(time.time())
    monkeypatch.setattr(core_clock, "now", fake.now)
    return fake


@pytest.fixture
def fresh_cache():
    """Throttle and sign-in failure counts live in the cache: the test starts and ends with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_url():
    """The real Redis of the test command, emptied before and after the test."""
    import redis
    from django.conf import settings

    if not settings.REDIS_URL:
        pytest.fail("This test needs Redis: run it through the test command (scripts/test), which sets REDIS_URL.")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()  # no stale messages from an earlier run
    yield settings.REDIS_URL
    client.flushdb()
