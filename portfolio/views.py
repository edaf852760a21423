"""Portfolio pages. Every object is looked up through request.user, so another person's portfolio
or transaction answers 404 rather than revealing that it exists."""

from __future__ import annotations

import uuid
from datetime import UTC
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from core.formatting import decimal_string
from core.times import datetime_to_ms
from forecasting.binance import BinanceError
from forecasting.models import Asset
from forecasting.selectors.market_data import candle_at, data_is_old
from forecasting.services.market_data import MarketDataError, asset_track

from . import selectors, services, transactions_csv
from .exchange import services as exchange_services
from .forms import (
    CSV_COLUMNS_HELP,
    CsvImportForm,
    ExchangeConnectionForm,
    PortfolioForm,
    PriceAtForm,
    TransactionFilterForm,
    TransactionForm,
    add_service_errors,
)
from .models import ExchangeConnection, Portfolio, Transaction
from .valuation import FORECAST_METHOD, HOLDING_RETURN_METHOD

TRANSACTIONS_PER_PAGE = 50
Q8 = Decimal("1e-8")
RETURN_LABELS = {
    "24h": "24 hours",
    "7d": "7 days",
    "30d": "30 days",
    "ytd": "Year to date",
    "1y": "1 year",
    "all": "Since start",
}


def _own_portfolio(request, pk: int) -> Portfolio:
    return get_object_or_404(request.user.portfolios, pk=pk)


def _own_transaction(request, pk: int, tx_id: int) -> Transaction:
    return get_object_or_404(
        Transaction.objects.select_related("asset", "portfolio"),
        pk=tx_id,
        portfolio_id=pk,
        portfolio__owner=request.user,
    )


def _quote(summary) -> str:
    """The currency values are in, when every holding shares one quote asset."""
    quotes = {h.asset.quote_asset for h in summary.holdings + summary.closed if h.asset}
    return quotes.pop() if len(quotes) == 1 else ""


# --- dashboard ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request):
    form = PortfolioForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            portfolio = services.portfolio_create(owner=request.user, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"Portfolio “{portfolio.name}” created. Add its first transaction.")
            return redirect("portfolio:detail", pk=portfolio.pk)
    rows = [
        {"portfolio": p, "summary": s, "quote": _quote(s)} for p, s in selectors.portfolio_summaries(user=request.user)
    ]
    age = _data_age([h for row in rows for h in row["summary"].holdings])
    return render(request, "portfolio/dashboard.html", {"rows": rows, "form": form, "data_age": age})


def _data_age(holdings) -> dict | None:
    """The held asset with the oldest newest candle, as the data-age line shows it (the include's
    `price`: open and close time, and whether it is older than a few intervals)."""
    priced = [h for h in holdings if h.price_time is not None and h.asset is not None]
    if not priced:
        return None
    stalest = min(priced, key=lambda h: h.price_time + h.asset.interval_delta)
    closed = stalest.price_time + stalest.asset.interval_delta
    return {
        "open_time": stalest.price_time,
        "close_time": closed,
        "old": data_is_old(age=timezone.now() - closed, interval=stalest.asset.interval_delta),
        "symbol": stalest.asset.symbol,
    }


# --- portfolio page -----------------------------------------------------------------------------


def _chart_data(detail: dict) -> dict:
    summary, forecast = detail["summary"], detail["forecast"]
    data = {
        "allocation": [
            {"label": a["symbol"], "value": decimal_string(a["value"]), "share": decimal_string(a["share"])}
            for a in summary.allocation()
        ],
        "history": [
            {
                "t": datetime_to_ms(p["t"]),
                "value": decimal_string(p["value"]),
                "invested": decimal_string(p["invested"]),
            }
            for p in detail["history"]
        ],
        "forecast": None,
    }
    if forecast:
        data["forecast"] = {
            "start": {"t": datetime_to_ms(forecast["start"]["t"]), "value": decimal_string(forecast["start"]["value"])},
            "points": [
                {
                    "t": datetime_to_ms(parse_datetime(p["t"]) if isinstance(p["t"], str) else p["t"]),
                    "low": decimal_string(p["low"]),
                    "median": decimal_string(p["median"]),
                    "high": decimal_string(p["high"]),
                }
                for p in forecast["points"]
            ],
        }
    return data


def _filtered_transactions(portfolio: Portfolio, form: TransactionFilterForm):
    transactions = portfolio.transactions.select_related("asset")
    if not form.is_valid():
        return transactions
    data = form.cleaned_data
    return selectors.transactions_filter(
        transactions=transactions, symbol=data["asset"], kind=data["kind"], start=data["date_from"], end=data["date_to"]
    )


@login_required
def portfolio_detail(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    detail = selectors.portfolio_detail(portfolio=portfolio)
    summary = detail["summary"]
    symbols = sorted({h.asset.symbol for h in summary.holdings + summary.closed if h.asset})
    filters = TransactionFilterForm(request.GET or None, symbols=symbols)
    page = Paginator(_filtered_transactions(portfolio, filters), TRANSACTIONS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    returns = [{"key": key, "label": label, **detail["returns"].get(key, {})} for key, label in RETURN_LABELS.items()]
    forecast = detail["forecast"]
    connections = list(selectors.exchange_connection_list(portfolio=portfolio))
    return render(
        request,
        "portfolio/detail.html",
        {
            "portfolio": portfolio,
            "detail": detail,
            "summary": summary,
            "quote": _quote(summary),
            "returns": returns,
            "forecast": forecast,
            "forecast_baseline": bool(forecast and "baseline" in forecast["kinds"]),
            "forecast_cover": _forecast_cover(forecast) if forecast else "",
            "data_age": _data_age(summary.holdings),
            "charts": _chart_data(detail),
            "filters": filters,
            "filtered": bool(filters.is_bound and filters.is_valid() and any(filters.cleaned_data.values())),
            "page": page,
            "forecast_method": FORECAST_METHOD,
            "holding_return_method": HOLDING_RETURN_METHOD,
            "connections": connections,
            "sync_running": any(c.sync_status == ExchangeConnection.SyncStatus.RUNNING for c in connections),
        },
    )


def _forecast_cover(forecast: dict) -> str:
    """Which share of the value a model forecasts, and what covers the rest, in one sentence."""

    def pct(share: float) -> str:
        return f"{share:.0%}" if share >= 0.005 or share == 0 else "under 1%"

    if forecast["model_share"] >= 0.9995:
        return "A trained model forecasts every holding."
    parts = []
    if forecast["model_share"]:
        by_model = ", ".join(forecast["by_model"])
        parts.append(f"a trained model forecasts {pct(forecast['model_share'])} of this value ({by_model})")
    else:
        parts.append("no trained model serves any holding yet")
    if forecast["baseline_share"]:
        parts.append(f"the statistical baseline band covers {pct(forecast['baseline_share'])}")
    if forecast["flat_share"]:
        parts.append(f"{pct(forecast['flat_share'])} has no forecast yet and is counted at its last price")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


@login_required
@require_http_methods(["GET", "POST"])
def portfolio_edit(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    form = PortfolioForm(request.POST or None, initial={"name": portfolio.name, "description": portfolio.description})
    if request.method == "POST" and form.is_valid():
        try:
            services.portfolio_update(portfolio=portfolio, **form.cleaned_data)
        except ValidationError as exc:
            form.add_service_errors(exc)
            portfolio.refresh_from_db()
        else:
            messages.success(request, "Portfolio saved.")
            return redirect("portfolio:detail", pk=portfolio.pk)
    return render(request, "portfolio/portfolio_form.html", {"portfolio": portfolio, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def portfolio_delete(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    if request.method == "POST":
        name = portfolio.name
        portfolio.delete()
        messages.success(request, f"Portfolio “{name}” and its transactions were deleted.")
        return redirect("portfolio:dashboard")
    count = portfolio.transactions.count()
    return render(request, "portfolio/portfolio_confirm_delete.html", {"portfolio": portfolio, "count": count})


# --- transactions -------------------------------------------------------------------------------


def _asset_for(request, form: TransactionForm, current: Asset | None = None) -> Asset | None:
    """The form's asset; an untracked symbol is tracked only when the person ticked the box."""
    symbol = form.cleaned_data["symbol"]
    asset = Asset.objects.filter(symbol=symbol).first()
    # An edit may keep an asset that was untracked since; a new choice must be tracked.
    if asset is not None and (asset.tracked or asset == current):
        return asset
    if not form.cleaned_data["track"]:
        form.offer_tracking(
            symbol,
            f"{symbol} is not tracked yet. Tick “Track {symbol}” below and save "
            f"again to start tracking it (its prices come from Binance).",
        )
        return None
    try:
        asset = asset_track(symbol=symbol, requested_by=request.user)
    except (BinanceError, MarketDataError, ValueError) as exc:
        form.offer_tracking(symbol, f"Could not track {symbol}: {exc}")
        return None
    from forecasting.tasks import candles_refresh_task

    # Fetch its candles now rather than at the next scheduled refresh, once the tracking is stored.
    # robust: with the task queue down the scheduled refresh fetches them instead (logged).
    transaction.on_commit(lambda: candles_refresh_task.delay(asset.id), robust=True)
    messages.info(request, f"Now tracking {symbol}; its prices arrive with the first refresh.")
    return asset


def _form_context(portfolio: Portfolio, form: TransactionForm, tx: Transaction | None = None) -> dict:
    return {
        "portfolio": portfolio,
        "form": form,
        "tx": tx,
        "tracked": Asset.objects.filter(tracked=True).values_list("symbol", flat=True),
    }


FIELDS = ("kind", "quantity", "unit_price", "fee", "executed_at", "note")


@login_required
@require_http_methods(["GET", "POST"])
def transaction_add(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    # Now, to the minute: most transactions are entered as they happen (the field is in UTC, as
    # is every time on the site).
    now = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    initial = {"kind": Transaction.Kind.BUY, "fee": 0, "submission_key": uuid.uuid4().hex, "executed_at": now}
    if request.GET.get("symbol"):
        initial["symbol"] = request.GET["symbol"]
    form = TransactionForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        asset = _asset_for(request, form)
        if asset is not None:
            try:
                tx = services.transaction_create(
                    portfolio=portfolio,
                    asset=asset,
                    submission_key=form.cleaned_data["submission_key"],
                    **{f: form.cleaned_data[f] for f in FIELDS},
                )
            except ValidationError as exc:
                add_service_errors(form, exc, rename={"asset": "symbol"})
            else:
                messages.success(
                    request, f"Added: {tx.get_kind_display().lower()} of {tx.quantity.normalize():f} {asset.symbol}."
                )
                return redirect("portfolio:detail", pk=portfolio.pk)
    return render(request, "portfolio/transaction_form.html", _form_context(portfolio, form))


@login_required
@require_http_methods(["GET", "POST"])
def transaction_edit(request, pk: int, tx_id: int):
    tx = _own_transaction(request, pk, tx_id)
    portfolio = tx.portfolio
    form = TransactionForm(
        request.POST or None,
        initial={
            "symbol": tx.asset.symbol,
            "kind": tx.kind,
            "quantity": f"{tx.quantity.normalize():f}",
            "unit_price": f"{tx.unit_price.normalize():f}",
            "fee": f"{tx.fee.normalize():f}",
            "executed_at": tx.executed_at,
            "note": tx.note,
        },
    )
    if request.method == "POST" and form.is_valid():
        asset = _asset_for(request, form, current=tx.asset)
        if asset is not None:
            fields = {f: form.cleaned_data[f] for f in FIELDS}
            # The input shows whole seconds: an unchanged time keeps its stored fraction.
            if fields["executed_at"] == tx.executed_at.replace(microsecond=0):
                fields["executed_at"] = tx.executed_at
            try:
                services.transaction_update(tx=tx, asset=asset, **fields)
            except ValidationError as exc:
                add_service_errors(form, exc, rename={"asset": "symbol"})
            else:
                messages.success(request, "Transaction saved.")
                return redirect("portfolio:detail", pk=portfolio.pk)
    return render(request, "portfolio/transaction_form.html", _form_context(portfolio, form, tx))


@login_required
@require_http_methods(["GET", "POST"])
def transaction_delete(request, pk: int, tx_id: int):
    tx = _own_transaction(request, pk, tx_id)
    errors = []
    if request.method == "POST":
        try:
            services.transaction_delete(tx=tx)
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(request, "Transaction deleted.")
            return redirect("portfolio:detail", pk=pk)
    return render(
        request, "portfolio/transaction_confirm_delete.html", {"portfolio": tx.portfolio, "tx": tx, "errors": errors}
    )


@login_required
@require_GET
def price_at(request):
    """The unit price the transaction form offers for a symbol and time: the close of the stored
    candle at that time (forecasting's candle_at). Market data, so anyone signed in may ask."""
    form = PriceAtForm(request.GET)
    if not form.is_valid():
        fields = {name: [str(m) for m in errors] for name, errors in form.errors.items()}
        name, first = next(iter(fields.items()))
        return JsonResponse({"error": f"{name}: {first[0]}", "fields": fields}, status=400)
    symbol, when = form.cleaned_data["symbol"], form.cleaned_data["time"].astimezone(UTC)
    asset = Asset.objects.filter(symbol=symbol).first()
    if asset is None:
        return JsonResponse({"error": f"No prices are stored for {symbol}."}, status=404)
    candle = candle_at(asset=asset, when=when)
    if candle is None:
        return JsonResponse(
            {"error": f"No {symbol} candle is stored at or before {when:%Y-%m-%d %H:%M} UTC."}, status=404
        )
    opened = candle.open_time.astimezone(UTC)
    source = f"Filled from the {symbol} {candle.interval} candle of {opened:%Y-%m-%d %H:%M} UTC (close)"
    if when > candle.close_time:  # after the newest candle, or in a gap of the data
        source += ", the newest stored before that time"
    return JsonResponse(
        {
            "symbol": symbol,
            "quote": asset.quote_asset,
            "interval": candle.interval,
            "price": decimal_string(candle.close, trim=True),
            "open_time": candle.open_time,
            "close_time": candle.close_time,
            "source": f"{source}. You can change it.",
        }
    )


# --- CSV ----------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def transactions_import(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    form = CsvImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        try:
            report = transactions_csv.transactions_import_csv(portfolio=portfolio, text=form.cleaned_data["file"])
        except transactions_csv.CsvImportError as exc:
            report = exc.report
        else:
            note = f"Imported {report.created} transaction{'s' if report.created != 1 else ''}."
            if report.duplicates:
                note += (
                    f" {len(report.duplicates)} already in the portfolio and skipped (line"
                    f"{'s' if len(report.duplicates) > 1 else ''} {', '.join(map(str, report.duplicates))})."
                )
            messages.success(request, note)
            return redirect("portfolio:detail", pk=portfolio.pk)
    return render(
        request,
        "portfolio/import.html",
        {
            "portfolio": portfolio,
            "form": form,
            "report": report,
            "columns": CSV_COLUMNS_HELP,
            "header": ",".join(transactions_csv.CSV_COLUMNS),
        },
    )


@login_required
def transactions_export(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    text = transactions_csv.transactions_export_csv(portfolio=portfolio)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    name = slugify(portfolio.name) or f"portfolio-{portfolio.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}-transactions.csv"'
    return response


# --- exchange connections -----------------------------------------------------------------------


def _own_connection(request, pk: int, connection_id: int) -> ExchangeConnection:
    return get_object_or_404(
        ExchangeConnection.objects.select_related("portfolio"),
        pk=connection_id,
        portfolio_id=pk,
        portfolio__owner=request.user,
    )


@login_required
@require_http_methods(["GET", "POST"])
def connection_add(request, pk: int):
    portfolio = _own_portfolio(request, pk)
    form = ExchangeConnectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            exchange_services.connection_create(portfolio=portfolio, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, "Binance account connected; its first sync is queued.")
            return redirect(reverse("portfolio:detail", args=[portfolio.pk]) + "#connections")
    return render(request, "portfolio/connection_form.html", {"portfolio": portfolio, "form": form})


# A GET is refused (405) for everyone before sign-in is asked for, as signing out is.
@require_http_methods(["POST"])
@login_required
def connection_sync(request, pk: int, connection_id: int):
    connection = _own_connection(request, pk, connection_id)
    if exchange_services.connection_sync_request(connection=connection):
        messages.success(request, "Sync queued; its progress shows below.")
    else:
        messages.info(request, "A sync of this connection is already queued or running.")
    return redirect(reverse("portfolio:detail", args=[pk]) + "#connections")


@login_required
@require_http_methods(["GET", "POST"])
def connection_delete(request, pk: int, connection_id: int):
    connection = _own_connection(request, pk, connection_id)
    if request.method == "POST":
        exchange_services.connection_delete(connection=connection)
        messages.success(request, "Connection removed with its key; the imported transactions stay.")
        return redirect(reverse("portfolio:detail", args=[pk]) + "#connections")
    return render(
        request,
        "portfolio/connection_confirm_delete.html",
        {"portfolio": connection.portfolio, "connection": connection},
    )
