"""GET /healthz against the real database and broker of the run, and with each of them down."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import timezone

from forecasting.intervals import interval_delta
from forecasting.models import Asset, Candle
from mur_site.celery_app import app as celery_app

pytestmark = pytest.mark.django_db


def asset_with_newest_close(symbol: str, *, interval: str = "1h", age: timedelta | None, tracked: bool = True) -> Asset:
    """An asset whose newest candle closed `age` ago (None: no candle at all)."""
    asset = Asset.objects.create(
        symbol=symbol, base_asset=symbol[:-4], quote_asset="USDT", interval=interval, tracked=tracked
    )
    if age is not None:
        step = interval_delta(interval)
        close_time = timezone.now() - age
        open_time = close_time - step + timedelta(milliseconds=1)
        for k in range(3):  # a short history; only the newest candle counts
            Candle.objects.create(
                asset=asset,
                interval=interval,
                open_time=open_time - k * step,
                close_time=close_time - k * step,
                open=Decimal(10),
                high=Decimal(11),
                low=Decimal(9),
                close=Decimal(10),
                volume=Decimal(1),
            )
    return asset


@pytest.fixture
def max_age(settings):
    settings.HEALTH_MAX_CANDLE_AGE_INTERVALS = 3
    return settings


def test_healthy(client, max_age):
    asset_with_newest_close("BTCUSDT", age=timedelta(minutes=10))
    # A daily asset is judged by its own interval: 30 hours is within 3 days.
    asset_with_newest_close("ETHUSDT", interval="1d", age=timedelta(hours=30))
    # Untracked assets are not refreshed, so their age does not matter.
    asset_with_newest_close("OLDUSDT", age=timedelta(days=400), tracked=False)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "vendor": connections["default"].vendor}
    assert body["broker"]["ok"] is True
    assert body["broker"]["transport"] == ("redis" if celery_app.conf.broker_url.startswith("redis") else "filesystem")
    candles = {c["symbol"]: c for c in body["candles"]}
    assert set(candles) == {"BTCUSDT", "ETHUSDT"}
    assert candles["BTCUSDT"]["interval"] == "1h"
    assert candles["BTCUSDT"]["stale"] is False
    assert 600 <= candles["BTCUSDT"]["age_seconds"] < 660
    assert candles["ETHUSDT"]["stale"] is False
    assert 30 * 3600 <= candles["ETHUSDT"]["age_seconds"] < 30 * 3600 + 60
    newest = Candle.objects.filter(asset__symbol="BTCUSDT").order_by("-open_time").first()
    assert candles["BTCUSDT"]["newest_close"] == newest.close_time.isoformat()


def test_head_request_is_answered(client, max_age):
    # Load balancers often probe with HEAD.
    assert client.head("/healthz").status_code == 200


def test_broker_down_is_503(client, max_age, monkeypatch):
    asset_with_newest_close("BTCUSDT", age=timedelta(minutes=10))
    # Nothing listens on port 1. The Celery app read its settings at import, so point it there directly.
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["broker"]["ok"] is False
    assert "127.0.0.1:1" in body["broker"]["error"]
    assert body["database"]["ok"] is True
    assert body["candles"][0]["stale"] is False


def test_filesystem_broker_without_its_folders_is_503(client, max_age, monkeypatch, tmp_path):
    # Connecting to kombu's filesystem transport always succeeds; publishing needs the folders.
    missing = str(tmp_path / "missing")
    monkeypatch.setitem(celery_app.conf, "broker_url", "filesystem://")
    monkeypatch.setitem(
        celery_app.conf, "broker_transport_options", {"data_folder_in": missing, "data_folder_out": missing}
    )

    response = client.get("/healthz")

    assert response.status_code == 503
    broker = response.json()["broker"]
    assert broker["ok"] is False
    assert missing in broker["error"]

    (tmp_path / "missing").mkdir()
    assert client.get("/healthz").json()["broker"] == {"ok": True, "transport": "filesystem"}


def test_database_down_is_503(client, max_age, tmp_path):
    # A second connection to the same database with an address where nothing answers: the driver
    # really fails to connect (the test database itself stays untouched for the other tests).
    healthy = connections["default"]
    broken_settings = dict(healthy.settings_dict)
    if healthy.vendor == "sqlite":
        broken_settings["NAME"] = str(tmp_path / "no-such-folder" / "db.sqlite3")
    else:
        broken_settings.update(HOST="127.0.0.1", PORT=1)
    broken = type(healthy)(broken_settings, alias="default")
    connections["default"] = broken
    try:
        response = client.get("/healthz")
    finally:
        connections["default"] = healthy
        broken.close()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"]["ok"] is False
    # The driver's own message, so the check really tried to connect.
    expected = "unable to open database file" if healthy.vendor == "sqlite" else "port 1 failed"
    assert expected in body["database"]["error"]
    assert body["broker"]["ok"] is True
    assert body["candles"] == []


def test_stale_candles_are_503(client, max_age):
    asset_with_newest_close("BTCUSDT", age=timedelta(minutes=10))
    asset_with_newest_close("ETHUSDT", age=timedelta(hours=3, minutes=5))  # 3 intervals allowed

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    stale = {c["symbol"]: c["stale"] for c in body["candles"]}
    assert stale == {"BTCUSDT": False, "ETHUSDT": True}


def test_tracked_asset_without_candles_is_503(client, max_age):
    asset_with_newest_close("BTCUSDT", age=None)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["candles"] == [
        {"symbol": "BTCUSDT", "interval": "1h", "newest_close": None, "age_seconds": None, "stale": True}
    ]


def test_candle_age_check_turned_off(client, settings):
    settings.HEALTH_MAX_CANDLE_AGE_INTERVALS = 0
    asset_with_newest_close("BTCUSDT", age=timedelta(days=900))
    asset_with_newest_close("ETHUSDT", age=None)

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    candles = {c["symbol"]: c for c in body["candles"]}
    assert candles["BTCUSDT"]["stale"] is False
    assert candles["BTCUSDT"]["age_seconds"] >= 900 * 86400
    assert candles["ETHUSDT"]["stale"] is False
