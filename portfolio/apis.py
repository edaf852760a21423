"""Portfolios and transactions under /api/v1/, always scoped to the signed-in owner
(another user's object is a 404). Reads go through the same selectors as the pages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django_filters import rest_framework as filters
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response

from core.api.exceptions import error_response, not_found
from core.api.filters import TimeRangeFilter
from core.api.mixins import NamedObjects, WritesInTransaction
from core.api.serializers import DecimalField, ModelSerializer
from core.formatting import decimal_string
from forecasting.models import SYMBOL_RE, Asset

from . import selectors, services
from .exchange import services as exchange_services
from .models import ExchangeConnection, Portfolio, Transaction
from .transactions_csv import (
    MAX_CSV_BYTES,
    MAX_CSV_MB,
    CsvImportError,
    CsvUploadError,
    csv_upload_text,
    transactions_import_csv,
)
from .valuation import COST_BASIS_METHOD, FORECAST_METHOD

DEC = {"max_digits": 28, "decimal_places": 8}
# Computed sums (value = quantity x price) may have more whole digits than any stored column.
MONEY = {"max_digits": None, "decimal_places": 8}


def _dec(value) -> str | None:
    """Computed sums by the rule of every decimal of the API (core.api.serializers.DecimalField)."""
    return decimal_string(value, trim=True)


def _time(value):
    """Forecast steps keep their target times as ISO strings: answered as datetimes, like every time."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


class CsvTextParser(BaseParser):
    """A CSV file sent as the raw body (`Content-Type: text/csv`), e.g. `curl --data-binary @file.csv`."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read(MAX_CSV_BYTES + 1) if stream is not None else b""
        return {"csv": data}


class PortfolioSerializer(ModelSerializer):
    class Meta:
        model = Portfolio
        fields = ["id", "name", "description", "created_at"]
        read_only_fields = ["id", "created_at"]


class SymbolField(serializers.SlugRelatedField):
    """An asset by its symbol; text that cannot be a symbol (a NUL, which PostgreSQL would fail on,
    among others) is refused before the lookup."""

    default_error_messages = {
        **serializers.SlugRelatedField.default_error_messages,
        "not_a_symbol": "A Binance symbol is 2 to 20 letters and digits, e.g. BTCUSDT.",
        "does_not_exist": "{value} is not tracked; /api/v1/assets/ lists the tracked assets (add a first "
        "transaction of a new pair on the site to start tracking it).",
    }

    def to_internal_value(self, data):
        if isinstance(data, str) and not SYMBOL_RE.fullmatch(data):
            self.fail("not_a_symbol")
        return super().to_internal_value(data)


class TransactionSerializer(ModelSerializer):
    symbol = SymbolField(
        source="asset",
        slug_field="symbol",
        queryset=Asset.objects.all(),
        help_text="A tracked Binance symbol such as BTCUSDT.",
    )
    quantity = DecimalField(**DEC)
    unit_price = DecimalField(**DEC, required=False, default=Decimal("0"))
    fee = DecimalField(**DEC, required=False, default=Decimal("0"))
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    class Meta:
        model = Transaction
        fields = [
            "id",
            "symbol",
            "kind",
            "quantity",
            "unit_price",
            "fee",
            "executed_at",
            "note",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("symbol"), str):
            data = {**data, "symbol": data["symbol"].strip().upper()}
        return super().to_internal_value(data)


class TransactionFilter(filters.FilterSet):
    symbol = filters.CharFilter(field_name="asset__symbol", lookup_expr="iexact")
    kind = filters.ChoiceFilter(choices=Transaction.Kind.choices)
    start = TimeRangeFilter(
        field_name="executed_at", side="start", label="executed from: an ISO 8601 time, or a date for its whole UTC day"
    )
    end = TimeRangeFilter(
        field_name="executed_at",
        side="end",
        label="executed until (included): an ISO 8601 time, or a date for its whole UTC day",
    )

    def filter_queryset(self, queryset):
        # The page's filter, by the same selector: the same query means the same rows.
        data = self.form.cleaned_data
        return selectors.transactions_filter(
            transactions=queryset,
            symbol=data.get("symbol") or "",
            kind=data.get("kind") or "",
            start=data.get("start"),
            end=data.get("end"),
        )


def _money(**kwargs):
    return DecimalField(**MONEY, **kwargs)


HOLDING_FIELDS = {
    "symbol": serializers.CharField(),
    "quantity": DecimalField(**DEC),
    "average_cost": _money(allow_null=True),
    "cost": _money(),
    "price": DecimalField(**DEC, allow_null=True),
    "price_time": serializers.DateTimeField(allow_null=True),
    "value": _money(allow_null=True),
    "unrealized_pnl": _money(allow_null=True),
    "realized_pnl": _money(),
    "total_pnl": _money(allow_null=True),
    "allocation_pct": _money(allow_null=True),
}
RETURN_FIELDS = {
    "start": serializers.DateTimeField(),
    "gain": _money(),
    "pct": _money(allow_null=True, help_text="Percent; null when the base is not positive."),
}


CSV_EXAMPLE = (
    "executed_at,kind,symbol,quantity,unit_price,fee,note\n2024-03-01T14:30:00Z,buy,BTCUSDT,0.05,61000,1.5,first buy\n"
)


def _example(name: str, value, **kwargs) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True, **kwargs)


@extend_schema_view(
    create=extend_schema(examples=[_example("A portfolio", {"name": "Long term", "description": "Held for years."})])
)
class PortfolioViewSet(WritesInTransaction, NamedObjects, viewsets.ModelViewSet):
    serializer_class = PortfolioSerializer
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
    filterset_fields = []
    filterset_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Portfolio.objects.none()
        return Portfolio.objects.filter(owner=self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.portfolio_create(owner=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        data = {
            "name": serializer.instance.name,
            "description": serializer.instance.description,
            **serializer.validated_data,
        }
        serializer.instance = services.portfolio_update(portfolio=serializer.instance, **data)

    @extend_schema(
        summary="Get a portfolio's holdings and totals",
        responses=inline_serializer(
            "Holdings",
            {
                "as_of": serializers.DateTimeField(allow_null=True),
                "value": _money(),
                "cost": _money(),
                "realized_pnl": _money(),
                "unrealized_pnl": _money(),
                "total_pnl": _money(),
                "change_24h": _money(allow_null=True),
                "cost_basis_method": serializers.CharField(),
                "missing_prices": serializers.ListField(child=serializers.CharField()),
                "holdings": inline_serializer("Holding", HOLDING_FIELDS, many=True),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def holdings(self, request, pk=None):
        summary = selectors.portfolio_summary(portfolio=self.get_object())
        shares = {row["symbol"]: row["share"] for row in summary.allocation()}
        times = [h.price_time for h in summary.holdings if h.price_time]
        return Response(
            {
                "as_of": max(times) if times else None,
                "value": _dec(summary.value),
                "cost": _dec(summary.cost),
                "realized_pnl": _dec(summary.realized),
                "unrealized_pnl": _dec(summary.unrealized),
                "total_pnl": _dec(summary.total_pnl),
                "change_24h": _dec(summary.change_24h),
                "cost_basis_method": COST_BASIS_METHOD,
                "missing_prices": summary.missing_prices,
                "holdings": [
                    {
                        "symbol": h.asset.symbol,
                        "quantity": _dec(h.quantity),
                        "average_cost": _dec(h.position.average_cost),
                        "cost": _dec(h.position.cost),
                        "price": _dec(h.price),
                        "price_time": h.price_time,
                        "value": _dec(h.value),
                        "unrealized_pnl": _dec(h.unrealized),
                        "realized_pnl": _dec(h.position.realized),
                        "total_pnl": _dec(h.total_pnl),
                        "allocation_pct": _dec(shares.get(h.asset.symbol)),
                    }
                    for h in summary.holdings + summary.closed
                ],
            }
        )

    @extend_schema(
        summary="Get a portfolio's returns and value history",
        responses=inline_serializer(
            "Performance",
            {
                "as_of": serializers.DateTimeField(allow_null=True),
                "return_method": serializers.CharField(),
                "returns": serializers.DictField(
                    child=inline_serializer("PeriodReturn", RETURN_FIELDS),
                    help_text="Per period (24h, 7d, 30d, ytd, 1y, all) that has data.",
                ),
                "value_history": inline_serializer(
                    "ValuePoint", {"t": serializers.DateTimeField(), "value": _money(), "invested": _money()}, many=True
                ),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def performance(self, request, pk=None):
        detail = selectors.portfolio_detail(portfolio=self.get_object())
        return Response(
            {
                "as_of": detail["as_of"],
                "return_method": detail["return_method"],
                "returns": {
                    k: {"start": v["start"], "gain": _dec(v["gain"]), "pct": _dec(v["pct"])}
                    for k, v in detail["returns"].items()
                },
                "value_history": [
                    {"t": p["t"], "value": _dec(p["value"]), "invested": _dec(p["invested"])} for p in detail["history"]
                ],
            }
        )

    @extend_schema(
        summary="Get a portfolio's projected value",
        responses=inline_serializer(
            "PortfolioForecast",
            {
                "method": serializers.CharField(),
                "made_at": serializers.DateTimeField(allow_null=True),
                "age_seconds": serializers.FloatField(allow_null=True),
                "stale": serializers.BooleanField(),
                "kinds": serializers.ListField(child=serializers.CharField()),
                "without_forecast": serializers.ListField(child=serializers.CharField()),
                "points": inline_serializer(
                    "ForecastPoint",
                    {"t": serializers.DateTimeField(), "low": _money(), "median": _money(), "high": _money()},
                    many=True,
                ),
            },
        ),
    )
    @action(detail=True, methods=["get"])
    def forecast(self, request, pk=None):
        # The holdings and their newest forecasts only: the page's value history is not needed here.
        fc = selectors.portfolio_projection(portfolio=self.get_object())
        if fc is None:
            return Response(
                {
                    "method": FORECAST_METHOD,
                    "made_at": None,
                    "age_seconds": None,
                    "stale": False,
                    "kinds": [],
                    "without_forecast": [],
                    "points": [],
                }
            )
        return Response(
            {
                "method": fc["method"],
                "made_at": fc["oldest_made_at"],
                "age_seconds": fc["age"].total_seconds(),
                "stale": fc["stale"],
                "kinds": fc["kinds"],
                "without_forecast": fc["without_forecast"],
                "points": [
                    {"t": _time(p["t"]), "low": _dec(p["low"]), "median": _dec(p["median"]), "high": _dec(p["high"])}
                    for p in fc["points"]
                ],
            }
        )

    @extend_schema(
        summary="Import transactions from a CSV file",
        request={
            "multipart/form-data": inline_serializer("CsvUpload", {"file": serializers.FileField()}),
            "text/csv": {"type": "string"},
        },
        responses={
            201: inline_serializer(
                "CsvImported",
                {
                    "created": serializers.IntegerField(),
                    "duplicates": serializers.ListField(child=serializers.IntegerField()),
                },
            ),
            413: OpenApiResponse(description=f"The file is larger than {MAX_CSV_MB} MB."),
        },
        examples=[_example("A CSV file", CSV_EXAMPLE, media_type="text/csv")],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import-csv",
        parser_classes=[MultiPartParser, FormParser, CsvTextParser],
    )
    def import_csv(self, request, pk=None):
        """All or nothing, as on the page: every bad line is listed in `error.fields.lines`.
        Send the file as multipart field `file`, or as the raw body with `Content-Type: text/csv`."""
        portfolio = self.get_object()
        if "csv" in request.data and not hasattr(request.data, "getlist"):
            data = request.data["csv"]
        else:
            upload = request.FILES.get("file")
            if upload is None:
                return error_response(
                    "Send the CSV as a multipart form field named 'file', or as the body with Content-Type: text/csv.",
                    fields={"file": ["This field is required."]},
                )
            data = upload.read(MAX_CSV_BYTES + 1)
        try:
            text = csv_upload_text(data)
            report = transactions_import_csv(portfolio=portfolio, text=text)
        except CsvUploadError as exc:
            if exc.too_large:
                return error_response(exc.message, status_code=413, code="too_large")
            return error_response(exc.message, fields={"file": [exc.message]})
        except CsvImportError as exc:
            return error_response(
                f"{len(exc.report.errors)} bad line(s); nothing was imported.", fields={"lines": exc.report.errors}
            )
        return Response({"created": report.created, "duplicates": report.duplicates}, status=status.HTTP_201_CREATED)


TX_EXAMPLE = {
    "symbol": "BTCUSDT",
    "kind": "buy",
    "quantity": "0.05",
    "unit_price": "61000",
    "fee": "1.5",
    "executed_at": "2024-03-01T14:30:00Z",
    "note": "first buy",
}


@extend_schema_view(
    create=extend_schema(examples=[_example("A buy", TX_EXAMPLE)]),
    update=extend_schema(examples=[_example("A buy", TX_EXAMPLE)]),
    partial_update=extend_schema(examples=[_example("A note", {"note": "moved to cold storage"})]),
)
class TransactionViewSet(WritesInTransaction, NamedObjects, viewsets.ModelViewSet):
    serializer_class = TransactionSerializer
    filterset_class = TransactionFilter
    ordering_fields = ["executed_at", "created_at"]
    ordering = ["-executed_at", "-id"]

    def portfolio(self) -> Portfolio:
        if not hasattr(self, "_portfolio"):
            pk = self.kwargs["portfolio_pk"]
            self._portfolio = Portfolio.objects.filter(id=pk, owner=self.request.user).first()
            if self._portfolio is None:  # another user's too: it does not exist for this one
                raise not_found("portfolio", "id", pk)
        return self._portfolio

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Transaction.objects.none()
        return Transaction.objects.filter(portfolio=self.portfolio()).select_related("asset")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.transaction_create(portfolio=self.portfolio(), **data)

    def perform_update(self, serializer):
        serializer.instance = services.transaction_update(tx=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.transaction_delete(tx=instance)


class ExchangeConnectionSerializer(ModelSerializer):
    """A connection as its owner sees it: the key only by its last four characters, the secret
    write-only (never answered)."""

    api_key = serializers.CharField(write_only=True, max_length=128, help_text="The Binance API key (read-only).")
    api_secret = serializers.CharField(
        write_only=True, max_length=128, style={"input_type": "password"}, help_text="Its secret; never shown again."
    )

    class Meta:
        model = ExchangeConnection
        fields = [
            "id",
            "exchange",
            "label",
            "api_key",
            "api_secret",
            "key_last4",
            "state",
            "message",
            "sync_status",
            "progress_done",
            "progress_total",
            "progress_note",
            "last_sync_at",
            "last_good_sync_at",
            "imported",
            "created_at",
        ]
        read_only_fields = [f for f in fields if f not in ("label", "api_key", "api_secret")]


@extend_schema_view(
    create=extend_schema(
        summary="Connect a Binance account",
        description="Binance is asked for the key's permissions first: a key that can trade, withdraw or "
        "transfer is refused (400, saying how to make a read-only one). A first sync is queued.",
    ),
)
class ExchangeConnectionViewSet(
    WritesInTransaction,
    NamedObjects,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """A portfolio's Binance connections (owner only; another user's are a 404). A key cannot be
    changed: delete the connection and add the new key."""

    serializer_class = ExchangeConnectionSerializer
    object_name = "exchange connection"
    filterset_class = None
    ordering = ["created_at", "id"]

    def portfolio(self) -> Portfolio:
        if not hasattr(self, "_portfolio"):
            pk = self.kwargs["portfolio_pk"]
            self._portfolio = Portfolio.objects.filter(id=pk, owner=self.request.user).first()
            if self._portfolio is None:
                raise not_found("portfolio", "id", pk)
        return self._portfolio

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not getattr(self, "swagger_fake_view", False):
            self.portfolio()  # another user's portfolio is a 404 before the body is read

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExchangeConnection.objects.none()
        return selectors.exchange_connection_list(portfolio=self.portfolio())

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = exchange_services.connection_create(
            portfolio=self.portfolio(),
            api_key=data["api_key"],
            api_secret=data["api_secret"],
            label=data.get("label", ""),
        )

    def perform_destroy(self, instance):
        exchange_services.connection_delete(connection=instance)

    @extend_schema(
        request=None,
        summary="Sync now",
        responses={
            202: ExchangeConnectionSerializer,
            409: OpenApiResponse(description="A sync is queued or running already; see `error.message`."),
        },
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, portfolio_pk=None, pk=None):
        """Queue a sync now (202); 409 while one is queued or running."""
        connection = self.get_object()
        if not exchange_services.connection_sync_request(connection=connection):
            return error_response(
                "A sync of this connection is already queued or running.", status_code=409, code="conflict"
            )
        connection.refresh_from_db()
        return Response(self.get_serializer(connection).data, status=status.HTTP_202_ACCEPTED)
