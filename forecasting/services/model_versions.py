"""Model versions: registration, the promotion gate and the champion's lifecycle (promote, roll back,
retire, fall back from a broken artifact).

A version is created only once its artifact is complete and checksummed; it serves only if it
beats the current champion and the statistical baseline (the seasonal band) on the same backtest.
Every change of champion holds the asset's row lock, so two of them never interleave.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.times import ms_to_datetime

from ..ml.data import Series
from ..models import Asset, BacktestTrack, ModelVersion, TrainingRun
from .artifacts import ArtifactError, artifact_discard, artifact_read, artifact_write

if TYPE_CHECKING:
    from ..ml.train import TrainedModel

log = logging.getLogger(__name__)


class ModelVersionError(Exception):
    """A change of champion that cannot be made; the message says why."""


@dataclass(frozen=True)
class Handover:
    """What a change of champion does to one asset: `stops` stops serving and `serves` takes over
    (None: no version can, and the statistical baseline band serves)."""

    asset: Asset
    stops: ModelVersion
    serves: ModelVersion | None

    @property
    def key(self) -> str:
        """Posted back by a confirmation page: the change is made only if it is still the one shown."""
        return f"{self.asset.id}:{self.stops.id}:{self.serves.id if self.serves else '-'}"

    def describe(self) -> str:
        stops = f"v{self.stops.version} stops serving"
        if self.serves is None:
            return f"{stops}; no earlier version can serve, so the statistical baseline band serves"
        return f"{stops}; v{self.serves.version} serves again"


def model_version_register(
    *, run: TrainingRun, model: TrainedModel, series: Series, digest: str, test_start: int
) -> ModelVersion:
    """Backtest a trained model, store its artifact, record the version, then apply the gate."""
    from ..ml.backtest import backtest

    asset = run.asset
    result = backtest(model, series, test_start=test_start)
    name, size, sha = artifact_write(asset=asset, data=model.to_bytes())
    try:
        with transaction.atomic():
            Asset.objects.select_for_update().get(id=asset.id)
            last = (
                ModelVersion.objects.filter(asset=asset).order_by("-version").values_list("version", flat=True).first()
            )
            version = ModelVersion.objects.create(
                asset=asset,
                version=(last or 0) + 1,
                training_run=run,
                hyperparameters={k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(model.config).items()},
                data_start=ms_to_datetime(int(series.times[0])),
                data_end=ms_to_datetime(int(series.times[-1])),
                data_candles=len(series),
                data_digest=digest,
                metrics=result["methods"]["model"],
                baseline_metrics={k: v for k, v in result["methods"].items() if k != "model"},
                backtest={k: v for k, v in result.items() if k not in ("methods", "track")}
                | {"test_start": int(series.times[test_start])},
                artifact=name,
                artifact_size=size,
                artifact_sha256=sha,
                train_seconds=model.meta.get("train_seconds", 0.0),
            )
            BacktestTrack.objects.create(version=version, data=result["track"])
            TrainingRun.objects.filter(id=run.id).update(
                status=TrainingRun.Status.SUCCEEDED, finished_at=timezone.now(), error=""
            )
    except Exception:
        # No version was recorded (e.g. the database connection dropped): the file would be an orphan.
        artifact_discard(name)
        raise
    model_version_gate(version=version, series=series, test_start=test_start)
    version.refresh_from_db()
    return version


# --- the promotion gate ---------------------------------------------------------------------------


def _pair(a: float, b: float) -> tuple[str, str]:
    """Two metrics compared in a sentence: four significant digits, as the metrics tables show them,
    or as many more (up to six) as it takes for two different values not to read the same. Values
    that six digits cannot tell apart are as good as equal: four digits then."""
    for digits in (4, 5, 6):
        left, right = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if left != right:
            return left, right
    return f"{a:.4g}", f"{b:.4g}"


def gate_decision(*, metrics: dict, baselines: dict, champion: dict | None) -> tuple[bool, list[str]]:
    """The rule: pinball loss below the statistical band's (the seasonal band) and the champion's,
    MAE at most GATE_MAX_MAE_RATIO times naive's. The reasons are the decision's sentence parts."""
    reasons, ok = [], True
    pin, band_pin = metrics["pinball"], baselines["seasonal_band"]["pinball"]
    pin_text, band_text = _pair(pin, band_pin)
    if pin < band_pin:
        share = 1 - pin / band_pin
        # A gain that rounds to 0.0% would read as no gain at all.
        share_text = f"{share:.1%}" if share >= 0.0005 else "less than 0.1%"
        reasons.append(f"pinball loss {pin_text} is {share_text} below the statistical band's {band_text}")
    else:
        ok = False
        reasons.append(f"pinball loss {pin_text} is not below the statistical band's {band_text}")
    mae, naive_mae = metrics["mae"], baselines["naive"]["mae"]
    mae_text, naive_text = _pair(mae, naive_mae)
    margin = settings.GATE_MAX_MAE_RATIO - 1
    if mae <= naive_mae * settings.GATE_MAX_MAE_RATIO:
        reasons.append(f"MAE {mae_text} is within {margin:.1%} of the naive forecast's {naive_text}")
    else:
        ok = False
        reasons.append(f"MAE {mae_text} is more than {margin:.1%} above the naive forecast's {naive_text}")
    if champion is not None:
        name = f"champion v{champion['version']}" if "version" in champion else "the champion"
        champion_text = _pair(pin, champion["pinball"])[1]
        if pin < champion["pinball"]:
            reasons.append(f"pinball loss is below {name}'s {champion_text}")
        else:
            ok = False
            reasons.append(f"pinball loss is not below {name}'s {champion_text}")
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
                champion = ModelVersion.objects.filter(
                    asset_id=version.asset_id, status=ModelVersion.Status.CHAMPION
                ).first()
                continue
            # The champion is scored on exactly the same origins as the new version.
            champion_metrics = {
                **backtest(champion_model, series, test_start=test_start)["methods"]["model"],
                "version": champion.version,
            }
            break
        ok, reasons = gate_decision(
            metrics=version.metrics, baselines=version.baseline_metrics, champion=champion_metrics
        )
        if champion_metrics is not None:
            version.baseline_metrics = {**version.baseline_metrics, "champion": champion_metrics}
        version.decision = (ModelVersion.GATE_PASSED if ok else ModelVersion.GATE_REJECTED) + "; ".join(reasons) + "."
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
        raise ModelVersionError(f"{version} has a broken artifact and cannot serve.")
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
def model_version_rollback(*, asset: Asset, to_baseline: bool = False) -> ModelVersion | None:
    """Retire the champion and bring back the one it replaced (None: the baseline serves).

    A champion with no earlier version to bring back is rolled back only with `to_baseline`: the
    caller has told whoever asked that the statistical baseline band will serve."""
    Asset.objects.select_for_update().get(id=asset.id)
    handover = _rollback_handover(asset)
    if handover.serves is None and not to_baseline:
        raise ModelVersionError(_no_earlier_version(handover))
    return _fall_back(version=handover.stops)


def _rollback_handover(asset: Asset) -> Handover:
    champion = ModelVersion.objects.filter(asset=asset, status=ModelVersion.Status.CHAMPION).first()
    if champion is None:
        raise ModelVersionError(f"{asset.symbol} has no champion to roll back.")
    return Handover(asset=asset, stops=champion, serves=_successor(champion))


def _no_earlier_version(handover: Handover) -> str:
    return (
        f"{handover.asset.symbol} v{handover.stops.version} has no earlier version to roll back to: "
        f"rolling it back would leave the statistical baseline band serving."
    )


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


# --- several at once (admin actions): all or nothing -----------------------------------------------


def _lock_asset(asset_id: int) -> None:
    Asset.objects.select_for_update().get(id=asset_id)


def model_versions_promote(
    *, versions: list[ModelVersion]
) -> tuple[list[tuple[ModelVersion, ModelVersion | None]], list[ModelVersion]]:
    """Promote one version per asset, all or none: (each promoted version with the champion it
    replaced, the versions that were champion already). ModelVersionError if any cannot serve."""
    per_asset: dict[int, int] = {}
    for v in versions:
        per_asset[v.asset_id] = per_asset.get(v.asset_id, 0) + 1
    crowded = sorted({v.asset.symbol for v in versions if per_asset[v.asset_id] > 1})
    if crowded:
        raise ModelVersionError(
            f"Select one version per asset to promote; several were selected for {', '.join(crowded)}."
        )
    broken = [str(v) for v in versions if v.artifact_broken]
    if broken:
        raise ModelVersionError(f"A version with a broken artifact cannot serve: {', '.join(broken)}.")
    done, already = [], []
    with transaction.atomic():
        for version in sorted(versions, key=lambda v: v.asset.symbol):
            _lock_asset(version.asset_id)
            version.refresh_from_db()  # decided on what is stored now, under the lock
            if version.status == ModelVersion.Status.CHAMPION:
                already.append(version)
                continue
            previous = ModelVersion.objects.filter(
                asset_id=version.asset_id, status=ModelVersion.Status.CHAMPION
            ).first()
            model_version_promote(version=version)
            done.append((version, previous))
    return done, already


def assets_rollback_plan(*, assets: list[Asset]) -> list[Handover]:
    """What rolling these assets back would do, for a confirmation page; changes nothing.
    ModelVersionError if an asset has no champion."""
    assets = sorted(assets, key=lambda a: a.symbol)
    missing = [
        a.symbol
        for a in assets
        if not ModelVersion.objects.filter(asset=a, status=ModelVersion.Status.CHAMPION).exists()
    ]
    if missing:
        raise ModelVersionError(
            f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no champion to roll back."
        )
    return [_rollback_handover(asset) for asset in assets]


def assets_rollback(*, assets: list[Asset], confirmed: Collection[str]) -> list[Handover]:
    """Roll every asset back as confirmed, all or none. `confirmed` holds the keys of the handovers
    the person saw (assets_rollback_plan): falling back to the baseline is allowed only where they
    saw it, and an asset whose champion changed since is refused (ModelVersionError)."""
    plan = assets_rollback_plan(assets=assets)
    done = []
    with transaction.atomic():
        for planned in plan:
            _lock_asset(planned.asset.id)
            handover = _rollback_handover(planned.asset)  # ModelVersionError if the champion just went
            _check_confirmed(handover, confirmed)
            _fall_back(version=handover.stops)
            done.append(handover)
    return done


def _check_confirmed(handover: Handover, confirmed: Collection[str]) -> None:
    if handover.key in confirmed:
        return
    if not confirmed:
        raise ModelVersionError(f"{handover.asset.symbol}: {handover.describe()}. Confirm this change first.")
    raise ModelVersionError(
        f"{handover.asset.symbol} changed since the confirmation page: now {handover.describe()}. "
        f"Review the change and confirm again."
    )


def model_versions_retire_plan(*, versions: list[ModelVersion]) -> list[Handover]:
    """For each champion among `versions`, what retiring them all would do to its asset, for a
    confirmation page; changes nothing. The other selected versions are withdrawn first, so none
    of them serves next."""
    selected = {v.id for v in versions}
    champions = ModelVersion.objects.filter(id__in=selected, status=ModelVersion.Status.CHAMPION).select_related(
        "asset"
    )
    return sorted(
        (Handover(asset=c.asset, stops=c, serves=_successor(c, leaving=selected)) for c in champions),
        key=lambda h: h.asset.symbol,
    )


def model_versions_retire(
    *, versions: list[ModelVersion], confirmed: Collection[str]
) -> tuple[list[ModelVersion], list[ModelVersion], list[Handover]]:
    """Withdraw the versions, all or none: (retired now, retired and withdrawn already, and what
    happened to each asset whose champion was retired). `confirmed` holds the keys of the handovers
    the person saw (model_versions_retire_plan); a champion whose handover differs now is refused."""
    # Per asset the champion goes last: the others are withdrawn first, so its fallback skips them.
    versions = sorted(versions, key=lambda v: (v.asset.symbol, v.status == ModelVersion.Status.CHAMPION, -v.version))
    selected = {v.id for v in versions}
    done, already, handovers = [], [], []
    with transaction.atomic():
        for version in versions:
            _lock_asset(version.asset_id)
            version.refresh_from_db()
            if version.status == ModelVersion.Status.CHAMPION:
                handover = Handover(asset=version.asset, stops=version, serves=_successor(version, leaving=selected))
                _check_confirmed(handover, confirmed)
                handovers.append(handover)
            # Retiring an already retired version still withdraws it: it never comes back.
            (already if version.status == ModelVersion.Status.RETIRED and version.withdrawn else done).append(version)
            model_version_retire(version=version)
    return done, already, handovers


def _forecast_on_commit(asset_id: int) -> None:
    from ..tasks import forecast_task

    # robust: with the queue down the promotion or roll-back still stands (it is committed); the
    # scheduled forecast makes the new forecast instead, and the failure is logged.
    transaction.on_commit(lambda: forecast_task.delay(asset_id), robust=True)


# --- loading and broken artifacts -----------------------------------------------------------------


# Models read back from their artifacts, by the artifact's checksum, newest use last. A forecast
# worker forecasts every asset each hour from the same champion: rebuilding the LSTMs each time
# cost about a third of a forecast (bench/results/forecast_cost.md). The bytes are still read
# and verified on every load, so a corrupted artifact is caught as before; only the parsing is
# saved, and identical bytes always give the same model. Nothing mutates a loaded model.
LOADED_MODELS_KEPT = 64
_loaded: OrderedDict[str, TrainedModel] = OrderedDict()
_loaded_lock = threading.Lock()


def model_version_load(version: ModelVersion) -> TrainedModel:
    """Load and verify an artifact. A corrupted one is flagged, and if it was the champion the
    previous good version takes over; ArtifactError is raised either way."""
    try:
        data = artifact_read(version=version)
    except ArtifactError as exc:
        problem = str(exc)
    else:
        return _parsed(version.artifact_sha256, data)
    model_version_flag_broken(version=version, problem=problem)
    raise ArtifactError(f"{version}: {problem}")


def _parsed(sha256: str, data: bytes) -> TrainedModel:
    """The model in `data` (whose checksum `sha256` the caller has verified), parsed once per process."""
    from ..ml.train import TrainedModel

    with _loaded_lock:
        model = _loaded.get(sha256)
        if model is not None:
            _loaded.move_to_end(sha256)
            return model
    model = TrainedModel.from_bytes(data)
    with _loaded_lock:
        _loaded[sha256] = model
        _loaded.move_to_end(sha256)
        while len(_loaded) > LOADED_MODELS_KEPT:
            _loaded.popitem(last=False)
    return model


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
    previous = _successor(version)
    ModelVersion.objects.filter(id=version.id).update(status=ModelVersion.Status.RETIRED, retired_at=now)
    version.status = ModelVersion.Status.RETIRED
    if previous is not None:
        # Restored as it was: it keeps the predecessor it had, so a second roll-back goes further back.
        ModelVersion.objects.filter(id=previous.id).update(
            status=ModelVersion.Status.CHAMPION, promoted_at=now, retired_at=None
        )
        previous.refresh_from_db()
    _forecast_on_commit(version.asset_id)
    return previous


def _successor(version: ModelVersion, *, leaving: Collection[int] = ()) -> ModelVersion | None:
    """The version that serves when `version` stops: the champion it replaced, walking further back
    past broken, withdrawn or `leaving` versions. None: the statistical baseline band serves."""
    previous, seen = version.replaced, {version.id, *leaving}
    while previous is not None and (previous.artifact_broken or previous.withdrawn or previous.id in seen):
        seen.add(previous.id)
        previous = previous.replaced
    return previous
