"""PostgreSQL connections cut (pg_terminate_backend) in the middle of a CSV import run by the
management command and of a training on a real Celery worker. To cut them at a known point, the
test holds a row lock the process is about to need, waits until its backend waits on that lock,
and terminates exactly that backend (found by application_name, in this test database only)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from forecasting.models import Asset, Candle, ModelVersion, StoredFile, TrainingRun
from forecasting.services.market_data import asset_track, read_klines_csv
from forecasting.services.training_runs import training_run_request
from tests.reliability import record
from tests.support.processes import ROOT, start_worker, stop, wait_for

from .conftest import (
    TINY_TRAINING,
    backends,
    elapsed_since,
    pg_admin,
    subprocess_env,
    terminate,
    tracked_with_candles,
    worker_hostname,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def blocked_on_lock(admin, app: str, query_start: str):
    """The backend of `app` waiting for a lock in a statement starting with `query_start`."""
    for pid, _state, wait_type, query in backends(admin, app):
        if wait_type == "Lock" and query.lstrip().upper().startswith(query_start):
            return pid
    return None


def test_connection_cut_mid_import_rolls_the_whole_file_back_and_a_rerun_imports_it_exactly(
    on_postgres, data_dir, tmp_path
):
    # The whole real BTCUSDT 1h history (45,000 candles, nine batches of 5,000) as a file in tmp.
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_bytes((data_dir / "BTCUSDT-1h.csv").read_bytes())
    klines = read_klines_csv(path, interval="1h")
    btc = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    app = "mur-fault-import"
    env = subprocess_env("", tmp_path / "media", app=app)
    command = [sys.executable, "manage.py", "import_candles", str(path)]

    admin, blocker = pg_admin(), pg_admin()
    blocker.autocommit = False
    # An uncommitted copy of the candle that opens batch five: the import's fifth INSERT waits on
    # it, with four batches (20,000 candles) already written in the import's transaction.
    k = klines[20_000]
    blocker.execute(
        f"INSERT INTO {Candle._meta.db_table} "
        "(asset_id, interval, open_time, close_time, open, high, low, close, volume) "
        "VALUES (%s, '1h', %s, %s, %s, %s, %s, %s, %s)",
        [btc.id, k.open_dt, k.close_dt, k.open, k.high, k.low, k.close, k.volume],
    )
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = wait_for(lambda: blocked_on_lock(admin, app, "INSERT"), 120, "the import to reach batch five")
        assert terminate(admin, app) == 1
    finally:
        blocker.rollback()
        blocker.close()
    out, err = proc.communicate(timeout=60)

    assert proc.returncode != 0
    assert "CommandError: " in err and "the database connection failed during the import" in err
    assert "nothing from this file was stored" in err and "Traceback" not in err
    # The four batches written before the cut went with the transaction.
    assert Candle.objects.filter(asset=btc).count() == 0

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)

    assert rerun.returncode == 0, rerun.stderr
    assert f"{path.name}: {len(klines)} new, 0 updated, 0 unchanged candles." in rerun.stdout
    stored = Candle.objects.filter(asset=btc)
    assert stored.count() == len(klines) == stored.values("open_time").distinct().count()
    assert list(stored.order_by("open_time").values_list("open_time", flat=True)) == [k.open_dt for k in klines]
    assert Asset.objects.count() == 1
    admin.close()
    record(
        "faults",
        "PostgreSQL connection terminated in the middle of a CSV import (management command)",
        lost=len(klines) - stored.count(),
        duplicated=stored.count() - stored.values("open_time").distinct().count(),
        rows_in_file=len(klines),
        rows_written_before_cut=20_000,
        rows_after_cut=0,
        rows_after_rerun=stored.count(),
        backend_pid_terminated=pid,
    )


# Where the connection is cut: (row the test locks, statement that then waits, what it must contain).
CUT_POINTS = {
    # A heartbeat after an epoch: mid-training.
    "heartbeat": (TrainingRun, "UPDATE", ['"epoch"', '"heartbeat_at"']),
    # Recording the version, after the artifact was written: the file must not stay behind.
    "registration": (Asset, "SELECT", ["FOR UPDATE"]),
}


@pytest.mark.parametrize("cut", list(CUT_POINTS))
def test_connection_cut_mid_training_gives_the_run_back_and_the_retry_completes_it(
    on_postgres, redis_url, data_dir, tmp_path, settings, cut
):  # noqa: F811
    model, statement, says = CUT_POINTS[cut]
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    btc = tracked_with_candles(data_dir, tmp_path / "klines", "BTCUSDT")
    app = "mur-fault-trainer"
    name = "fault-trainer"
    log = tmp_path / "trainer.log"
    # Five epochs: several heartbeats, one of which the test makes wait on its lock.
    env = subprocess_env(
        redis_url, media, app=app, **{**TINY_TRAINING, "MUR_TRAIN_MAX_EPOCHS": "5"}, MUR_TRAINING_RETRY_SECONDS="2"
    )
    admin, blocker = pg_admin(), pg_admin()
    blocker.autocommit = False
    worker = start_worker(env, "train", name, log)
    try:
        run = training_run_request(asset=btc, triggered_by="test")
        # Training has started once max_epochs is written; then hold the row the worker needs next,
        # and cut its connection while it waits for it.
        wait_for(
            lambda: TrainingRun.objects.filter(id=run.id, status="running", max_epochs__gt=0).exists(),
            120,
            "training to start",
            log,
            interval=0.05,
        )
        row = run.id if model is TrainingRun else btc.id
        blocker.execute(f"SELECT 1 FROM {model._meta.db_table} WHERE id = %s FOR UPDATE", [row])
        pid = wait_for(lambda: blocked_on_lock(admin, app, statement), 120, f"the {cut} to wait on the lock", log)
        query = next(q for p, _, _, q in backends(admin, app) if p == pid)
        assert model._meta.db_table in query and all(text in query for text in says), query
        assert terminate(admin, app) >= 1
        blocker.rollback()
        cut_at = time.monotonic()
        final = wait_for(
            lambda: TrainingRun.objects.filter(id=run.id, status__in=["succeeded", "failed"]).first(),
            180,
            "the retried training to finish",
            log,
        )
        seconds_to_finish = elapsed_since(cut_at)
    finally:
        blocker.close()
        stop(worker)
        admin.close()
    text = log.read_text()
    assert "Retry in 2s" in text  # given back and retried, not left running
    assert final.status == "succeeded", final.error
    assert final.worker == worker_hostname(name) and final.epoch >= 1
    # One run, one version; its artifact is the only one stored (nothing orphaned or half-written),
    # and nothing was written to disk.
    assert TrainingRun.objects.count() == 1
    version = ModelVersion.objects.get(asset=btc)
    assert version.training_run_id == run.id
    files = sorted(StoredFile.objects.values_list("name", flat=True))
    assert files == [version.artifact.name]
    assert not any(p.is_file() for p in media.rglob("*"))
    record(
        "faults",
        f"PostgreSQL connection terminated during a training's {cut} on a Celery worker",
        lost=0,
        duplicated=TrainingRun.objects.count() - 1 + ModelVersion.objects.count() - 1,
        training_runs=TrainingRun.objects.count(),
        model_versions=ModelVersion.objects.count(),
        artifact_files=len(files),
        retry_seconds=2,
        seconds_from_cut_to_finished=seconds_to_finish,
    )


def test_the_web_tier_keeps_its_connection_and_survives_losing_it(on_postgres, private_redis, tmp_path):
    """gunicorn keeps its PostgreSQL connection across requests (a new one per request made
    PostgreSQL spend as much CPU as gunicorn under load), and a kept connection that the server
    dropped is noticed before use: the next request answers as before, on a new connection."""
    import requests

    from .conftest import start_gunicorn

    app = "web-kept"
    web, base = start_gunicorn(
        subprocess_env(private_redis.url, tmp_path / "media", app=app, MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS="0"),
        tmp_path / "web.log",
    )
    admin = pg_admin()
    try:

        def answer():
            r = requests.get(f"{base}/healthz", timeout=10)
            assert r.json()["database"]["ok"], r.text
            return r.status_code

        first = answer()
        kept = {pid for pid, *_ in backends(admin, app)}
        assert kept, "no connection outlived its request"
        for _ in range(10):
            assert answer() == first
        # The same ones, plus at most one for gunicorn's second thread (conftest: 2 threads).
        now = {pid for pid, *_ in backends(admin, app)}
        assert kept <= now and len(now) <= 2, (kept, now)
        kept = now
        assert terminate(admin, app) == len(kept)
        wait_for(lambda: not backends(admin, app), 10, "the dropped connections to go", tmp_path / "web.log")
        for _ in range(4):
            assert answer() == first  # no 500: the dropped connection was checked and replaced
        renewed = {pid for pid, *_ in backends(admin, app)}
        assert renewed and not renewed & kept
    finally:
        admin.close()
        stop(web)
