"""Two trainer processes on one Redis train queue: a retrain tick sent the way beat sends it (the
periodic task's own task name, kwargs and queue), even delivered twice, trains every tracked asset
exactly once, and both trainers share the work."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from django_celery_beat.models import PeriodicTask

from forecasting.models import ModelVersion, TrainingRun
from forecasting.services.schedules import retrain_task_name
from mur_site.celery_app import app as celery_app
from tests.reliability import record
from tests.support.processes import start_worker, stop, wait_for

from .conftest import TINY_TRAINING, subprocess_env, tracked_with_candles, worker_hostname

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def beat_tick(assets) -> None:
    """What beat does when the retrain schedules fall due: send each periodic task as stored."""
    for asset in assets:
        task = PeriodicTask.objects.get(name=retrain_task_name(asset))
        celery_app.send_task(task.task, kwargs=json.loads(task.kwargs), queue=task.queue)


def test_two_trainers_train_each_asset_once_per_tick_and_share_the_work(
    on_postgres, redis_url, data_dir, tmp_path, settings
):  # noqa: F811
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    assets = [tracked_with_candles(data_dir, tmp_path / "klines", symbol) for symbol in SYMBOLS]
    env = subprocess_env(redis_url, media, **TINY_TRAINING)
    names = ("fault-trainer-a", "fault-trainer-b")
    logs = {name: tmp_path / f"{name}.log" for name in (*names, "scheduler")}
    procs = [start_worker(env, "train", name, logs[name]) for name in names]
    # asset_retrain_task runs on the forecast queue; it only queues the run.
    procs.append(start_worker(env, "forecast", "fault-scheduler", logs["scheduler"]))
    try:
        for name in (*names, "scheduler"):
            wait_for(lambda: "ready." in logs[name].read_text(), 60, f"worker {name}", logs[name])  # noqa: B023
        started = time.monotonic()
        beat_tick(assets)
        beat_tick(assets)  # the same tick delivered twice (e.g. a redelivered message) adds nothing
        wait_for(
            lambda: TrainingRun.objects.filter(status__in=["succeeded", "failed"]).count() >= len(assets),
            240,
            "every asset's training",
            logs[names[0]],
        )
        seconds = round(time.monotonic() - started, 1)
        # Nothing else arrives late: the scheduler worker has handled all six ticks.
        wait_for(
            lambda: logs["scheduler"].read_text().count("asset_retrain_task") >= 12,
            30,
            "the six retrain ticks",
            logs["scheduler"],
        )
    finally:
        for proc in procs:
            stop(proc)

    runs = list(TrainingRun.objects.select_related("asset"))
    per_asset = Counter(run.asset.symbol for run in runs)
    assert per_asset == dict.fromkeys(SYMBOLS, 1)
    assert all(run.status == "succeeded" and run.triggered_by == "schedule" for run in runs), [
        (r.asset.symbol, r.status, r.error) for r in runs
    ]
    by_worker = Counter(run.worker for run in runs)
    assert set(by_worker) == {worker_hostname(name) for name in names}, by_worker
    # One model version per run, each from its own asset's run.
    assert sorted(ModelVersion.objects.values_list("training_run_id", flat=True)) == sorted(r.id for r in runs)
    record(
        "faults",
        "Two trainer workers on one Redis queue, a retrain tick delivered twice for three assets",
        lost=sum(1 for s in SYMBOLS if per_asset[s] == 0),
        duplicated=sum(n - 1 for n in per_asset.values()),
        assets=len(SYMBOLS),
        ticks_sent=2 * len(SYMBOLS),
        training_runs=len(runs),
        runs_per_worker=dict(by_worker),
        seconds_for_all_trainings=seconds,
    )
