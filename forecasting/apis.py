"""Read-only market data, forecasts and model registry, plus staff actions, under /api/v1/."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models.expressions import RawSQL
from django.http import HttpResponse
from django.urls import reverse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.api.exceptions import error_response, not_found
from core.api.filters import TimeRangeFilter
from core.api.mixins import NamedObjects, WritesInTransaction
from core.api.pagination import CandlePagination
from core.api.serializers import ModelSerializer
from core.broker import QueueUnavailableError
from core.formatting import decimal_string
from core.time_range import time_range_lookups

from .models import SYMBOL_URL_REGEX, Asset, Candle, Forecast, ModelVersion, TrainingRun
from .permissions import CanChangeChampion, CanRetrain
from .selectors.comparison import serving_comparison
from .selectors.forecasts import STALE_AFTER_CANDLES, forecast_latest, forecast_staleness, model_versions_current
from .services.model_versions import ModelVersionError, model_version_promote, model_version_rollback
from .services.training_runs import training_run_request

TIME_FORMAT = settings.REST_FRAMEWORK["DATETIME_FORMAT"]


class AssetSerializer(ModelSerializer):
    class Meta:
        model = Asset
        fields = ["symbol", "base_asset", "quote_asset", "interval", "tracked", "created_at"]


class CandleSerializer(ModelSerializer):
    class Meta:
        model = Candle
        fields = ["open_time", "close_time", "open", "high", "low", "close", "volume"]


def _utc_text(value: str) -> str:
    """A stored ISO time written like every other time of the API (UTC, microseconds, Z)."""
    return datetime.fromisoformat(value).astimezone(UTC).strftime(TIME_FORMAT)


STEP_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "target_time": {"type": "string", "format": "date-time"},
            "values": {
                "type": "array",
                "description": "One price per quantile level, in the order of `quantiles`.",
                "items": {"type": "string", "format": "decimal", "pattern": r"^-?\d{0,20}(?:\.\d{0,8})?$"},
            },
        },
        "required": ["target_time", "values"],
    },
}


@extend_schema_field(STEP_SCHEMA)
class StepsField(serializers.Field):
    """Forecast steps as stored, times and prices rewritten by the API's rules (prices are decimal
    strings with 8 places, as forecast_make writes them). Plain code: a nested serializer per step
    and per price cost the latest-forecast endpoint a third of its time."""

    def to_representation(self, steps):
        return [
            {
                "target_time": _utc_text(step["target_time"]),
                "values": [decimal_string(v if isinstance(v, str) else str(v), trim=True) for v in step["values"]],
            }
            for step in steps
        ]


class ForecastSerializer(ModelSerializer):
    symbol = serializers.CharField(source="asset.symbol")
    model_version = serializers.SerializerMethodField()
    quantiles = serializers.ListField(child=serializers.FloatField())
    steps = StepsField()
    stale = serializers.BooleanField(help_text="Made by a model older than the allowed age.")

    class Meta:
        model = Forecast
        fields = [
            "symbol",
            "kind",
            "source",
            "model_version",
            "origin_time",
            "made_at",
            "stale",
            "last_close",
            "quantiles",
            "steps",
        ]

    def get_model_version(self, obj) -> int | None:
        return obj.model_version.version if obj.model_version_id else None


class ComparisonSerializer(serializers.Serializer):
    """What serves the asset's forecasts and how it compares with the statistical baseline, as the asset
    page says it. The numbers come from the compared version's backtest; null when there is none."""

    text = serializers.CharField(
        help_text="What serves and how it compares with the statistical baseline (the "
        "seasonal band), in plain words, as on the asset page."
    )
    verdict = serializers.CharField(
        help_text="One sentence without jargon: is the range better than the plain statistical one, how "
        "often it held the price, and whether the middle line is worth reading."
    )
    model_version = serializers.IntegerField(
        allow_null=True, help_text="The version compared: the champion, else the newest version."
    )
    pinball_ratio = serializers.FloatField(
        allow_null=True, help_text="Its backtest pinball loss over the statistical band's: below 1 is better."
    )
    model_coverage = serializers.FloatField(allow_null=True, help_text="Share of backtest closes inside its band.")
    baseline_coverage = serializers.FloatField(
        allow_null=True, help_text="Share of backtest closes inside the statistical band."
    )
    backtest_days = serializers.FloatField(allow_null=True, help_text="Length of that backtest.")


class LatestForecastSerializer(ForecastSerializer):
    """The forecast the asset page shows, with the page's notion of stale and its comparison."""

    stale = serializers.SerializerMethodField(
        help_text=f"As on the asset page: made by a model older than the allowed age, or more than "
        f"{STALE_AFTER_CANDLES} candles behind the newest candle."
    )
    model_too_old = serializers.SerializerMethodField()
    candles_behind = serializers.SerializerMethodField(help_text="Candles stored after the forecast's origin.")
    comparison = serializers.SerializerMethodField()

    class Meta(ForecastSerializer.Meta):
        fields = [*ForecastSerializer.Meta.fields, "model_too_old", "candles_behind", "comparison"]

    def get_stale(self, obj) -> bool:
        return self.context["staleness"].stale

    def get_model_too_old(self, obj) -> bool:
        return self.context["staleness"].model_too_old

    def get_candles_behind(self, obj) -> int:
        return self.context["staleness"].candles_behind

    @extend_schema_field(ComparisonSerializer)
    def get_comparison(self, obj) -> dict:
        return ComparisonSerializer(self.context["comparison"]).data


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetricsField(serializers.JSONField):
    pass


class ModelVersionSerializer(ModelSerializer):
    symbol = serializers.CharField(source="asset.symbol")
    metrics = MetricsField()
    baseline_metrics = MetricsField()
    backtest = MetricsField()
    hyperparameters = MetricsField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "symbol",
            "version",
            "status",
            "created_at",
            "promoted_at",
            "retired_at",
            "decision",
            "metrics",
            "baseline_metrics",
            "backtest",
            "hyperparameters",
            "data_start",
            "data_end",
            "data_candles",
            "data_digest",
            "artifact_size",
            "artifact_sha256",
            "train_seconds",
        ]


class TrainingRunSerializer(ModelSerializer):
    symbol = serializers.CharField(source="asset.symbol")
    triggered_by = serializers.SerializerMethodField(
        help_text='"schedule", "you" or "staff"; staff see who exactly ("admin:<username>", "api:<username>").'
    )
    model_version = serializers.SerializerMethodField()
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "symbol",
            "status",
            "triggered_by",
            "created_at",
            "started_at",
            "finished_at",
            "epoch",
            "max_epochs",
            "error",
            "model_version",
            "duration_seconds",
        ]

    def get_triggered_by(self, obj) -> str:
        request = self.context.get("request")
        return obj.triggered_by_for(request.user if request is not None else None)

    def get_model_version(self, obj) -> int | None:
        version = getattr(obj, "model_version", None)
        return version.version if version else None

    def get_duration_seconds(self, obj) -> float | None:
        return obj.duration.total_seconds() if obj.duration else None


class TrainingRunAcceptedSerializer(TrainingRunSerializer):
    url = serializers.SerializerMethodField(
        help_text="The run, to poll for its status and progress (also in Location)."
    )

    class Meta(TrainingRunSerializer.Meta):
        fields = [*TrainingRunSerializer.Meta.fields, "url"]

    def get_url(self, obj) -> str:
        return self.context["url"]


CONFLICT = OpenApiResponse(description="Not possible now; see `error.message`.")
QUEUE_DOWN = OpenApiResponse(description="The task queue is unavailable: nothing was queued; try again later.")


class CandleFilter(filters.FilterSet):
    start = TimeRangeFilter(
        field_name="open_time", side="start", label="open time from: an ISO 8601 time, or a date for its whole UTC day"
    )
    end = TimeRangeFilter(
        field_name="open_time",
        side="end",
        label="open time until (included): an ISO 8601 time, or a date for its whole UTC day",
    )

    class Meta:
        model = Candle
        fields = []


class ForecastFilter(filters.FilterSet):
    start = TimeRangeFilter(
        field_name="origin_time",
        side="start",
        label="made from (origin time): an ISO 8601 time, or a date for its whole UTC day",
    )
    end = TimeRangeFilter(
        field_name="origin_time",
        side="end",
        label="made until (included): an ISO 8601 time, or a date for its whole UTC day",
    )

    class Meta:
        model = Forecast
        fields = ["kind"]


def _asset(symbol: str) -> Asset:
    asset = Asset.objects.filter(symbol=symbol.upper()).first()
    if asset is None:
        # Named in the error body, with where to look: "Not found." alone leaves a script guessing.
        raise not_found("asset", "symbol", symbol.upper(), hint="/api/v1/assets/ lists the tracked ones.")
    return asset


class AssetViewSet(WritesInTransaction, NamedObjects, viewsets.ReadOnlyModelViewSet):
    """Assets. Below each: `candles/`, `forecasts/` (and `forecasts/latest/`), `model-versions/`,
    `training-runs/`; staff may POST `retrain/` and `rollback/`."""

    serializer_class = AssetSerializer
    lookup_field = "symbol"
    lookup_value_regex = SYMBOL_URL_REGEX
    queryset = Asset.objects.all()
    filterset_fields = ["tracked", "interval", "quote_asset"]
    ordering_fields = ["symbol", "created_at"]
    ordering = ["symbol"]

    def get_object(self):
        return _asset(self.kwargs["symbol"])

    @extend_schema(
        summary="Queue a training of the asset's model",
        request=None,
        responses={202: TrainingRunAcceptedSerializer, 503: QUEUE_DOWN},
        parameters=[
            OpenApiParameter(
                "Location", OpenApiTypes.URI, OpenApiParameter.HEADER, response=[202], description="The run's URL."
            )
        ],
    )
    @action(detail=True, methods=["post"], permission_classes=[CanRetrain])
    def retrain(self, request, symbol=None):
        """Queue a training (or return the one already queued or running): 202 with the run's URL."""
        asset = self.get_object()
        try:
            run = training_run_request(asset=asset, triggered_by=f"api:{request.user.get_username()}")
        except QueueUnavailableError as exc:
            return error_response(str(exc), status_code=status.HTTP_503_SERVICE_UNAVAILABLE, code="queue_unavailable")
        url = request.build_absolute_uri(reverse("api:training-run-detail", args=[run.id]))
        body = TrainingRunAcceptedSerializer(run, context={"url": url, "request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": url})

    @extend_schema(
        summary="Roll back to the previous champion",
        description=(
            "Retires the champion and brings back the one it replaced. With no earlier version the "
            'answer is 409, unless the body says `{"to_baseline": true}`: the statistical baseline '
            "band then serves until a model is promoted."
        ),
        request=inline_serializer("RollbackRequest", {"to_baseline": serializers.BooleanField(required=False)}),
        responses={
            200: inline_serializer(
                "RollbackResult",
                {"symbol": serializers.CharField(), "champion": serializers.IntegerField(allow_null=True)},
            ),
            409: CONFLICT,
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[CanChangeChampion])
    def rollback(self, request, symbol=None):
        asset = self.get_object()
        to_baseline = request.data.get("to_baseline", False) if isinstance(request.data, dict) else False
        if not isinstance(to_baseline, bool):
            return error_response(
                "to_baseline must be true or false.",
                status_code=400,
                code="invalid",
                fields={"to_baseline": ["Must be a boolean."]},
            )
        try:
            # Leaving the asset to the baseline band is asked for explicitly, never done silently; the
            # answer names what serves next (null: the statistical baseline band).
            restored = model_version_rollback(asset=asset, to_baseline=to_baseline)
        except ModelVersionError as exc:
            message = str(exc)
            if "no earlier version" in message:
                message += ' Send {"to_baseline": true} to roll back anyway.'
            return error_response(message, status_code=409, code="conflict")
        return Response({"symbol": asset.symbol, "champion": restored.version if restored else None})


class _PerAsset(NamedObjects):
    """Lists below /assets/{symbol}/: an unknown symbol is a 404."""

    def asset(self) -> Asset:
        if not hasattr(self, "_asset"):
            self._asset = _asset(self.kwargs["symbol"])
        return self._asset


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # as DRF's renderer (UNICODE_JSON)


# One candle as the serializer writes it, made by PostgreSQL: times in UTC with microseconds and a
# Z (DATETIME_FORMAT), decimals by core.formatting.decimal_string's rule (trim_scale drops the
# trailing zeros of the 8 stored places; numeric text is plain notation, and a zero is "0").
# Every value is digits and punctuation, so nothing needs escaping.
def _candle_json_sql() -> str:
    table = connection.ops.quote_name(Candle._meta.db_table)
    time_format = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
    parts = [
        f"""'"{name}":"' || to_char({table}.{name} AT TIME ZONE 'UTC', {time_format})"""
        for name in ("open_time", "close_time")
    ]
    parts += [
        f"""'"{name}":"' || trim_scale({table}.{connection.ops.quote_name(name)})::text"""
        for name in ("open", "high", "low", "close", "volume")
    ]
    return "'{' || " + """ || '",' || """.join(parts) + """ || '"}'"""


_CANDLE_JSON = RawSQL(_candle_json_sql(), ())


class AssetCandleViewSet(WritesInTransaction, _PerAsset, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Closed candles of the asset's interval, oldest first; filter with `start`/`end`."""

    serializer_class = CandleSerializer
    pagination_class = CandlePagination
    filterset_class = CandleFilter
    ordering_fields = ["open_time"]
    ordering = ["open_time"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Candle.objects.none()
        asset = self.asset()
        return Candle.objects.filter(asset=asset, interval=asset.interval)

    def list(self, request, *args, **kwargs):
        """The serializer's page, written without it: each candle's JSON comes from PostgreSQL as
        one text, and the page is joined around them. Model instances and seven fields per candle
        were most of this endpoint's time (100 candles at 0.12 x the trivial view's throughput).
        tests/api/test_candles_body.py holds the answer to the serializer's, byte for byte."""
        if type(request.accepted_renderer) is not JSONRenderer or connection.vendor != "postgresql":
            # The browsable API renders the serializer's page, and the SQL below is PostgreSQL's:
            # on SQLite (the local default) the serializer writes the same body.
            return super().list(request, *args, **kwargs)
        paginator = self.paginator
        paginator.request = request
        paginator.limit = limit = paginator.get_limit(request)
        paginator.offset = offset = paginator.get_offset(request)
        # An offset past any asset's candles reads an empty page; capped, it also stays within the
        # database's bigint (the links still carry the offset asked for).
        offset = min(offset, MAX_OFFSET)
        # One candle past the page says whether there is more; when there is not, the count follows
        # from the page and the COUNT query (a scan of the asset's candles) is not needed.
        page = _candle_page_plain(request, self.kwargs["symbol"].upper(), limit + 1, offset)
        if page is None:
            queryset = self.filter_queryset(self.get_queryset())  # filter errors: the same 400s
            rows, count = (
                list(queryset.values_list(_CANDLE_JSON, flat=True)[offset : offset + limit + 1]),
                queryset.count,
            )
        else:
            rows, count = page
        paginator.count = count() if len(rows) > limit or (offset and not rows) else offset + len(rows)
        del rows[limit:]
        body = (
            f'{{"count":{paginator.count},"next":{_json(paginator.get_next_link())},'
            f'"previous":{_json(paginator.get_previous_link())},"results":[{",".join(rows)}]}}'
        )
        return HttpResponse(body, content_type="application/json")


# The usual request (a valid time range, default ordering or its reverse) in one plain query that
# finds the asset by symbol too: the asset's ORM query, django-filter's form and the ORM's compiler
# were two thirds of a 100-candle page's time. Anything else, and an empty page (is the asset
# unknown, or the range empty?), goes the filter set's way, which answers errors as before.
_TIME_PARAM = re.compile(r"\d{4}-\d\d-\d\d(?:T\d\d:\d\d:\d\d(?:\.\d{3}|\.\d{6})?(?:Z|[+-]\d\d:\d\d))?")
_OPERATORS = {"gte": ">=", "lte": "<=", "lt": "<"}
MAX_OFFSET = 2**62


def _time_param(text: str | None):
    """`start`/`end` as core.api.filters.UtcDayOrTimeField reads them, for the forms taken here;
    False for any other form (the filter set judges it)."""
    if not text:
        return None
    if not _TIME_PARAM.fullmatch(text):
        return False
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return False


def _candle_page_plain(request, symbol: str, limit: int, offset: int) -> tuple[list[str], Callable] | None:
    params = request.query_params
    ordering = params.get("ordering") or "open_time"
    start, end = _time_param(params.get("start")), _time_param(params.get("end"))
    if ordering not in ("open_time", "-open_time") or start is False or end is False:
        return None
    candle, asset = (connection.ops.quote_name(m._meta.db_table) for m in (Candle, Asset))
    interval = connection.ops.quote_name("interval")
    # The asset in scalar subqueries, not a join: the planner then reads the candles from the
    # (asset, interval, open_time) index in order; with a join it sorted every candle of the asset.
    where = (
        f"WHERE asset_id = (SELECT id FROM {asset} WHERE symbol = %s) "
        f"AND {interval} = (SELECT {interval} FROM {asset} WHERE symbol = %s)"
    )
    args = [symbol, symbol]
    for lookup, bound in time_range_lookups("open_time", start=start, end=end).items():
        where += f" AND open_time {_OPERATORS[lookup.rpartition('__')[2]]} %s"
        args.append(bound)
    direction = "DESC" if ordering.startswith("-") else "ASC"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_CANDLE_JSON.sql} FROM {candle} {where} ORDER BY open_time {direction} LIMIT %s OFFSET %s",
            [*args, limit, offset],
        )
        rows = [row[0] for row in cursor.fetchall()]
    if not rows:
        return None

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {candle} {where}", args)
            return cursor.fetchone()[0]

    return rows, count


class AssetForecastViewSet(WritesInTransaction, _PerAsset, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Stored forecasts, newest first; `latest/` is the one the pages show."""

    serializer_class = ForecastSerializer
    filterset_class = ForecastFilter
    ordering_fields = ["origin_time", "made_at"]
    ordering = ["-origin_time", "-kind", "-id"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Forecast.objects.none()
        return Forecast.objects.filter(asset=self.asset()).select_related("asset", "model_version")

    @extend_schema(summary="Get the forecast the asset page shows", responses=LatestForecastSerializer, filters=False)
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def latest(self, request, symbol=None):
        """The forecast serving now, picked and judged by the asset page's own selectors."""
        state = _latest_forecast_state(self.kwargs["symbol"].upper())
        if state is None:
            _asset(self.kwargs["symbol"])  # raises the 404 that names the symbol
        # The answer is cached as the JSON renderer's bytes: rendering the steps again on every hit
        # was the larger part of a hit's own time.
        key = "api:forecast-latest:3:" + hashlib.sha256(repr(state).encode()).hexdigest()
        body = cache.get(key)
        if body is None:
            asset = Asset.objects.get(id=state[0])
            champion, newest_version = model_versions_current(asset=asset)
            forecast = forecast_latest(asset=asset)
            if forecast is None:
                return error_response(f"{asset.symbol} has no forecast yet.", status_code=404, code="not_found")
            forecast.asset = asset  # already read: no second query for the symbol
            newest = (
                Candle.objects.filter(asset=asset, interval=asset.interval)
                .order_by("-open_time")
                .values_list("open_time", flat=True)
                .first()
            )
            staleness = forecast_staleness(forecast=forecast, newest_candle=newest, asset=asset)
            comparison = serving_comparison(
                asset=asset, champion=champion, newest_version=newest_version, forecast=forecast
            )
            data = LatestForecastSerializer(forecast, context={"staleness": staleness, "comparison": comparison}).data
            body = JSONRenderer().render(data)
            cache.set(key, body, LATEST_CACHE_SECONDS)
        if type(request.accepted_renderer) is JSONRenderer:
            return HttpResponse(body, content_type="application/json")
        return Response(json.loads(body))  # the browsable API


# The answer of `latest` is cached under a key made of everything it depends on, read in one SQL
# round trip: the asset, its champion, its newest version and that version's status (the
# comparison), the forecasts at its newest origin (a new forecast or a deletion there changes their
# count or largest id) and the newest candle (staleness). Picking
# the forecast with the selectors costs four ORM queries and most of the endpoint's time; the key
# costs one plain query. The expiry only bounds what an edit outside these (an admin changing a
# stored forecast in place) could leave behind.
LATEST_CACHE_SECONDS = 60


def _latest_forecast_state(symbol: str) -> tuple | None:
    asset, forecast = Asset._meta.db_table, Forecast._meta.db_table
    version, candle = ModelVersion._meta.db_table, Candle._meta.db_table
    newest_origin = f"(SELECT MAX(o.origin_time) FROM {forecast} o WHERE o.asset_id = a.id)"
    sql = f"""
        SELECT a.id, a.interval,
            (SELECT v.id || ':' || v.version FROM {version} v WHERE v.asset_id = a.id AND v.status = %s),
            (SELECT v.id || ':' || v.status FROM {version} v WHERE v.asset_id = a.id
              ORDER BY v.version DESC LIMIT 1),
            (SELECT COUNT(*) || ':' || MAX(f.id) FROM {forecast} f
              WHERE f.asset_id = a.id AND f.origin_time = {newest_origin}),
            (SELECT c.open_time FROM {candle} c WHERE c.asset_id = a.id AND c.interval = a.interval
              ORDER BY c.open_time DESC LIMIT 1)
        FROM {asset} a WHERE a.symbol = %s"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [ModelVersion.Status.CHAMPION.value, symbol])
        row = cursor.fetchone()
    return None if row is None else tuple(str(v) for v in row)


class AssetModelVersionViewSet(WritesInTransaction, _PerAsset, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    filterset_fields = ["status"]
    ordering_fields = ["version", "created_at"]
    ordering = ["-version"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        return ModelVersion.objects.filter(asset=self.asset()).select_related("asset")


class AssetTrainingRunViewSet(WritesInTransaction, _PerAsset, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainingRunSerializer
    filterset_fields = ["status"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TrainingRun.objects.none()
        return TrainingRun.objects.filter(asset=self.asset()).select_related("asset", "model_version")


class TrainingRunViewSet(WritesInTransaction, NamedObjects, viewsets.ReadOnlyModelViewSet):
    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related("asset", "model_version")
    filterset_fields = ["status"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]


class ModelVersionViewSet(
    WritesInTransaction, NamedObjects, mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet
):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.select_related("asset")
    filterset_fields = ["status"]
    ordering_fields = ["created_at", "version"]
    ordering = ["-created_at"]

    @extend_schema(
        summary="Make this version the champion", request=None, responses={200: ModelVersionSerializer, 409: CONFLICT}
    )
    @action(detail=True, methods=["post"], permission_classes=[CanChangeChampion])
    def promote(self, request, pk=None):
        version = self.get_object()
        try:
            version = model_version_promote(version=version)
        except ModelVersionError as exc:
            return error_response(str(exc), status_code=409, code="conflict")
        return Response(ModelVersionSerializer(version).data)
