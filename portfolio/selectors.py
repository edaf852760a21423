"""Reading portfolios: the queries behind holdings, value over time, returns and the projected
value (the arithmetic is portfolio/valuation.py).

Every function reads with a fixed number of queries, however many transactions or holdings a
portfolio has: transactions in one query, prices in one or two, forecasts in two.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import CharField, OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.utils import timezone

from core.time_range import time_range_lookups
from forecasting.intervals import interval_delta
from forecasting.models import Asset, Candle
from forecasting.selectors.forecasts import forecasts_latest

from .models import Portfolio, Transaction
from .positions import TxRow
from .valuation import (
    COST_BASIS_METHOD,
    RETURN_METHOD,
    Summary,
    period_returns,
    projected_value,
    summarize,
    value_history,
)

TX_FIELDS = ("id", "asset_id", "kind", "quantity", "unit_price", "fee")


def _values_with_time(queryset, time_field: str, *fields):
    """values_list of `fields` and then `time_field` as an aware datetime, in the queryset's order.

    The one place that reads times around the ORM: the time is selected as text and parsed here,
    because Django's timestamptz loader for PostgreSQL is pure Python and was most of the cost of
    reading a long history (bench/pages.py). If a Django upgrade changes the text form, the
    selector tests fail on the first parse."""
    for *values, text in queryset.annotate(_time_text=Cast(time_field, CharField())).values_list(*fields, "_time_text"):
        when = datetime.fromisoformat(text)
        yield *values, (when if when.tzinfo else when.replace(tzinfo=UTC))  # SQLite's text is UTC


def transaction_rows(*, transactions) -> list[TxRow]:
    """The transactions as the holdings engine reads them, oldest first."""
    return [
        TxRow(*values)
        for values in _values_with_time(transactions.order_by("executed_at", "id"), "executed_at", *TX_FIELDS)
    ]


def transactions_filter(
    *,
    transactions,
    symbol: str = "",
    kind: str = "",
    start: date | datetime | None = None,
    end: date | datetime | None = None,
):
    """The page's and the API's transaction filter: one asset, one kind, and a time range whose ends
    are included (a date is its whole UTC day)."""
    if symbol:
        transactions = transactions.filter(asset__symbol__iexact=symbol)
    if kind:
        transactions = transactions.filter(kind=kind)
    return transactions.filter(**time_range_lookups("executed_at", start=start, end=end))


def prices_latest(*, asset_ids) -> dict[int, dict]:
    """Newest close per asset and the close 24 h before it, in one query (indexed look-ups).
    "time" is the newest candle's open time, "close_time" the moment its close price is from."""
    candles = Candle.objects.filter(asset=OuterRef("pk"), interval=OuterRef("interval"))
    newest = candles.order_by("-open_time")
    assets = (
        Asset.objects.filter(id__in=list(asset_ids))
        .annotate(
            last_close=Subquery(newest.values("close")[:1]),
            last_time=Subquery(newest.values("open_time")[:1]),
            last_close_time=Subquery(newest.values("close_time")[:1]),
        )
        .annotate(
            close_24h=Subquery(
                candles.filter(open_time__lte=OuterRef("last_time") - timedelta(hours=24))
                .order_by("-open_time")
                .values("close")[:1]
            )
        )
    )
    return {
        a.id: {
            "asset": a,
            "close": a.last_close,
            "time": a.last_time,
            "close_time": a.last_close_time,
            "close_24h": a.close_24h,
        }
        for a in assets
    }


def portfolio_summary(*, portfolio: Portfolio) -> Summary:
    rows = transaction_rows(transactions=portfolio.transactions.all())
    return summarize(rows, prices_latest(asset_ids={r.asset_id for r in rows}))


def portfolio_summaries(*, user) -> list[tuple[Portfolio, Summary]]:
    """Every portfolio of the user with its summary, in three queries whatever their size."""
    portfolios = list(Portfolio.objects.filter(owner=user))
    by_portfolio: dict[int, list[TxRow]] = defaultdict(list)
    transactions = Transaction.objects.filter(portfolio__owner=user).order_by("executed_at", "id")
    for values in _values_with_time(transactions, "executed_at", "portfolio_id", *TX_FIELDS):
        by_portfolio[values[0]].append(TxRow(*values[1:]))
    prices = prices_latest(asset_ids={r.asset_id for rows in by_portfolio.values() for r in rows})
    return [(p, summarize(by_portfolio.get(p.id, []), prices)) for p in portfolios]


def candles_daily_close(*, assets, start: datetime, end: datetime) -> dict[int, list[tuple[datetime, Decimal]]]:
    """Per asset, the close of each UTC day from `start`'s day to `end`'s (the candle that closes at
    23:59:59.999), in one query. A day without that candle (an outage) has no entry; value_history
    carries the previous close forward."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnights = [first + timedelta(days=i + 1) for i in range((end - first) // timedelta(days=1) + 1)]
    by_interval: dict[str, list[int]] = defaultdict(list)
    for asset in assets:
        by_interval[asset.interval].append(asset.id)
    out: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    if not by_interval:
        return out
    # Each day's closing candle by its open time, so the (asset, interval, open_time) index finds
    # it, rather than reading every candle of the period to pick one in 24.
    match = Q()
    for interval, ids in by_interval.items():
        length = interval_delta(interval)
        match |= Q(asset_id__in=ids, interval=interval, open_time__in=[m - length for m in midnights])
    candles = Candle.objects.filter(match).order_by("asset_id", "open_time")
    for asset_id, close, close_time in _values_with_time(candles, "close_time", "asset_id", "close"):
        out[asset_id].append((close_time, close))
    return out


def portfolio_projection(
    *, portfolio: Portfolio, summary: Summary | None = None, now: datetime | None = None
) -> dict | None:
    """The projected value of what is held, from each asset's serving forecast (forecasting's rule)."""
    summary = summary or portfolio_summary(portfolio=portfolio)
    forecasts = forecasts_latest(asset_ids={h.asset.id for h in summary.holdings})
    return projected_value(summary, forecasts, now or timezone.now())


def portfolio_detail(*, portfolio: Portfolio, now: datetime | None = None) -> dict:
    """Everything the portfolio page shows, in a fixed number of queries."""
    rows = transaction_rows(transactions=portfolio.transactions.all())
    prices = prices_latest(asset_ids={r.asset_id for r in rows})
    summary = summarize(rows, prices)
    # The newest price is the close of the newest candle: it is the value at that candle's close time.
    times = [v["close_time"] for v in prices.values() if v["close_time"]]
    end = max(times) if times else None
    history = []
    if rows and end:
        assets = [v["asset"] for v in prices.values()]
        closes = candles_daily_close(assets=assets, start=min(r.executed_at for r in rows), end=end)
        history = value_history(rows, closes, end)
        if history and not summary.missing_prices:
            history[-1]["value"] = summary.value  # the newest point at the newest prices, not a daily close
    forecast = None
    if rows:
        forecast = projected_value(summary, forecasts_latest(asset_ids=prices.keys()), now or timezone.now())
    return {
        "summary": summary,
        "history": history,
        "returns": period_returns(rows, history, summary, end),
        "forecast": forecast,
        "as_of": end,
        "cost_basis_method": COST_BASIS_METHOD,
        "return_method": RETURN_METHOD,
    }
