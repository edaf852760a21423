"""The training task on a lost database connection: the run goes back to the queue while a retry is
coming, and fails with the reason when none is left (one rule, in the training-runs service)."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from forecasting import tasks
from forecasting.models import Asset, TrainingRun
from forecasting.services.training_runs import training_run_fail, training_runs_reap

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    asset = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    return TrainingRun.objects.create(asset=asset, triggered_by="test")


def _lose_connection(run, *args):
    # Mid-training, after the claim: the run is running and has made progress.
    TrainingRun.objects.filter(id=run.id).update(epoch=3)
    raise OperationalError("server closed the connection unexpectedly")


TRAINING = "forecasting.services.training_runs._train_and_register"


@pytest.mark.django_db(transaction=True)  # the task closes its connection, as a worker does
def test_a_lost_connection_with_retries_left_gives_the_run_back(run, settings):
    settings.TRAINING_RETRY_SECONDS = 60
    with (
        mock.patch(TRAINING, _lose_connection),
        mock.patch.object(tasks.training_run_task, "retry", side_effect=RuntimeError("retry sent")) as retry,
    ):
        result = tasks.training_run_task.apply(args=[run.id], retries=1)
    assert isinstance(result.result, RuntimeError) and retry.call_args.kwargs["countdown"] == 60
    run.refresh_from_db()
    assert (run.status, run.started_at, run.epoch, run.error) == (TrainingRun.Status.QUEUED, None, 0, "")


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_on_the_last_attempt_fails_the_run_with_the_reason(run):
    with mock.patch(TRAINING, _lose_connection):
        result = tasks.training_run_task.apply(args=[run.id], retries=tasks.training_run_task.max_retries)
    assert isinstance(result.result, OperationalError)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.finished_at is not None
    assert run.error.startswith("The database connection was lost 4 times: server closed the connection")


def test_any_other_error_fails_a_running_run_but_never_a_finished_one(run):
    with mock.patch(TRAINING, side_effect=MemoryError("out")):
        result = tasks.training_run_task.apply(args=[run.id])
    assert isinstance(result.result, MemoryError)  # raised again: the worker logs it
    run.refresh_from_db()
    assert (run.status, run.error) == (TrainingRun.Status.FAILED, "MemoryError: out")
    # A finished run keeps its outcome: failing it again changes nothing.
    assert not training_run_fail(run_id=run.id, error="again")
    run.refresh_from_db()
    assert run.error == "MemoryError: out"


@pytest.mark.django_db(transaction=True)
def test_the_train_asset_command_fails_the_run_it_could_not_finish(run):
    """The command has no retry: a lost connection fails its run at once, by the same service."""
    from forecasting.services.training_runs import training_run_execute

    with mock.patch(TRAINING, _lose_connection), pytest.raises(OperationalError):
        training_run_execute(run_id=run.id, worker="command")
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED
    assert run.error.startswith("The database connection was lost 1 time: server closed")


def test_the_reaper_fails_only_runs_whose_heartbeat_stopped(run, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT = 60
    fresh = TrainingRun.objects.create(
        asset=Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h"),
        status=TrainingRun.Status.RUNNING,
        heartbeat_at=timezone.now(),
    )
    TrainingRun.objects.filter(id=run.id).update(
        status=TrainingRun.Status.RUNNING, heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert training_runs_reap() == 1
    run.refresh_from_db()
    fresh.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and run.error == "The worker was lost: no heartbeat for 60 s."
    assert fresh.status == TrainingRun.Status.RUNNING
