"""Training, the promotion gate, model artifacts and forecasts.

A version is created only once its artifact is complete and checksummed; it serves only if it
beats the current champion and the statistical baseline (the seasonal band) on the same backtest.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.broker import broker_require

from ..intervals import interval_ms
from ..ml.config import TrainConfig
from ..klines import ms_to_datetime
from ..ml.data import Series, SeriesError
from ..models import Asset, Candle, Forecast, ModelVersion, TrainingRun

if TYPE_CHECKING:
    from ..ml.train import TrainedModel

# torch and Lightning (forecasting.ml.train) are imported inside the functions that train or load
# models: web processes import this module for admin actions, and forecast workers serving the
# statistical baseline, and neither should carry a deep-learning stack they never use.

log = logging.getLogger(__name__)

DAY_MS = 86_400_000


class ArtifactError(Exception):
    """A model artifact is missing or does not match its checksum."""


class TrainingError(Exception):
    """Training cannot run as asked; the message says why."""


# --- data -----------------------------------------------------------------------------------------


def candle_series(*, asset: Asset, days: int | None = None, limit: int | None = None,
                  since=None) -> tuple[Series, str]:
    """The newest candles of an asset as a Series, and a sha256 digest of exactly those candles."""
    qs = Candle.objects.filter(asset=asset, interval=asset.interval)
    newest = qs.order_by("-open_time").values_list("open_time", flat=True).first()
    if newest is None:
        raise SeriesError(f"{asset.symbol} has no candles yet")
    if days is not None:
        qs = qs.filter(open_time__gt=newest - timedelta(days=days))
    if since is not None:
        qs = qs.filter(open_time__gte=since)
    if limit is not None:
        first = qs.order_by("-open_time").values_list("open_time", flat=True)[limit - 1:limit].first()
        if first is not None:
            qs = qs.filter(open_time__gte=first)
    rows = list(qs.order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume"))
    digest = hashlib.sha256()
    for r in rows:
        digest.update(f"{int(r[0].timestamp() * 1000)},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n".encode())
    cols = list(zip(*rows))
    series = Series.from_arrays(
        times=[int(t.timestamp() * 1000) for t in cols[0]], open=[float(v) for v in cols[1]],
        high=[float(v) for v in cols[2]], low=[float(v) for v in cols[3]], close=[float(v) for v in cols[4]],
        volume=[float(v) for v in cols[5]], interval_ms=interval_ms(asset.interval),
    )
    return series, digest.hexdigest()


def train_config(asset: Asset, **overrides) -> TrainConfig:
    return replace(TrainConfig(max_epochs=settings.TRAIN_MAX_EPOCHS, threads=settings.TORCH_THREADS), **overrides)


def backtest_steps(series: Series) -> int:
    """Candles held out at the end of the training read for the backtest (BACKTEST_DAYS of them)."""
    return settings.BACKTEST_DAYS * DAY_MS // series.interval_ms


# --- artifacts ------------------------------------------------------------------------------------


def artifact_write(*, asset: Asset, data: bytes) -> tuple[str, int, str]:
    """Write under a temporary name, checksum what was written, then move it into place."""
    sha = hashlib.sha256(data).hexdigest()
    storage = default_storage
    tmp = storage.save(f"models/{asset.symbol}/tmp/{uuid.uuid4().hex}.part", ContentFile(data))
    with storage.open(tmp, "rb") as f:
        written = hashlib.sha256(f.read()).hexdigest()
    if written != sha:
        storage.delete(tmp)
        raise ArtifactError(f"artifact for {asset.symbol} was not written intact")
    final = f"models/{asset.symbol}/{sha[:16]}-{uuid.uuid4().hex[:8]}.pt"
    try:
        src, dst = storage.path(tmp), storage.path(final)
    except NotImplementedError:  # remote storage: copy, then delete the temporary object
        with storage.open(tmp, "rb") as f:
            final = storage.save(final, f)
        storage.delete(tmp)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.replace(src, dst)  # atomic on one filesystem: the final name is complete or absent
    return final, len(data), sha


def _artifact_discard(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:
        log.exception("Could not delete the unrecorded artifact %s", name)


def model_version_load(version: ModelVersion) -> TrainedModel:
    """Load and verify an artifact. A corrupted one is flagged, and if it was the champion the
    previous good version takes over; ArtifactError is raised either way."""
    from ..ml.train import TrainedModel

    try:
        with default_storage.open(version.artifact.name, "rb") as f:
            data = f.read()
    except (FileNotFoundError, OSError) as exc:
        problem = f"artifact {version.artifact.name} cannot be read: {exc}"
    else:
        sha = hashlib.sha256(data).hexdigest()
        if sha == version.artifact_sha256:
            return TrainedModel.from_bytes(data)
        problem = f"artifact checksum mismatch: expected {version.artifact_sha256[:12]}…, found {sha[:12]}…"
    model_version_flag_broken(version=version, problem=problem)
    raise ArtifactError(f"{version}: {problem}")


@transaction.atomic
def model_version_flag_broken(*, version: ModelVersion, problem: str) -> None:
    log.error("%s: %s", version, problem)
    Asset.objects.select_for_update().get(id=version.asset_id)
    ModelVersion.objects.filter(id=version.id).update(artifact_broken=problem)
    version.refresh_from_db()
    if version.status == ModelVersion.Status.CHAMPION:
        _fall_back(version=version)


def _fall_back(*, version: ModelVersion) -> ModelVersion | None:
    """Retire `version` (the champion; caller holds the asset lock) and restore the champion it
    replaced, walking further back past broken or withdrawn versions. None: the baseline serves."""
    now = timezone.now()
    ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.RETIRED, retired_at=now)
    version.status = ModelVersion.Status.RETIRED
    previous, seen = version.replaced, {version.id}
    while previous is not None and (previous.artifact_broken or previous.withdrawn or previous.id in seen):
        seen.add(previous.id)
        previous = previous.replaced
    if previous is not None:
        # Restored as it was: it keeps the predecessor it had, so a second roll-back goes further back.
        ModelVersion.objects.filter(id=previous.id).update(status=ModelVersion.Status.CHAMPION, promoted_at=now,
                                                           retired_at=None)
        previous.refresh_from_db()
    _forecast_on_commit(version.asset_id)
    return previous


# --- runs -----------------------------------------------------------------------------------------


def training_run_request(*, asset: Asset, triggered_by: str) -> TrainingRun:
    """Queue a training of the asset, or return the one already queued or running.

    QueueUnavailableError (and no run) if the task queue cannot be reached: a run created then
    would wait as "queued" for a task that was never sent."""
    with transaction.atomic():
        Asset.objects.select_for_update().get(id=asset.id)  # serialises requests for one asset
        active = TrainingRun.objects.filter(
            asset=asset, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
        ).first()
        if active is not None:
            return active
        broker_require()
        run = TrainingRun.objects.create(asset=asset, triggered_by=triggered_by[:100])
        # Sent only once the run is committed, so the worker always finds it.
        transaction.on_commit(lambda: _training_run_send(run.id))
    return run


def _training_run_send(run_id: int) -> None:
    """Send the run's task; if the queue went away since the check, fail the run with the reason
    rather than leave it queued for a task that does not exist."""
    from ..tasks import training_run_task

    try:
        training_run_task.delay(run_id)
    except Exception as exc:  # kombu's OperationalError, or whatever the transport raises
        log.error("Could not queue training run %s: %s", run_id, exc)
        TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, finished_at=timezone.now(),
            error=f"The task queue is unavailable, the training was not queued: {exc}"[:2000],
        )


def training_runs_reap(*, now=None) -> int:
    """Mark running trainings whose worker stopped sending heartbeats as failed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT)
    count = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=TrainingRun.Status.FAILED, finished_at=now,
        error=f"The worker was lost: no heartbeat for {settings.TRAINING_HEARTBEAT_TIMEOUT} s.",
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
        TrainingRun.objects.filter(id=run_id, status=TrainingRun.Status.QUEUED).update(
            status=TrainingRun.Status.FAILED, finished_at=now,
            error="Another training of this asset is already running.",
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


def training_run_execute(*, run_id: int, worker: str = "", config: TrainConfig | None = None,
                         on_progress=None) -> ModelVersion | None:
    run = training_run_claim(run_id=run_id, worker=worker)
    if run is None:
        log.info("Training run %s is not queued any more; nothing to do", run_id)
        return None
    try:
        version = _train_and_register(run, config or train_config(run.asset), on_progress)
    except (SeriesError, TrainingError, ArtifactError, ValueError) as exc:
        _finish(run, TrainingRun.Status.FAILED, error=str(exc))
        log.warning("Training run %s failed: %s", run.id, exc)
        return None
    return version


def _finish(run: TrainingRun, status: str, error: str = "") -> None:
    TrainingRun.objects.filter(id=run.id).update(status=status, finished_at=timezone.now(), error=error)


def _train_and_register(run: TrainingRun, config: TrainConfig, on_progress=None) -> ModelVersion:
    from ..ml.train import split_points, train

    asset = run.asset
    series, digest = candle_series(asset=asset, days=settings.TRAIN_DAYS)
    _val_start, test_start = split_points(len(series), test_steps=backtest_steps(series), val_steps=config.val_steps)
    TrainingRun.objects.filter(id=run.id).update(max_epochs=config.max_epochs)

    def progress(epoch: int, max_epochs: int) -> None:
        TrainingRun.objects.filter(id=run.id).update(epoch=epoch, max_epochs=max_epochs, heartbeat_at=timezone.now())
        if on_progress:
            on_progress(epoch, max_epochs)

    model = train(series, config, train_end=test_start, progress=progress)
    return model_version_register(run=run, model=model, series=series, digest=digest, test_start=test_start)


def model_version_register(*, run: TrainingRun, model: TrainedModel, series: Series, digest: str,
                           test_start: int) -> ModelVersion:
    """Backtest a trained model, store its artifact, record the version, then apply the gate."""
    from ..ml.backtest import backtest

    asset = run.asset
    result = backtest(model, series, test_start=test_start)
    name, size, sha = artifact_write(asset=asset, data=model.to_bytes())
    try:
        with transaction.atomic():
            Asset.objects.select_for_update().get(id=asset.id)
            last = (ModelVersion.objects.filter(asset=asset).order_by("-version")
                    .values_list("version", flat=True).first())
            version = ModelVersion.objects.create(
                asset=asset, version=(last or 0) + 1, training_run=run,
                hyperparameters={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(model.config).items()},
                data_start=ms_to_datetime(int(series.times[0])), data_end=ms_to_datetime(int(series.times[-1])),
                data_candles=len(series), data_digest=digest,
                metrics=result["methods"]["model"],
                baseline_metrics={k: v for k, v in result["methods"].items() if k != "model"},
                backtest={k: v for k, v in result.items() if k != "methods"}
                | {"test_start": int(series.times[test_start])},
                artifact=name, artifact_size=size, artifact_sha256=sha,
                train_seconds=model.meta.get("train_seconds", 0.0),
            )
            TrainingRun.objects.filter(id=run.id).update(
                status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now(), error=""
            )
    except Exception:
        # No version was recorded (e.g. the database connection dropped): the file would be an orphan.
        _artifact_discard(name)
        raise
    model_version_gate(version=version, series=series, test_start=test_start)
    version.refresh_from_db()
    return version


# --- the promotion gate ---------------------------------------------------------------------------


def gate_decision(*, metrics: dict, baselines: dict, champion: dict | None) -> tuple[bool, list[str]]:
    """The rule: pinball loss below the statistical band's (the seasonal band) and the champion's,
    MAE at most GATE_MAX_MAE_RATIO times naive's. The reasons are the decision's sentence parts."""
    reasons, ok = [], True
    pin, band_pin = metrics["pinball"], baselines["seasonal_band"]["pinball"]
    if pin < band_pin:
        reasons.append(f"pinball loss {pin:.6g} is {1 - pin / band_pin:.1%} below the statistical band's "
                       f"{band_pin:.6g}")
    else:
        ok = False
        reasons.append(f"pinball loss {pin:.6g} is not below the statistical band's {band_pin:.6g}")
    mae, naive_mae = metrics["mae"], baselines["naive"]["mae"]
    margin = settings.GATE_MAX_MAE_RATIO - 1
    if mae <= naive_mae * settings.GATE_MAX_MAE_RATIO:
        reasons.append(f"MAE {mae:.6g} is within {margin:.1%} of the naive forecast's {naive_mae:.6g}")
    else:
        ok = False
        reasons.append(f"MAE {mae:.6g} is more than {margin:.1%} above the naive forecast's {naive_mae:.6g}")
    if champion is not None:
        name = f"champion v{champion['version']}" if "version" in champion else "the champion"
        if pin < champion["pinball"]:
            reasons.append(f"pinball loss is below {name}'s {champion['pinball']:.6g}")
        else:
            ok = False
            reasons.append(f"pinball loss is not below {name}'s {champion['pinball']:.6g}")
    return ok, reasons


def model_version_gate(*, version: ModelVersion, series: Series, test_start: int) -> bool:
    from ..ml.backtest import backtest

    champion_metrics = None
    with transaction.atomic():
        Asset.objects.select_for_update().get(id=version.asset_id)
        champion = ModelVersion.objects.filter(asset_id=version.asset_id, status=ModelVersion.Status.CHAMPION).first()
        while champion is not None:
            try:
                champion_model = model_version_load(champion)
            except ArtifactError:
                champion = ModelVersion.objects.filter(asset_id=version.asset_id,
                                                       status=ModelVersion.Status.CHAMPION).first()
                continue
            # The champion is scored on exactly the same origins as the new version.
            champion_metrics = {**backtest(champion_model, series, test_start=test_start)["methods"]["model"],
                                "version": champion.version}
            break
        ok, reasons = gate_decision(metrics=version.metrics, baselines=version.baseline_metrics,
                                    champion=champion_metrics)
        if champion_metrics is not None:
            version.baseline_metrics = {**version.baseline_metrics, "champion": champion_metrics}
        version.decision = ("Promoted: " if ok else "Rejected: ") + "; ".join(reasons) + "."
        version.save(update_fields=["baseline_metrics", "decision"])
        if ok:
            model_version_promote(version=version)
        else:
            ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.REJECTED)
            version.status = ModelVersion.Status.REJECTED
    return ok


@transaction.atomic
def model_version_promote(*, version: ModelVersion) -> ModelVersion:
    """Make `version` the champion (staff may promote any version with a good artifact)."""
    Asset.objects.select_for_update().get(id=version.asset_id)
    version = ModelVersion.objects.get(id=version.id)  # re-read under the lock
    if version.artifact_broken:
        raise TrainingError(f"{version} has a broken artifact and cannot serve.")
    if version.status == ModelVersion.Status.CHAMPION:
        return version
    now = timezone.now()
    current = ModelVersion.objects.filter(asset_id=version.asset_id, status=ModelVersion.Status.CHAMPION).first()
    if current is not None:
        ModelVersion.objects.filter(id=current.id).update(status=ModelVersion.Status.RETIRED, retired_at=now)
    ModelVersion.objects.filter(id=version.id).update(
        status=ModelVersion.Status.CHAMPION, promoted_at=now, retired_at=None, withdrawn=False, replaced=current
    )
    version.refresh_from_db()
    _forecast_on_commit(version.asset_id)
    return version


@transaction.atomic
def model_version_rollback(*, asset: Asset) -> ModelVersion | None:
    """Retire the champion and bring back the one it replaced (None: the baseline serves)."""
    Asset.objects.select_for_update().get(id=asset.id)
    champion = ModelVersion.objects.filter(asset=asset, status=ModelVersion.Status.CHAMPION).first()
    if champion is None:
        raise TrainingError(f"{asset.symbol} has no champion to roll back.")
    return _fall_back(version=champion)


@transaction.atomic
def model_version_retire(*, version: ModelVersion) -> None:
    """Staff withdraw a version; a retired champion hands over to the one it replaced."""
    Asset.objects.select_for_update().get(id=version.asset_id)
    version = ModelVersion.objects.get(id=version.id)  # re-read under the lock
    ModelVersion.objects.filter(id=version.id).update(withdrawn=True)
    version.withdrawn = True
    if version.status == ModelVersion.Status.CHAMPION:
        _fall_back(version=version)
        return
    ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.RETIRED, retired_at=timezone.now())


def _forecast_on_commit(asset_id: int) -> None:
    from ..tasks import forecast_task

    # robust: with the queue down the promotion or roll-back still stands (it is committed); the
    # scheduled forecast makes the new forecast instead, and the failure is logged.
    transaction.on_commit(lambda: forecast_task.delay(asset_id), robust=True)


# --- forecasts ------------------------------------------------------------------------------------

FORECAST_CANDLES = 24 * 60  # enough history to warm the LSTM state and the volatility estimate


def forecast_make(*, asset: Asset) -> Forecast:
    """Forecast from the newest candle with the champion, or the statistical baseline when there is none."""
    champion, model = None, None
    for _attempt in range(3):
        champion = ModelVersion.objects.filter(asset=asset, status=ModelVersion.Status.CHAMPION).first()
        if champion is None:
            break
        try:
            model = model_version_load(champion)
            break
        except ArtifactError:
            champion = None  # flagged; the previous good version (if any) is champion now
    if model is not None:
        if model.aci_start_time is not None:
            # The adaptive band replays every outcome since its start: read candles from there.
            series, _ = candle_series(asset=asset, since=ms_to_datetime(model.aci_start_time))
        else:
            series, _ = candle_series(asset=asset, limit=FORECAST_CANDLES)
        out = model.forecast(series)
        kind, source = Forecast.Kind.MODEL, f"v{champion.version}"
        age_limit = timedelta(hours=settings.MODEL_MAX_AGE_HOURS)
        stale = timezone.now() - champion.created_at > age_limit
    else:
        out, source = _baseline_forecast(asset)
        kind, stale = Forecast.Kind.BASELINE, False
    steps = [
        {"target_time": ms_to_datetime(t).isoformat(), "values": [_price(v) for v in values]}
        for t, values in zip(out["target_times"], out["prices"])
    ]
    forecast, _ = Forecast.objects.get_or_create(
        asset=asset, origin_time=ms_to_datetime(out["origin_time"]), source=source,
        defaults={"kind": kind, "model_version": champion if model is not None else None,
                  "last_close": _price(out["last_close"]), "quantiles": list(out["quantiles"]),
                  "steps": steps, "stale": stale},
    )
    return forecast


def _baseline_forecast(asset: Asset) -> tuple[dict, str]:
    """(forecast, source): the seasonal band fitted as the gate's backtest fits it, so the band that
    serves is the one every model had to beat; the naive band while the history is too short for it."""
    from ..ml.backtest import naive_band_forecast
    from ..ml.seasonal import fit_seasonal_band

    config = replace(train_config(asset), seasonal=True)
    series, _ = candle_series(asset=asset, days=settings.TRAIN_DAYS)
    # Fitted before the last BACKTEST_DAYS, as in the backtest: that month is then covered by its
    # adaptive updates instead of its fit.
    train_end = max(len(series) - backtest_steps(series), 0)
    try:
        band = fit_seasonal_band(series, config, train_end=train_end)
        return band.forecast(series), Forecast.SEASONAL_SOURCE
    except SeriesError as exc:
        log.info("%s: the naive band serves instead of the seasonal band: %s", asset.symbol, exc)
    out = naive_band_forecast(series.tail(FORECAST_CANDLES), horizon=config.horizon, levels=config.quantiles,
                              ewma_halflife=config.ewma_halflife)
    return out, Forecast.NAIVE_SOURCE


def _price(value: float) -> str:
    """Prices as decimal strings with 8 places (what candles hold), never binary floats."""
    return f"{float(np.round(value, 8)):.8f}"
