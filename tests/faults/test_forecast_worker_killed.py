"""A forecast worker's pool process SIGKILLed in the middle of a forecast: nothing half-stored, the
champion untouched, and the task comes back (retry_on_worker_lost) to a new worker, which stores
the forecast exactly once. The same kill during training is tests/system/test_training_worker.py."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import redis

from forecasting.models import Forecast, ModelVersion, TrainingRun
from forecasting.services.model_versions import model_version_promote
from forecasting.services.training_runs import training_run_request
from forecasting.tasks import forecast_task
from tests.reliability import record
from tests.support.processes import child_pids, start_worker, stop, wait_for

from .conftest import TINY_TRAINING, backends, pg_admin, subprocess_env, tracked_with_candles

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def in_forecast(admin, app: str) -> bool:
    """The worker's pool process has begun the task: its connection has read the asset, its
    champion or the champion's artifact (torch and the model load after that, for seconds, with
    the artifact's read as the connection's last query)."""
    tables = ("forecasting_asset", "forecasting_modelversion", "forecasting_storedfile")
    return any(t in (query or "") for _, _, _, query in backends(admin, app) for t in tables)


def test_forecast_worker_killed_mid_task_stores_nothing_half_and_a_new_worker_stores_it_once(
    on_postgres, redis_url, data_dir, tmp_path, settings
):  # noqa: F811
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    btc = tracked_with_candles(data_dir, tmp_path / "klines", "BTCUSDT")
    logs = {name: tmp_path / f"{name}.log" for name in ("trainer", "first", "second")}

    # A champion, trained by a real worker (and promoted by staff if the gate kept it out).
    trainer = start_worker(subprocess_env(redis_url, media, **TINY_TRAINING), "train", "fault-trainer", logs["trainer"])
    try:
        run = training_run_request(asset=btc, triggered_by="test")
        wait_for(
            lambda: TrainingRun.objects.filter(id=run.id, status__in=["succeeded", "failed"]).exists(),
            180,
            "the champion's training",
            logs["trainer"],
        )
    finally:
        stop(trainer)
    champion = model_version_promote(version=ModelVersion.objects.get(training_run=run))
    # Only the forecast sent below is in the queue (promotion sends one too).
    redis.Redis.from_url(redis_url).delete("forecast")

    app = "mur-fault-forecaster"
    env = subprocess_env(redis_url, media, app=app)
    admin = pg_admin()
    first = start_worker(env, "forecast", "fault-forecaster-1", logs["first"])
    second = None
    try:
        wait_for(lambda: "ready." in logs["first"].read_text(), 60, "the first forecast worker", logs["first"])
        forecast_task.delay(btc.id)
        wait_for(lambda: in_forecast(admin, app), 60, "the forecast to start", logs["first"], interval=0.02)
        children = child_pids(first.pid)
        assert len(children) == 1, children
        os.kill(children[0], signal.SIGKILL)
        killed_at = time.monotonic()
        # Loading torch and the model takes seconds: the kill landed before anything was stored.
        assert not Forecast.objects.filter(asset=btc).exists()
        wait_for(lambda: "Retry in" in logs["first"].read_text(), 30, "the retry after the lost worker", logs["first"])
        # The first worker goes away; the retry it holds (due later) goes back to the queue.
        stop(first)
        second = start_worker(env, "forecast", "fault-forecaster-2", logs["second"])
        forecast = wait_for(
            lambda: Forecast.objects.filter(asset=btc).first(),
            90,
            "the second worker to store the forecast",
            logs["second"],
        )
        seconds_to_forecast = round(time.monotonic() - killed_at, 1)
        # The next scheduled forecast from the same candles finds it stored and adds nothing.
        forecast_task.delay(btc.id)
        wait_for(
            lambda: logs["second"].read_text().count("succeeded in") >= 2, 60, "the second forecast", logs["second"]
        )
    finally:
        stop(first)
        if second is not None:
            stop(second)
        admin.close()

    first_log = logs["first"].read_text()
    assert "signal 9" in first_log and "WorkerLostError" in first_log
    # The very task that was lost is the one the second worker completed.
    task_id = re.search(r"forecast_task\[([0-9a-f-]+)\] retry: Retry in \d+s: WorkerLostError", first_log).group(1)
    assert re.search(rf"forecast_task\[{task_id}\] succeeded", logs["second"].read_text())
    forecasts = Forecast.objects.filter(asset=btc)
    assert forecasts.count() == 1
    assert (forecast.kind, forecast.model_version_id, forecast.source) == ("model", champion.id, f"v{champion.version}")
    assert len(forecast.steps) == champion.hyperparameters["horizon"]
    assert all(len(step["values"]) == len(forecast.quantiles) for step in forecast.steps)
    # The champion is the same version, and still the only one.
    assert list(ModelVersion.objects.filter(asset=btc, status="champion").values_list("id", flat=True)) == [champion.id]
    record(
        "faults",
        "Forecast worker process SIGKILLed mid-forecast, task retried on a new worker",
        lost=1 - forecasts.count(),
        duplicated=max(0, forecasts.count() - 1),
        forecasts_after_kill=0,
        forecasts_at_end=forecasts.count(),
        forecast_steps=len(forecast.steps),
        seconds_from_kill_to_forecast=seconds_to_forecast,
        champion_unchanged=True,
    )
