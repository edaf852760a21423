import re

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, render

from core.formatting import percent_text, price_text
from core.times import ms_to_datetime

from .metrics import metric_headings, metric_rows, metric_text
from .models import SYMBOL_URL_REGEX, Asset, Forecast, ModelVersion, TrainingRun
from .selectors.comparison import serving_comparison
from .selectors.forecasts import (
    AHEAD_CHOICES,
    STALE_AFTER_CANDLES,
    backtest_track_record,
    forecast_chart_points,
    forecast_latest,
    forecast_staleness,
    forecast_track_record,
    model_versions_current,
    training_run_latest,
)
from .selectors.market_data import RANGES, PriceNow, price_history, prices_now
from .selectors.overview import SORTS, assets_overview
from .selectors.schedules import asset_next_runs


def _asset_or_404(symbol: str) -> Asset:
    # Symbols are letters and digits; anything else is no asset (and a NUL would make PostgreSQL fail).
    if not re.fullmatch(SYMBOL_URL_REGEX, symbol):
        raise Http404("No such asset.")
    return get_object_or_404(Asset, symbol=symbol.upper())


@login_required
def asset_list(request):
    query = request.GET.get("q", "")[:40]
    sort = request.GET.get("sort", "symbol")
    if sort.lstrip("-") not in SORTS:
        sort = "symbol"
    rows = assets_overview(query=query, sort=sort)
    columns = [("symbol", "Asset"), ("change", "24h change"), ("forecast", "Forecast, 24h")]
    headers = []
    for key, label in columns:
        current = sort.lstrip("-") == key
        descending = current and sort.startswith("-")
        headers.append(
            {
                "key": key,
                "label": label,
                # A click on the sorted column reverses it; on another, sorts by it ascending.
                "next": f"-{key}" if current and not descending else key,
                "aria_sort": ("descending" if descending else "ascending") if current else "none",
            }
        )
    items = [
        {
            "row": row,
            "price": _headline(row.price),
            "median": _price(row.median) if row.median is not None else None,
            "low": _price(row.low) if row.low is not None else None,
            "high": _price(row.high) if row.high is not None else None,
            "forecast_change": percent_text(row.forecast_change_pct * 100, signed=True)
            if row.forecast_change_pct is not None
            else None,
            "forecast_direction": _direction(row.forecast_change_pct),
        }
        for row in rows
    ]
    # Always said, as on every page with prices: the stalest asset's age, a warning when it is old.
    priced = [item["row"] for item in items if item["row"].price]
    stalest = min(priced, key=lambda row: row.price.close_time, default=None)
    context = {
        "items": items,
        "headers": headers,
        "query": query,
        "sort": sort,
        "oldest": stalest.price if stalest else None,
        "oldest_label": "the oldest of these" if len(priced) > 1 else (stalest.asset.symbol if stalest else ""),
    }
    return render(request, "forecasting/asset_list.html", context)


# The asset page opens on a week: the day-ahead forecast is a seventh of the chart there, where
# on a month it was a sliver at the right edge.
DEFAULT_RANGE = "7d"


@login_required
def asset_detail(request, symbol: str):
    asset = _asset_or_404(symbol)
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        range_key = DEFAULT_RANGE
    price = prices_now(assets=[asset]).get(asset.id)
    history = price_history(asset=asset, range_key=range_key, newest=price.open_time if price else None)
    champion, newest_version = model_versions_current(asset=asset)
    forecast = forecast_latest(asset=asset)
    run = training_run_latest(asset=asset)
    context = {
        "asset": asset,
        "history": history,
        "ranges": list(RANGES),
        "range_key": range_key,
        "champion": champion,
        "newest_version": newest_version,
        "forecast": forecast,
        "training": run,
        "training_by": run.triggered_by_for(request.user) if run is not None else "",
        "stale_after": STALE_AFTER_CANDLES,
        "model_max_age_hours": settings.MODEL_MAX_AGE_HOURS,
        "comparison": serving_comparison(
            asset=asset, champion=champion, newest_version=newest_version, forecast=forecast
        ),
        "training_active": run is not None and run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING),
        "price": _headline(price),
        "next_runs": asset_next_runs(asset=asset),
    }
    horizon = len(forecast.steps) if forecast else 1
    ahead_choices = [k for k in AHEAD_CHOICES if k <= horizon] or [1]
    try:
        ahead = int(request.GET.get("ahead", 1))
    except ValueError:
        ahead = 1
    if ahead not in ahead_choices:
        ahead = 1
    context.update(
        ahead=ahead,
        ahead_choices=[(k, _steps_label(asset, k)) for k in ahead_choices],
        ahead_label=_steps_label(asset, ahead),
    )
    if forecast is not None:
        context["forecast_label"] = _forecast_label(forecast, champion)
        context["staleness"] = forecast_staleness(forecast=forecast, newest_candle=history["newest"], asset=asset)
        points = forecast_chart_points(forecast=forecast)
        context["forecast_data"] = {"points": points}
        if points:
            end = points[-1]
            context["forecast_end"] = {
                "m_text": _price(end["m"]),
                "lo_text": _price(end["lo"]),
                "hi_text": _price(end["hi"]),
            }
        context["forecast_horizon_label"] = _steps_label(asset, len(points))
    if champion is not None:
        context["metrics"] = _metrics_table(asset, champion)
        context["backtest"] = _backtest_window(champion)
    if history["newest"] is not None:
        span = RANGES[range_key]
        track = forecast_track_record(
            asset=asset, ahead=ahead, since=history["newest"] - span if span is not None else None
        )
        if not track.points:
            # No live forecast has resolved yet (a new asset, or data that stopped): the backtest
            # shows how the serving forecast did on the month before it served.
            track = backtest_track_record(asset=asset, champion=champion, ahead=ahead) or track
        context["track"] = track
        if track.points:
            context["track_first"] = ms_to_datetime(track.points[0]["origin"])
            context["track_last"] = ms_to_datetime(track.points[-1]["origin"])
        context["track_text"] = {
            "coverage": metric_text(track.coverage, "pct"),
            "band": metric_text(track.band, "pct"),
            "mae": _price(track.mae),
            "naive_mae": _price(track.naive_mae),
        }
        context["track_data"] = track.points
    return render(request, "forecasting/asset_detail.html", context)


@login_required
def asset_prices_json(request, symbol: str):
    asset = _asset_or_404(symbol)
    range_key = request.GET.get("range", DEFAULT_RANGE)
    if range_key not in RANGES:
        return JsonResponse({"error": f"Unknown range {range_key!r}; use one of {', '.join(RANGES)}."}, status=400)
    history = price_history(asset=asset, range_key=range_key)
    history["newest"] = history["newest"].isoformat() if history["newest"] else None
    return JsonResponse(history)


@login_required
def asset_training_json(request, symbol: str):
    """The newest training run's progress, polled by the asset page while a training is active."""
    asset = _asset_or_404(symbol)
    run = training_run_latest(asset=asset)
    if run is None:
        return JsonResponse({"status": None})
    return JsonResponse(
        {
            "status": run.status,
            "active": run.status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING),
            "epoch": run.epoch,
            "max_epochs": run.max_epochs,
            "label": run.progress_label,
        }
    )


# --- presentation helpers ----------------------------------------------------------------------------


def _steps_label(asset: Asset, steps: int) -> str:
    """`steps` candles as a duration people read: "1 hour", "6 hours", "1 day"."""
    seconds = int((asset.interval_delta * steps).total_seconds())
    for unit, size in (("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60)):  # noqa: B007
        if seconds % size == 0:  # every interval is a whole number of minutes
            break
    n = seconds // size
    return f"{n} {unit}{'' if n == 1 else 's'}"


def _forecast_label(forecast: Forecast, champion: ModelVersion | None) -> str:
    if forecast.kind == Forecast.Kind.MODEL:
        version = forecast.model_version
        if version is None:  # the version was deleted; the source still names it
            return f"model {forecast.source}"
        return f"model v{version.version}, trained {version.created_at:%Y-%m-%d %H:%M} UTC"
    if forecast.source == Forecast.NAIVE_SOURCE:
        baseline = "the baseline (naive volatility band: too little history for the statistical band)"
    else:
        baseline = "the baseline (statistical seasonal band)"
    if champion is None:
        # Reads on from "Forecast from": the source first, then why no model made it.
        return f"{baseline}; no model is trained yet"
    return f"{baseline}, made before model v{champion.version} became champion"


def _price(value) -> str:
    """A price for reading, by the site's one rule for unit prices."""
    return price_text(value)


def _headline(price: PriceNow | None) -> dict | None:
    """The newest close and its 24-hour change, as text, with the PriceNow behind them."""
    if price is None:
        return None
    change = None
    if price.change is not None:
        sign = "+" if price.change > 0 else "−" if price.change < 0 else ""
        change = f"{sign}{_price(abs(price.change))} ({sign}{abs(price.change_pct):.2%})"
    return {"now": price, "text": _price(price.close), "change": change, "direction": _direction(price.change)}


def _direction(change) -> str:
    if not change:
        return "flat"
    return "gain" if change > 0 else "loss"


def _metrics_table(asset: Asset, version: ModelVersion) -> dict:
    """The champion's backtest row, then the baselines scored on the same origins."""
    return {"columns": metric_headings(asset.interval), "rows": metric_rows(version)}


def _backtest_window(version: ModelVersion) -> dict:
    b = version.backtest or {}
    first, last = b.get("first_origin_time"), b.get("last_origin_time")
    return {
        "origins": b.get("origins"),
        "horizon": b.get("horizon"),
        "first": ms_to_datetime(first) if first else None,
        "last": ms_to_datetime(last) if last else None,
    }
