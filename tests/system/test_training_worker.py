"""Training on real worker processes through Redis: a SIGKILL mid-training, and beat-driven
retraining and forecasting end to end."""

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pandas as pd
import pytest
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from forecasting.models import Forecast, ModelVersion, StoredFile, TrainingRun
from forecasting.services.market_data import asset_track, candles_import_file
from forecasting.services.model_versions import model_version_promote
from forecasting.services.schedules import forecast_task_name, retrain_task_name
from forecasting.services.training_runs import training_run_request, training_runs_reap
from tests.support.processes import (
    ROOT,
    child_pids,
    clean_env,
    database_url_for_subprocess,
    start_worker,
    stop,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def btc(data_dir, tmp_path):
    df = pd.read_csv(data_dir / "BTCUSDT-1h.csv", dtype=str).tail(365 * 24)
    path = tmp_path / "BTCUSDT-1h.csv"
    df.to_csv(path, index=False)
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    candles_import_file(asset=asset, path=path)
    return asset


def worker_env(redis_url, media, **extra):
    return clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.test",
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=redis_url,
        MUR_MEDIA_ROOT=str(media),
        MUR_TORCH_THREADS="1",
        **extra,
    )


def test_worker_killed_mid_training_leaves_no_version_and_the_champion_unchanged(
    on_postgres, redis_url, btc, tmp_path, settings
):  # noqa: F811
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    # A champion first, trained by a real worker.
    env = worker_env(redis_url, media, MUR_TRAIN_MAX_EPOCHS="200")
    log = tmp_path / "trainer.log"
    trainer = start_worker(env, "train", "trainer-test", log)
    try:
        first = training_run_request(asset=btc, triggered_by="test")
        wait_for(
            lambda: TrainingRun.objects.get(id=first.id).status in ("succeeded", "failed"),
            180,
            "the first training",
            log,
        )
        ModelVersion.objects.filter(asset=btc).update(status="retired")
        champ = ModelVersion.objects.get(asset=btc)
        ModelVersion.objects.filter(id=champ.id).update(status="champion", promoted_at=timezone.now())

        run = training_run_request(asset=btc, triggered_by="test")
        wait_for(lambda: TrainingRun.objects.get(id=run.id).epoch >= 1, 120, "training to start", log)
        # Kill the pool process that is training, as the kernel's OOM killer would.
        children = child_pids(trainer.pid)
        assert children, "the prefork worker has a pool process"
        for child in children:
            os.kill(child, signal.SIGKILL)
        run.refresh_from_db()
        assert run.status == TrainingRun.Status.RUNNING  # nobody has noticed yet
    finally:
        stop(trainer)
    # The reaper (a beat task every 5 minutes) fails runs whose heartbeat stopped.
    later = timezone.now() + timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT + 1)
    assert training_runs_reap(now=later) == 1
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "worker was lost" in run.error
    assert not ModelVersion.objects.filter(training_run=run).exists()
    assert ModelVersion.objects.get(status="champion") == champ
    # Every version that exists has its complete artifact; nothing else is stored, nothing on disk.
    assert list(StoredFile.objects.values_list("name", flat=True)) == [champ.artifact.name]
    assert not media.exists() or not any(media.rglob("*"))


def test_beat_schedules_training_and_forecasts_through_redis_and_real_workers(
    on_postgres, redis_url, btc, tmp_path, settings
):  # noqa: F811
    """The trainer and the forecast worker share nothing but PostgreSQL and Redis: each runs from
    its own working folder with its own media folder, as on two machines, and the trained model
    reaches the forecasts through the database."""
    folders = {name: tmp_path / name for name in ("worker", "trainer", "beat")}
    for folder in folders.values():
        (folder / "media").mkdir(parents=True)
    # Staff shorten the schedules in admin; here straight in the table beat reads.
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    for name in (retrain_task_name(btc), forecast_task_name(btc)):
        PeriodicTask.objects.filter(name=name).update(crontab=None, interval=every_2s)
    retrain = PeriodicTask.objects.get(name=retrain_task_name(btc))
    assert json.loads(retrain.kwargs) == {"asset_id": btc.id}

    env = {name: worker_env(redis_url, folder / "media") for name, folder in folders.items()}
    logs = {name: tmp_path / f"{name}.log" for name in ("worker", "trainer", "beat")}
    procs = [
        start_worker(env["worker"], "ingest,forecast", "worker-test", logs["worker"], cwd=folders["worker"]),
        start_worker(env["trainer"], "train", "trainer-test", logs["trainer"], cwd=folders["trainer"]),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "mur_site",
                "beat",
                "-l",
                "info",
                "-s",
                str(folders["beat"] / "beat-schedule"),
            ],
            cwd=folders["beat"],
            env={**env["beat"], "PYTHONPATH": str(ROOT)},
            stdout=logs["beat"].open("w"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        version = wait_for(
            lambda: ModelVersion.objects.filter(asset=btc, training_run__triggered_by="schedule").first(),
            240,
            "a scheduled training's version",
            logs["trainer"],
        )
        # A model of one year that does not beat the seasonal band is kept out by the gate: staff
        # promote it, and the forecast schedule then serves it.
        if version.status != ModelVersion.Status.CHAMPION:
            model_version_promote(version=version)
        wait_for(
            lambda: Forecast.objects.filter(asset=btc, kind="model").exists(),
            120,
            "a model forecast in PostgreSQL",
            logs["worker"],
        )
    finally:
        for p in procs:
            stop(p)
    beat_log = logs["beat"].read_text()
    assert "forecasting.tasks.asset_retrain_task" in beat_log
    runs = TrainingRun.objects.filter(asset=btc)
    assert runs.filter(triggered_by="schedule", status="succeeded").exists()
    champion = ModelVersion.objects.get(asset=btc, status="champion")
    forecast = Forecast.objects.filter(asset=btc, kind="model").order_by("made_at").first()
    assert forecast.model_version == champion and len(forecast.steps) == 24
    # Before the champion existed, the forecast schedule served the labelled baseline.
    assert Forecast.objects.filter(asset=btc, kind="baseline").exists()
    # The model went from trainer to worker through PostgreSQL: no file in either's folders.
    assert StoredFile.objects.filter(name=champion.artifact.name).exists()
    for name in ("worker", "trainer"):
        assert not any((folders[name] / "media").rglob("*")), name
