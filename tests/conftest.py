"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.fixtures"]

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


def database_url_for_subprocess() -> str:
    """DATABASE_URL that points a child process (worker, server) at the test database."""
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    user = s.get("USER") or "postgres"
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


@pytest.fixture
def on_postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.fail("This test needs PostgreSQL: run it through the test command (scripts/test), which sets DATABASE_URL.")
    return connection


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(username="alice", password="correct-horse-battery-staple")
