"""Fixtures for the fault-injection tests: a private Redis that can be stopped, the web tier under
gunicorn, and a way to cut one process's PostgreSQL connections."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import redis

from forecasting.services.market_data import asset_track, candles_import_file
from tests.support.processes import ROOT, clean_env, database_url_for_subprocess, free_port, wait_for

# A training small enough for a few seconds on one thread: 50 days of hourly candles (30 of them
# for validation), a 3-day backtest, two epochs.
TINY_TRAINING = {"MUR_TRAIN_DAYS": "50", "MUR_BACKTEST_DAYS": "3", "MUR_TRAIN_MAX_EPOCHS": "2"}
TINY_CANDLES = 50 * 24 + 100


class PrivateRedis:
    """A redis-server of this test's own on a free port, stopped and restarted on the same port.
    Append-only file, as in docker-compose: queued tasks survive a restart."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.log = folder / "redis.log"

    def start(self) -> PrivateRedis:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)

        def ready():
            try:
                return client.ping()
            except redis.RedisError:
                return False

        wait_for(ready, 20, f"redis-server on port {self.port}", self.log, interval=0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis").start()
    yield server
    server.stop()


def subprocess_env(redis_url: str, media: Path, *, app: str | None = None, **extra: str) -> dict[str, str]:
    """Settings of a child process on the test database; `app` becomes its PostgreSQL
    application_name so that the test can find (and cut) exactly its connections."""
    db = database_url_for_subprocess()
    if app:
        db += f"?application_name={app}"
    return clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.test",
        DATABASE_URL=db,
        REDIS_URL=redis_url,
        MUR_MEDIA_ROOT=str(media),
        MUR_TORCH_THREADS="1",
        **extra,
    )


def http(
    method: str, url: str, *, headers: dict | None = None, data: bytes | None = None, timeout: float = 20
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def start_gunicorn(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """The web tier as docker-compose runs it (gunicorn), on a free port; returns (process, base URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "mur_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            "2",
            "--timeout",
            "60",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return http("GET", f"{base}/healthz", timeout=5)[0]
        except OSError:
            return None

    wait_for(answers, 60, "gunicorn", log)
    return proc, base


# --- PostgreSQL ---------------------------------------------------------------------------------


def pg_admin() -> psycopg.Connection:
    """A connection of the test's own, outside Django (autocommit), to watch and cut others'."""
    from django.db import connection

    s = connection.settings_dict
    return psycopg.connect(
        host=s.get("HOST") or "127.0.0.1",
        port=s.get("PORT") or 5432,
        user=s.get("USER") or "postgres",
        password=s.get("PASSWORD") or None,
        dbname=s["NAME"],
        autocommit=True,
    )


def backends(conn: psycopg.Connection, app: str) -> list[tuple]:
    """(pid, state, wait_event_type, query) of every backend of the test database named `app`."""
    return conn.execute(
        "SELECT pid, state, wait_event_type, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s",
        [app],
    ).fetchall()


def terminate(conn: psycopg.Connection, app: str) -> int:
    """pg_terminate_backend on `app`'s connections to this test database only (never anyone else's)."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()",
        [app],
    ).fetchall()
    return sum(1 for (ok,) in rows if ok)


# --- data ---------------------------------------------------------------------------------------


def tail_file(data_dir: Path, folder: Path, symbol: str, rows: int) -> Path:
    """The newest `rows` real candles of a pair as a kline file in a temp folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}-1h.csv"
    pd.read_csv(data_dir / f"{symbol}-1h.csv", dtype=str).tail(rows).to_csv(path, index=False)
    return path


def tracked_with_candles(data_dir: Path, folder: Path, symbol: str, rows: int = TINY_CANDLES):
    path = tail_file(data_dir, folder, symbol, rows)
    base = symbol.removesuffix("USDT")
    asset = asset_track(symbol=symbol, interval="1h", base_asset=base, quote_asset="USDT")
    candles_import_file(asset=asset, path=path)
    return asset


def worker_hostname(name: str) -> str:
    return f"{name}@{os.uname().nodename}"


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 2)
