"""Redis (broker and cache) stopped under a running site: gunicorn keeps serving what PostgreSQL
holds, refuses what needs the queue with a clear answer and no half-made rows, and everything,
including a worker started before the outage, works again once Redis is back on the same port."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import pytest
import requests

from accounts.services import token_create
from forecasting.models import Candle, Forecast, TrainingRun
from forecasting.tasks import forecast_task
from mur_site.celery_app import app as celery_app
from portfolio.services import portfolio_create, transaction_create
from tests.reliability import record
from tests.support.processes import start_worker, stop, wait_for

from .conftest import (
    TINY_TRAINING,
    elapsed_since,
    start_gunicorn,
    subprocess_env,
    tracked_with_candles,
    worker_hostname,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-staple"


def csrf_from(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_redis_down_pages_and_reads_answer_queue_actions_refuse_cleanly_and_all_recovers(
    on_postgres, private_redis, fake_binance, data_dir, tmp_path, django_user_model
):
    media = tmp_path / "media"
    btc = tracked_with_candles(data_dir, tmp_path / "klines", "BTCUSDT")
    candles = Candle.objects.filter(asset=btc).count()
    newest = Candle.objects.filter(asset=btc).order_by("-open_time").first()
    staff = django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True, is_superuser=True)
    _, key = token_create(user=staff, name="fault test")
    portfolio = portfolio_create(owner=staff, name="Main")
    transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("0.5"),
        unit_price=newest.close,
        executed_at=newest.close_time,
    )

    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "web")}
    name = "fault-redis"
    worker = start_worker(
        subprocess_env(private_redis.url, media, **TINY_TRAINING), "forecast,train", name, logs["worker"]
    )
    web, base = start_gunicorn(
        subprocess_env(
            private_redis.url, media, MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS="0", MUR_BINANCE_API_URL=fake_binance.api_url
        ),
        logs["web"],
    )
    api = {"Authorization": f"Token {key}"}
    retrain_url = f"{base}/api/v1/assets/BTCUSDT/retrain/"
    try:
        wait_for(lambda: "ready." in logs["worker"].read_text(), 60, "the worker", logs["worker"])
        # The stored forecast, made by the worker through the private Redis.
        with celery_app.connection_for_write(private_redis.url) as conn:
            forecast_task.apply_async(args=[btc.id], connection=conn)
        forecast = wait_for(lambda: Forecast.objects.filter(asset=btc).first(), 90, "a stored forecast", logs["worker"])
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200

        browser = requests.Session()
        page = browser.get(f"{base}/accounts/login/", timeout=10)
        assert page.status_code == 200

        private_redis.stop()
        down_at = time.monotonic()

        # /healthz: 503, and it is the broker that is down.
        health = requests.get(f"{base}/healthz", timeout=10)
        body = health.json()
        assert health.status_code == 503 and body["status"] == "unhealthy"
        assert body["broker"]["ok"] is False and "connecting" in body["broker"]["error"]
        assert body["database"]["ok"] is True

        # Sign-in (sessions in PostgreSQL, CSRF cookie) and the pages with the stored data and its age.
        login = browser.post(
            f"{base}/accounts/login/",
            timeout=10,
            allow_redirects=False,
            data={"username": "staff", "password": PASSWORD, "csrfmiddlewaretoken": csrf_from(page.text)},
            headers={"Referer": f"{base}/accounts/login/"},
        )
        assert login.status_code == 302, login.text[:500]
        newest_text = f"{newest.open_time:%Y-%m-%d %H:%M} UTC"
        pages = {
            "dashboard": (f"{base}/portfolios/", ["Main"]),
            "portfolio": (
                f"{base}/portfolios/{portfolio.id}/",
                ['id="forecast-age"', f"{newest.close_time:%Y-%m-%d %H:%M}"],
            ),
            "asset": (
                f"{base}/assets/BTCUSDT/",
                [newest_text, 'id="forecast-made"', f"{forecast.origin_time:%Y-%m-%d %H:%M} UTC"],
            ),
        }
        for label, (url, expected) in pages.items():
            r = browser.get(url, timeout=20)
            assert r.status_code == 200, f"{label}: {r.status_code}"
            for text in expected:
                assert text in r.text, f"{label} page lacks {text!r}"

        # API reads (the throttle and the latest-forecast cache both live in Redis).
        r = requests.get(f"{base}/api/v1/assets/BTCUSDT/candles/", headers=api, params={"page_size": 1}, timeout=20)
        assert r.status_code == 200 and r.json()["count"] == candles
        r = requests.get(f"{base}/api/v1/assets/BTCUSDT/forecasts/latest/", headers=api, timeout=20)
        assert r.status_code == 200
        latest = r.json()
        assert latest["made_at"] and latest["origin_time"].startswith(f"{forecast.origin_time:%Y-%m-%dT%H:%M}")
        assert len(latest["steps"]) == len(forecast.steps)
        # Anonymous and CSRF-less requests still get their 4xx, not a 500.
        assert requests.get(f"{base}/api/v1/assets/", timeout=10).status_code == 401
        no_csrf = browser.post(retrain_url, timeout=10)
        assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "permission_denied"

        # What needs the queue: the API answers 503 with the error body, admin says so; no run is made.
        r = requests.post(retrain_url, headers=api, timeout=20)
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["status"] == 503 and error["code"] == "queue_unavailable"
        assert "task queue is unavailable" in error["message"] and "nothing was queued" in error["message"]
        changelist = browser.get(f"{base}/admin/forecasting/asset/", timeout=20)
        assert changelist.status_code == 200
        action = browser.post(
            f"{base}/admin/forecasting/asset/",
            timeout=20,
            data={
                "action": "retrain_now",
                "_selected_action": [str(btc.id)],
                "index": "0",
                "csrfmiddlewaretoken": csrf_from(changelist.text),
            },
            headers={"Referer": changelist.url},
        )
        assert action.status_code == 200 and "The task queue is unavailable" in action.text
        assert "Queued training" not in action.text
        assert not TrainingRun.objects.exists()
        # Tracking a new pair with a transaction: saved, and its first refresh left to the schedule
        # (the immediate one cannot be queued) instead of a 500 after the commit.
        form = browser.get(f"{base}/portfolios/{portfolio.id}/transactions/add/", timeout=20)
        added = browser.post(
            form.url,
            timeout=20,
            data={
                "symbol": "ETHUSDT",
                "track": "on",
                "kind": "buy",
                "quantity": "2",
                "unit_price": "1500",
                "fee": "0",
                "executed_at": f"{newest.close_time:%Y-%m-%dT%H:%M:%S}",
                "csrfmiddlewaretoken": csrf_from(form.text),
            },
            headers={"Referer": form.url},
        )
        assert added.status_code == 200 and added.url.endswith(f"/portfolios/{portfolio.id}/"), added.status_code
        assert "Now tracking ETHUSDT" in added.text
        assert portfolio.transactions.filter(asset__symbol="ETHUSDT", asset__tracked=True).count() == 1
        logout = browser.post(
            f"{base}/accounts/logout/",
            timeout=10,
            allow_redirects=False,
            data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Referer": f"{base}/portfolios/"},
        )
        assert logout.status_code == 302
        down_seconds = elapsed_since(down_at)

        # Redis back on the same port: no restart of the web or the worker.
        private_redis.start()
        back_at = time.monotonic()
        wait_for(
            lambda: requests.get(f"{base}/healthz", timeout=10).status_code == 200,
            30,
            "/healthz to recover",
            logs["web"],
        )
        r = requests.post(retrain_url, headers=api, timeout=20)
        assert r.status_code == 202, r.text
        run_id = r.json()["id"]
        run = wait_for(
            lambda: TrainingRun.objects.filter(id=run_id, status__in=["succeeded", "failed"]).first(),
            120,
            "the worker started before the outage to train",
            logs["worker"],
        )
        recovered_seconds = elapsed_since(back_at)
    finally:
        stop(web)
        stop(worker)
    assert run.status == "succeeded", run.error
    assert run.worker == worker_hostname(name)
    worker_log = logs["worker"].read_text()
    assert "Connection to broker lost" in worker_log
    # Exactly the one run asked for after the outage; the stored rows are all still there.
    assert list(TrainingRun.objects.values_list("id", flat=True)) == [run_id]
    assert Candle.objects.filter(asset=btc).count() == candles
    assert Forecast.objects.filter(id=forecast.id).exists()
    record(
        "faults",
        "Redis stopped while the site runs, then restarted on the same port",
        lost=candles - Candle.objects.filter(asset=btc).count(),
        duplicated=TrainingRun.objects.count() - 1,
        pages_answered_200=len(pages),
        api_reads_answered_200=2,
        transactions=portfolio.transactions.count(),
        healthz_status_while_down=health.status_code,
        retrain_status_while_down=503,
        training_runs_made_while_down=0,
        seconds_redis_was_down=down_seconds,
        seconds_to_train_after_restart=recovered_seconds,
        health_body=json.dumps(body["broker"]),
    )
