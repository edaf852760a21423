"""Reading forecasts for the asset page: the one serving now, how fresh it is, the model behind it,
training progress, and past forecasts against what happened.

Each function runs a fixed number of queries, however many forecasts are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, CharField, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Cast, Concat

from core.times import datetime_to_ms

from ..ml.config import TRACK_AHEAD
from ..models import Asset, BacktestTrack, Candle, Forecast, ModelVersion, TrainingRun

# A forecast whose origin is more than this many candles behind the newest candle missed its
# schedule (it runs once per candle), so it no longer describes the market shown next to it.
STALE_AFTER_CANDLES = 3
# Past forecasts read for the track-record chart: a month of hourly forecasts.
TRACK_MAX_FORECASTS = 24 * 31
# Steps ahead a person can compare, when the forecasts reach that far.
AHEAD_CHOICES = (1, 6, 24)


def median_index(quantiles: list[float]) -> int:
    """Position of the median among the quantile levels (the middle one if 0.5 is absent)."""
    return quantiles.index(0.5) if 0.5 in quantiles else len(quantiles) // 2


# --- the forecast serving now ----------------------------------------------------------------------


def _serving_first(forecasts: QuerySet) -> QuerySet:
    """The one rule for "the latest forecast": the newest origin first; at one origin (the baseline,
    then a newly promoted model; or a model, then the baseline after a roll-back) the current
    champion's forecast, or with no champion the baseline's; else the one made last."""
    champion = ModelVersion.objects.filter(asset=OuterRef("asset"), status=ModelVersion.Status.CHAMPION).values(
        "version"
    )[:1]
    return (
        forecasts.annotate(champion_version=Subquery(champion))
        .annotate(
            serving=Case(
                When(
                    champion_version__isnull=False,
                    source=Concat(Value("v"), Cast("champion_version", CharField())),
                    then=Value(1),
                ),
                When(champion_version__isnull=True, kind=Forecast.Kind.BASELINE, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        .order_by("-origin_time", "-serving", "-made_at", "-id")
    )


def forecast_latest(*, asset: Asset) -> Forecast | None:
    """The forecast serving an asset now (see _serving_first). One query."""
    return _serving_first(Forecast.objects.filter(asset=asset)).select_related("model_version").first()


def forecasts_latest(*, asset_ids) -> dict[int, Forecast]:
    """The forecast serving each asset now, by the same rule as forecast_latest. Two queries."""
    newest = _serving_first(Forecast.objects.filter(asset=OuterRef("pk"))).values("id")[:1]
    ids = [
        i
        for i in Asset.objects.filter(id__in=list(asset_ids))
        .annotate(fid=Subquery(newest))
        .values_list("fid", flat=True)
        if i
    ]
    return {f.asset_id: f for f in Forecast.objects.filter(id__in=ids).select_related("model_version")}


@dataclass(frozen=True)
class Staleness:
    stale: bool
    model_too_old: bool  # Forecast.stale: the model was older than MODEL_MAX_AGE_HOURS
    candles_behind: int  # newest candle's position after the forecast's origin


def forecast_staleness(*, forecast: Forecast, newest_candle: datetime | None, asset: Asset) -> Staleness:
    behind = 0
    if newest_candle is not None and newest_candle > forecast.origin_time:
        behind = int((newest_candle - forecast.origin_time) / asset.interval_delta)
    return Staleness(
        stale=forecast.stale or behind > STALE_AFTER_CANDLES, model_too_old=forecast.stale, candles_behind=behind
    )


def forecast_chart_points(*, forecast: Forecast) -> list[dict]:
    """Per step: target time (ms) and the band's low, median and high as decimal strings."""
    mid = median_index(forecast.quantiles)
    return [
        {
            "t": datetime_to_ms(datetime.fromisoformat(s["target_time"])),
            "lo": s["values"][0],
            "m": s["values"][mid],
            "hi": s["values"][-1],
        }
        for s in forecast.steps
    ]


# --- models and training ---------------------------------------------------------------------------


def model_versions_current(*, asset: Asset) -> tuple[ModelVersion | None, ModelVersion | None]:
    """(champion, newest version) in one query; either may be None, and they may be the same."""
    newest = ModelVersion.objects.filter(asset=OuterRef("asset")).order_by("-version").values("id")[:1]
    rows = list(
        ModelVersion.objects.filter(asset=asset)
        .filter(Q(status=ModelVersion.Status.CHAMPION) | Q(id=Subquery(newest)))
        .order_by("-version")
    )
    champion = next((v for v in rows if v.status == ModelVersion.Status.CHAMPION), None)
    return champion, (rows[0] if rows else None)


def training_run_latest(*, asset: Asset) -> TrainingRun | None:
    return TrainingRun.objects.filter(asset=asset).order_by("-created_at", "-id").first()


# --- past forecasts against what happened ------------------------------------------------------------


@dataclass(frozen=True)
class TrackRecord:
    ahead: int  # steps ahead compared
    points: list[dict]  # per resolved forecast, oldest target first: t, origin, m, lo, hi, a (actual)
    forecasts: int  # forecasts read (one per origin)
    unresolved: int  # forecasts whose target candle is not stored (yet)
    inside: int  # actual closes inside the band
    band: float | None  # the band's nominal coverage, e.g. 0.8
    mae: Decimal | None  # mean |median - actual|
    naive_mae: Decimal | None  # mean |last close at the origin - actual|: "no change" as a yardstick
    limited: bool  # more forecasts were in the range than read
    # None: the stored live forecasts. Else the backtest they come from: (version, "model" or
    # "seasonal_band"), forecasts that version's backtest made, before anything served.
    backtest_of: tuple[ModelVersion, str] | None = None

    @property
    def coverage(self) -> float | None:
        return self.inside / len(self.points) if self.points else None


def forecast_track_record(
    *, asset: Asset, ahead: int = 1, since: datetime | None = None, limit: int = TRACK_MAX_FORECASTS
) -> TrackRecord:
    """Each stored forecast's `ahead`-step median and band, at its target time, beside the close
    that happened there. One forecast per origin (the one made last). Two queries."""
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    qs = Forecast.objects.filter(asset=asset)
    if since is not None:
        qs = qs.filter(origin_time__gt=since)
    # Only the one step compared is read, not the whole horizon of every forecast.
    rows = list(
        qs.order_by("-origin_time", "-made_at", "-id").values_list(
            "origin_time", "last_close", "quantiles", f"steps__{ahead - 1}"
        )[: limit + 1]
    )
    limited = len(rows) > limit
    picked, seen = [], set()
    for origin, last_close, quantiles, step in rows[:limit]:
        if origin in seen:
            continue
        seen.add(origin)
        if step:  # a forecast with a shorter horizon has no such step
            picked.append((origin, last_close, quantiles, step))
    targets = {datetime.fromisoformat(step["target_time"]) for _, _, _, step in picked}
    closes = (
        dict(
            Candle.objects.filter(asset=asset, interval=asset.interval, open_time__in=targets).values_list(
                "open_time", "close"
            )
        )
        if targets
        else {}
    )

    points, inside, err, naive_err, band = [], 0, Decimal(0), Decimal(0), None
    for origin, last_close, quantiles, step in reversed(picked):
        target = datetime.fromisoformat(step["target_time"])
        actual = closes.get(target)
        if actual is None:
            continue
        values = [Decimal(v) for v in step["values"]]
        lo, m, hi = values[0], values[median_index(quantiles)], values[-1]
        inside += lo <= actual <= hi
        err += abs(m - actual)
        naive_err += abs(last_close - actual)
        band = round(quantiles[-1] - quantiles[0], 6)
        points.append(
            {
                "t": datetime_to_ms(target),
                "origin": datetime_to_ms(origin),
                "m": str(m),
                "lo": str(lo),
                "hi": str(hi),
                "a": str(actual),
            }
        )
    points.sort(key=lambda p: p["t"])
    n = len(points)
    return TrackRecord(
        ahead=ahead,
        points=points,
        forecasts=len(picked),
        unresolved=len(picked) - n,
        inside=inside,
        band=band,
        mae=err / n if n else None,
        naive_mae=naive_err / n if n else None,
        limited=limited,
    )


def backtest_track_record(*, asset: Asset, champion: ModelVersion | None, ahead: int = 1) -> TrackRecord | None:
    """Past forecasts from a backtest, for an asset whose live forecasts have not resolved yet:
    the champion's own, or with no champion the statistical baseline's in the newest version's
    backtest (the band that serves then). None when no version has a stored track. Two queries."""
    if ahead not in TRACK_AHEAD:
        return None
    if champion is not None:
        version = champion
    else:
        version = ModelVersion.objects.filter(asset=asset, backtest_track__isnull=False).order_by("-version").first()
    track = BacktestTrack.objects.filter(version=version).first() if version is not None else None
    if track is None:
        return None
    method = "model" if champion is not None else "seasonal_band"
    data = track.data
    step = data["steps"].get(str(ahead), {})
    if method not in step:
        return None
    delta_ms = int(asset.interval_delta.total_seconds() * 1000) * ahead
    points, inside, err, naive_err = [], 0, Decimal(0), Decimal(0)
    for origin, last, (lo, m, hi), actual in zip(
        data["origin_times"], data["last_close"], step[method], step["actual"]
    ):
        inside += lo <= actual <= hi
        err += abs(Decimal(str(m)) - Decimal(str(actual)))
        naive_err += abs(Decimal(str(last)) - Decimal(str(actual)))
        points.append(
            {"t": origin + delta_ms, "origin": origin, "m": str(m), "lo": str(lo), "hi": str(hi), "a": str(actual)}
        )
    n = len(points)
    quantiles = version.hyperparameters.get("quantiles") or [0.1, 0.5, 0.9]
    return TrackRecord(
        ahead=ahead,
        points=points,
        forecasts=n,
        unresolved=0,
        inside=inside,
        band=round(quantiles[-1] - quantiles[0], 6),
        mae=err / n if n else None,
        naive_mae=naive_err / n if n else None,
        limited=False,
        backtest_of=(version, method),
    )
