"""Reading portfolios: the queries behind holdings, value over time, returns and the projected
value (the arithmetic is portfolio/valuation.py).

Every function reads with a fixed number of queries, however many transactions or holdings a
portfolio has. The page reads the state the services keep (PositionState, DailyFlow) and only the
last two days' transactions, not the whole history: positions in one query, the days' sums in one,
the last transactions in one, prices in one or two, forecasts in two.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from core.time_range import time_range_lookups
from forecasting.intervals import interval_delta
from forecasting.models import Asset, Candle
from forecasting.selectors.forecasts import forecasts_latest

from .models import DailyFlow, ExchangeConnection, Portfolio, PositionState
from .positions import Position, TxRow
from .valuation import (
    COST_BASIS_METHOD,
    RETURN_METHOD,
    Step,
    Summary,
    day_end,
    day_step,
    flow_day,
    period_returns_steps,
    projected_value,
    steps_of,
    summarize_positions,
    value_history_steps,
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


POSITION_FIELDS = ("asset_id", "quantity", "cost", "realized", "invested", "withdrawn", "rewards", "fees")


def positions_stored(*, portfolios) -> dict[int, list[Position]]:
    """Per portfolio, its positions as the services keep them (what a replay of its whole history
    gives), in one query; an asset first held earlier comes first, as in a replay."""
    states = PositionState.objects.filter(portfolio__in=portfolios).order_by("first_at", "asset_id")
    out: dict[int, list[Position]] = defaultdict(list)
    for portfolio_id, *values, count, first_at in _values_with_time(
        states, "first_at", "portfolio_id", *POSITION_FIELDS, "transactions"
    ):
        out[portfolio_id].append(Position(*values, first_at=first_at, transactions=count))
    return out


def portfolio_summary(*, portfolio: Portfolio) -> Summary:
    positions = positions_stored(portfolios=[portfolio.id]).get(portfolio.id, [])
    return summarize_positions(positions, prices_latest(asset_ids={p.asset_id for p in positions}))


def portfolio_summaries(*, user) -> list[tuple[Portfolio, Summary]]:
    """Every portfolio of the user with its summary, in three queries whatever their size."""
    portfolios = list(Portfolio.objects.filter(owner=user))
    by_portfolio = positions_stored(portfolios=[p.id for p in portfolios])
    prices = prices_latest(asset_ids={pos.asset_id for positions in by_portfolio.values() for pos in positions})
    return [(p, summarize_positions(by_portfolio.get(p.id, []), prices)) for p in portfolios]


def portfolio_steps(*, portfolio: Portfolio, end: datetime) -> list[Step]:
    """What value over time and the returns read, in two queries: the stored day sums up to the
    day before the one 24 hours ahead of `end` begins in, and every transaction after that (the
    24h return starts within those days, at a time a day's sum cannot split)."""
    recent = flow_day(end - timedelta(hours=24))
    # The sums as text, parsed here: a year of ten assets is thousands of rows, and the field's
    # converter per value was a third of the page's time at 100,000 transactions (bench/pages.py).
    flows = (
        DailyFlow.objects.filter(portfolio=portfolio, day__lt=recent)
        .annotate(q=Cast("quantity", TextField()), f=Cast("flow", TextField()), ft=Cast("flow_time", TextField()))
        .values_list("asset_id", "day", "closing", "q", "f", "ft")
    )
    steps = [day_step(a, day, closing, Decimal(q), Decimal(f), Decimal(ft)) for a, day, closing, q, f, ft in flows]
    last = portfolio.transactions.filter(executed_at__gt=day_end(recent - timedelta(days=1)))
    return steps + steps_of(transaction_rows(transactions=last))


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
    positions = positions_stored(portfolios=[portfolio.id]).get(portfolio.id, [])
    prices = prices_latest(asset_ids={p.asset_id for p in positions})
    summary = summarize_positions(positions, prices)
    # The newest price is the close of the newest candle: it is the value at that candle's close time.
    times = [v["close_time"] for v in prices.values() if v["close_time"]]
    end = max(times) if times else None
    first = min((p.first_at for p in positions), default=None)
    history, steps = [], []
    if positions and end:
        steps = portfolio_steps(portfolio=portfolio, end=end)
        assets = [v["asset"] for v in prices.values()]
        closes = candles_daily_close(assets=assets, start=first, end=end)
        history = value_history_steps(steps, first, closes, end)
        if history and not summary.missing_prices:
            history[-1]["value"] = summary.value  # the newest point at the newest prices, not a daily close
    forecast = None
    if positions:
        forecast = projected_value(summary, forecasts_latest(asset_ids=prices.keys()), now or timezone.now())
    return {
        "summary": summary,
        "history": history,
        "returns": period_returns_steps(steps, first, history, summary, end),
        "forecast": forecast,
        "as_of": end,
        "cost_basis_method": COST_BASIS_METHOD,
        "return_method": RETURN_METHOD,
    }


def exchange_connection_list(*, portfolio: Portfolio) -> QuerySet[ExchangeConnection]:
    """The portfolio's exchange connections, oldest first: its page and the API list them alike."""
    return ExchangeConnection.objects.filter(portfolio=portfolio).order_by("created_at", "id")
