"""Training runs: queued once per asset, claimed by one worker, trained, and finished exactly once
(succeeded with a registered version, or failed with the reason)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.broker import QueueUnavailableError, broker_require

from ..ml.config import TrainConfig
from ..ml.data import Series, SeriesError
from ..models import Asset, ModelVersion, TrainingRun
from ..selectors.market_data import candle_series
from .artifacts import ArtifactError
from .model_versions import ModelVersionError, model_version_register

# torch and Lightning (forecasting.ml.train) are imported inside the functions that train or load
# models: web processes import this module for admin actions, and forecast workers serving the
# statistical baseline, and neither should carry a deep-learning stack they never use.

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
ACTIVE = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def train_config(asset: Asset, **overrides) -> TrainConfig:
    config = TrainConfig(
        max_epochs=settings.TRAIN_MAX_EPOCHS, ensemble=settings.TRAIN_ENSEMBLE, threads=settings.TORCH_THREADS
    )
    return replace(config, **overrides)


def backtest_steps(series: Series) -> int:
    """Candles held out at the end of the training read for the backtest (BACKTEST_DAYS of them)."""
    return settings.BACKTEST_DAYS * DAY_MS // series.interval_ms


def training_run_request(*, asset: Asset, triggered_by: str) -> TrainingRun:
    """Queue a training of the asset, or return the one already queued or running.

    QueueUnavailableError (and no run) if the task queue cannot be reached: a run created then
    would wait as "queued" for a task that was never sent."""
    return _training_run_request(asset, triggered_by)[0]


@dataclass
class TrainingRunsRequested:
    queued: list[TrainingRun] = field(default_factory=list)  # new runs
    busy: list[TrainingRun] = field(default_factory=list)  # already queued or running, not queued again
    refused: QueueUnavailableError | None = None  # the queue went away: the assets after it were not asked


def training_runs_request(*, assets, triggered_by: str) -> TrainingRunsRequested:
    """training_run_request for each asset (admin's "Retrain now"), saying which runs are new; stops
    at the first asset the queue refuses."""
    result = TrainingRunsRequested()
    for asset in assets:
        try:
            run, created = _training_run_request(asset, triggered_by)
        except QueueUnavailableError as exc:
            result.refused = exc
            break
        (result.queued if created else result.busy).append(run)
    return result


def _training_run_request(asset: Asset, triggered_by: str) -> tuple[TrainingRun, bool]:
    with transaction.atomic():
        Asset.objects.select_for_update().get(id=asset.id)  # serialises requests for one asset
        active = TrainingRun.objects.filter(asset=asset, status__in=ACTIVE).first()
        if active is not None:
            active.asset = asset
            return active, False
        broker_require()
        run = TrainingRun.objects.create(asset=asset, triggered_by=triggered_by[:100])
        # Sent only once the run is committed, so the worker always finds it.
        transaction.on_commit(lambda: _training_run_send(run.id))
    return run, True


def _training_run_send(run_id: int) -> None:
    """Send the run's task; if the queue went away since the check, fail the run with the reason
    rather than leave it queued for a task that does not exist."""
    from ..tasks import training_run_task

    try:
        training_run_task.delay(run_id)
    except Exception as exc:  # kombu's OperationalError, or whatever the transport raises
        log.error("Could not queue training run %s: %s", run_id, exc)
        training_run_fail(
            run_id=run_id,
            error=f"The task queue is unavailable, the training was not queued: {exc}",
            only_if=TrainingRun.Status.QUEUED,
        )


def training_run_fail(*, run_id: int, error: str, only_if: str | None = None, now=None) -> bool:
    """The one way a run fails: finished now, with the reason. `only_if` a status: only a run still
    in it fails (a conditional update, so a run another process finished meanwhile is left alone).
    True if this call failed the run."""
    runs = TrainingRun.objects.filter(id=run_id)
    if only_if is not None:
        runs = runs.filter(status=only_if)
    else:
        runs = runs.filter(status__in=ACTIVE)
    return bool(runs.update(status=TrainingRun.Status.FAILED, finished_at=now or timezone.now(), error=error[:2000]))


def training_runs_reap(*, now=None) -> int:
    """Fail running trainings whose worker stopped sending heartbeats."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    error = f"The worker was lost: no heartbeat for {settings.TRAINING_HEARTBEAT_TIMEOUT} s."
    lost = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    count = sum(
        training_run_fail(run_id=run_id, error=error, only_if=TrainingRun.Status.RUNNING, now=now)
        for run_id in lost.values_list("id", flat=True)
    )
    if count:
        log.warning("Marked %s training run(s) as failed: worker lost", count)
    return count


def training_run_claim(*, run_id: int, worker: str = "") -> TrainingRun | None:
    """QUEUED → RUNNING with a conditional UPDATE; None if someone else has it or it is done.
    The database refuses a second running run of the same asset."""
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.QUEUED).update(
                status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
            )
    except IntegrityError:
        training_run_fail(
            run_id=run_id,
            error="Another training of this asset is already running.",
            only_if=TrainingRun.Status.QUEUED,
            now=now,
        )
        return None
    if not claimed:
        return None
    return TrainingRun.objects.select_related("asset").get(id=run_id)


def training_run_requeue(*, run_id: int) -> None:
    """Give a run back after a transient failure so a retry can claim it."""
    TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.RUNNING).update(
        status=TrainingRun.Status.QUEUED, started_at=None, heartbeat_at=None, epoch=0
    )


def _training_run_interrupted(*, run_id: int, error: str, retrying: bool) -> None:
    """The worker lost its database connection mid-run: give the run back for the retry that is
    coming, or, with no retry left, fail it (a run given back then would wait as "queued" for ever).
    If the database is still down this cannot be written either; the run then stays "running"
    without heartbeats and the reaper fails it."""
    from django.db import InterfaceError, OperationalError, connection

    connection.close()  # the broken one; the write below opens a new one
    try:
        if retrying:
            training_run_requeue(run_id=run_id)
        else:
            training_run_fail(run_id=run_id, error=error, only_if=TrainingRun.Status.RUNNING)
    except (OperationalError, InterfaceError):
        log.exception("Could not %s training run %s", "requeue" if retrying else "fail", run_id)


def training_run_execute(
    *,
    run_id: int,
    worker: str = "",
    config: TrainConfig | None = None,
    on_progress=None,
    attempt: int = 1,
    attempts: int = 1,
) -> ModelVersion | None:
    """Claim the run, train, register the version: the version, or None if the run was not queued
    any more or failed for a reason the data or the gate gives (written on the run).

    What any other failure means for the run is decided here too, and the error raised again for the
    caller: a lost database connection gives the run back while `attempt` < `attempts` (the caller
    retries) and fails it on the last attempt; anything else fails it."""
    from django.db import InterfaceError, OperationalError

    try:
        run = training_run_claim(run_id=run_id, worker=worker)
        if run is None:
            log.info("Training run %s is not queued any more; nothing to do", run_id)
            return None
        try:
            version = _train_and_register(run, config or train_config(run.asset), on_progress)
        except (SeriesError, ModelVersionError, ArtifactError, ValueError) as exc:
            training_run_fail(run_id=run.id, error=str(exc))
            log.warning("Training run %s failed: %s", run.id, exc)
            return None
    except (OperationalError, InterfaceError) as exc:
        _training_run_interrupted(
            run_id=run_id,
            retrying=attempt < attempts,
            error=f"The database connection was lost {attempts} time{'s' if attempts > 1 else ''}: {exc}",
        )
        raise
    except Exception as exc:
        training_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}", only_if=TrainingRun.Status.RUNNING)
        raise
    return version


def _train_and_register(run: TrainingRun, config: TrainConfig, on_progress=None) -> ModelVersion:
    from ..ml.train import split_points, train

    asset = run.asset
    series, digest = candle_series(asset=asset, days=settings.TRAIN_DAYS)
    _val_start, test_start = split_points(len(series), test_steps=backtest_steps(series), val_steps=config.val_steps)
    TrainingRun.objects.filter(id=run.id).update(max_epochs=config.max_epochs * config.ensemble)

    def progress(epoch: int, max_epochs: int) -> None:
        TrainingRun.objects.filter(id=run.id).update(epoch=epoch, max_epochs=max_epochs, heartbeat_at=timezone.now())
        if on_progress:
            on_progress(epoch, max_epochs)

    model = train(series, config, train_end=test_start, progress=progress)
    return model_version_register(run=run, model=model, series=series, digest=digest, test_start=test_start)
