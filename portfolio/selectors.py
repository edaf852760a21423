"""Reading portfolios: holdings, allocation, value over time, returns and the projected value.

Every function reads with a fixed number of queries, however many transactions or holdings a
portfolio has: transactions in one query, prices in one or two, forecasts in one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from forecasting.models import Asset, Candle, Forecast

from .models import Portfolio, Transaction
from .positions import ZERO, Position, TxRow, quantities_over_time, replay

COST_BASIS_METHOD = (
    "Average cost: each sale is set against the average price paid for the units held at that "
    "moment, buy fees included."
)
RETURN_METHOD = (
    "Modified Dietz: the change in value less money put in or taken out, divided by the starting "
    "value plus the money moved, weighted by how long it was in the portfolio."
)
FORECAST_METHOD = (
    "Each holding's quantity times its asset's newest forecast; the band adds the assets' 10% and "
    "90% quantiles as if all moved together, which is cautious (wide) for coins that rarely do."
)


def tx_rows(transactions) -> list[TxRow]:
    return [TxRow(*values) for values in transactions.values_list(
        "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at")]


def latest_prices(asset_ids) -> dict[int, dict]:
    """Newest close per asset and the close 24 h before it, in one query (indexed look-ups)."""
    candles = Candle.objects.filter(asset=OuterRef("pk"), interval=OuterRef("interval"))
    newest = candles.order_by("-open_time")
    assets = (
        Asset.objects.filter(id__in=list(asset_ids))
        .annotate(last_close=Subquery(newest.values("close")[:1]),
                  last_time=Subquery(newest.values("open_time")[:1]))
        .annotate(close_24h=Subquery(
            candles.filter(open_time__lte=OuterRef("last_time") - timedelta(hours=24))
            .order_by("-open_time").values("close")[:1]))
    )
    return {a.id: {"asset": a, "close": a.last_close, "time": a.last_time, "close_24h": a.close_24h}
            for a in assets}


@dataclass
class Holding:
    asset: Asset
    position: Position
    price: Decimal | None
    price_time: datetime | None
    price_24h: Decimal | None

    @property
    def quantity(self) -> Decimal:
        return self.position.quantity

    @property
    def value(self) -> Decimal | None:
        return None if self.price is None else self.position.quantity * self.price

    @property
    def value_24h(self) -> Decimal | None:
        return None if self.price_24h is None else self.position.quantity * self.price_24h

    @property
    def unrealized(self) -> Decimal | None:
        return None if self.value is None else self.value - self.position.cost

    @property
    def total_pnl(self) -> Decimal | None:
        return None if self.unrealized is None else self.unrealized + self.position.realized


@dataclass
class Summary:
    holdings: list[Holding]
    closed: list[Holding]  # assets once held, now zero (their realized P&L still counts)
    value: Decimal
    value_24h: Decimal | None
    cost: Decimal
    realized: Decimal
    unrealized: Decimal
    missing_prices: list[str]
    transactions: int

    @property
    def total_pnl(self) -> Decimal:
        return self.realized + self.unrealized

    @property
    def change_24h(self) -> Decimal | None:
        return None if self.value_24h is None else self.value - self.value_24h

    @property
    def change_24h_pct(self) -> Decimal | None:
        if not self.value_24h:
            return None
        return (self.value - self.value_24h) / self.value_24h * 100

    def allocation(self) -> list[dict]:
        """Share of the market value per asset, largest first."""
        if not self.value:
            return []
        rows = [{"symbol": h.asset.symbol, "value": h.value, "share": h.value / self.value * 100}
                for h in self.holdings if h.value]
        return sorted(rows, key=lambda r: r["value"], reverse=True)


def summarize(rows: list[TxRow], prices: dict[int, dict]) -> Summary:
    ledger = replay(rows)
    holdings, closed, missing = [], [], []
    value = cost = realized = unrealized = ZERO
    value_24h: Decimal | None = ZERO
    for asset_id, pos in ledger.positions.items():
        info = prices.get(asset_id, {})
        h = Holding(info.get("asset"), pos, info.get("close"), info.get("time"), info.get("close_24h"))
        realized += pos.realized
        if pos.quantity == 0:
            closed.append(h)
            continue
        holdings.append(h)
        cost += pos.cost
        if h.value is None:
            missing.append(h.asset.symbol)
            continue
        value += h.value
        unrealized += h.unrealized
        # The value a day ago of what is held now (24h change of the holdings, not of the flows).
        value_24h = None if value_24h is None or h.value_24h is None else value_24h + h.value_24h
    holdings.sort(key=lambda h: h.value or ZERO, reverse=True)
    return Summary(holdings, closed, value, value_24h, cost, realized, unrealized, missing, len(rows))


def portfolio_summary(portfolio: Portfolio) -> Summary:
    rows = tx_rows(portfolio.transactions.all())
    return summarize(rows, latest_prices({r.asset_id for r in rows}))


def dashboard(user) -> list[tuple[Portfolio, Summary]]:
    """Every portfolio of the user with its summary, in three queries whatever their size."""
    portfolios = list(Portfolio.objects.filter(owner=user))
    by_portfolio: dict[int, list[TxRow]] = defaultdict(list)
    for values in Transaction.objects.filter(portfolio__owner=user).values_list(
            "portfolio_id", "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at"):
        by_portfolio[values[0]].append(TxRow(*values[1:]))
    prices = latest_prices({r.asset_id for rows in by_portfolio.values() for r in rows})
    return [(p, summarize(by_portfolio.get(p.id, []), prices)) for p in portfolios]


# --- value over time ----------------------------------------------------------------------------


def daily_closes(asset_ids, start: datetime) -> dict[int, list[tuple[datetime, Decimal]]]:
    """Per asset, the close of each UTC day since `start` (the candle that closes at 23:59:59.999),
    in one query. A day without that candle (an outage) carries the previous close forward."""
    out: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
    qs = (Candle.objects.filter(asset_id__in=list(asset_ids), interval=F("asset__interval"),
                                close_time__gte=start, close_time__hour=23, close_time__minute=59)
          .order_by("asset_id", "open_time").values_list("asset_id", "close_time", "close"))
    for asset_id, close_time, close in qs:
        out[asset_id].append((close_time, close))
    return out


def _price_at(series: list[tuple[datetime, Decimal]], t: datetime, start: int = 0) -> tuple[Decimal | None, int]:
    """Last close at or before t, scanning forward from index `start` (callers walk in time order)."""
    i = start
    while i < len(series) and series[i][0] <= t:
        i += 1
    return (series[i - 1][1] if i else None), i


def value_history(rows: list[TxRow], closes: dict[int, list[tuple[datetime, Decimal]]],
                  end: datetime | None) -> list[dict]:
    """Daily market value and net money put in, from the first transaction's day to `end`."""
    if not rows or end is None:
        return []
    qty_steps = quantities_over_time(rows)
    flows = sorted((r.executed_at, _flow(r)) for r in rows)
    day = min(r.executed_at for r in rows).astimezone(UTC).replace(hour=23, minute=59, second=59,
                                                                     microsecond=999000)
    points, price_pos, qty_pos, held = [], defaultdict(int), defaultdict(int), defaultdict(lambda: ZERO)
    last_price: dict[int, Decimal | None] = {}
    invested, f = ZERO, 0
    while day <= end + timedelta(days=1):
        t = min(day, end) if day > end else day
        while f < len(flows) and flows[f][0] <= t:
            invested += flows[f][1]
            f += 1
        value = ZERO
        for asset_id, steps in qty_steps.items():
            i = qty_pos[asset_id]
            while i < len(steps) and steps[i][0] <= t:
                held[asset_id] = steps[i][1]
                i += 1
            qty_pos[asset_id] = i
            price, price_pos[asset_id] = _price_at(closes.get(asset_id, []), t, price_pos[asset_id])
            if price is not None:
                last_price[asset_id] = price
            if held[asset_id] and last_price.get(asset_id) is not None:
                value += held[asset_id] * last_price[asset_id]
        points.append({"t": t, "value": value, "invested": invested})
        if day >= end:
            break
        day += timedelta(days=1)
    return points


def _flow(r: TxRow) -> Decimal:
    """Money moved in (+) or out (−) of the portfolio by a transaction; rewards and fees are returns."""
    if r.kind == "buy":
        return r.quantity * r.unit_price + r.fee
    if r.kind == "transfer_in":
        return r.quantity * r.unit_price
    if r.kind == "sell":
        return -(r.quantity * r.unit_price - r.fee)
    if r.kind == "transfer_out":
        return -(r.quantity * r.unit_price)
    return ZERO


PERIODS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)),
           ("ytd", None), ("1y", timedelta(days=365)), ("all", None))


def returns(rows: list[TxRow], history: list[dict], summary: Summary, end: datetime | None) -> dict[str, dict]:
    """Modified Dietz return per period, ending at the newest price. 24h uses hourly prices
    (the summary's 24h values), longer periods daily closes."""
    out: dict[str, dict] = {}
    if not rows or end is None or not summary.value and not summary.holdings:
        return out
    first = min(r.executed_at for r in rows)
    for key, span in PERIODS:
        if key == "all":
            start = first
        elif key == "ytd":
            start = end.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        else:
            start = end - span
        if start <= first:
            start, v0 = first, ZERO
        elif key == "24h":
            v0 = summary.value_24h
        else:
            v0 = _value_at(history, start)
        if v0 is None:
            continue
        length = (end - start).total_seconds() or 1.0
        net = weighted = ZERO
        for r in rows:
            if start < r.executed_at <= end or (v0 == 0 and r.executed_at == start):
                flow = _flow(r)
                net += flow
                weighted += flow * Decimal(str((end - r.executed_at).total_seconds() / length))
        gain = summary.value - v0 - net
        base = v0 + weighted
        out[key] = {"start": start, "gain": gain, "pct": (gain / base * 100) if base > 0 else None}
    return out


def _value_at(history: list[dict], t: datetime) -> Decimal | None:
    value = None
    for p in history:
        if p["t"] > t:
            break
        value = p["value"]
    return value


# --- projected value ----------------------------------------------------------------------------


def latest_forecasts(asset_ids) -> dict[int, Forecast]:
    """The newest forecast per asset (a model's before the baseline's at the same origin): 2 queries."""
    newest = Forecast.objects.filter(asset=OuterRef("pk")).order_by("-origin_time", "-kind", "-id")
    ids = [i for i in Asset.objects.filter(id__in=list(asset_ids))
           .annotate(fid=Subquery(newest.values("id")[:1])).values_list("fid", flat=True) if i]
    return {f.asset_id: f for f in Forecast.objects.filter(id__in=ids).select_related("model_version")}


def portfolio_forecast(summary: Summary, forecasts: dict[int, Forecast], now: datetime | None = None) -> dict | None:
    """Projected value per forecast step: median and 80% band (see FORECAST_METHOD)."""
    held = [h for h in summary.holdings if h.price is not None]
    with_forecast = [h for h in held if h.asset.id in forecasts]
    if not with_forecast:
        return None
    steps = min(len(forecasts[h.asset.id].steps) for h in with_forecast)
    reference = max((forecasts[h.asset.id] for h in with_forecast), key=lambda f: f.origin_time)
    flat = sum((h.value for h in held if h.asset.id not in forecasts), ZERO)  # no forecast: price stays
    points = []
    for k in range(steps):
        lo = mid = hi = flat
        for h in with_forecast:
            values = [Decimal(v) for v in forecasts[h.asset.id].steps[k]["values"]]
            lo += h.quantity * values[0]
            mid += h.quantity * values[len(values) // 2]
            hi += h.quantity * values[-1]
        points.append({"t": reference.steps[k]["target_time"], "low": lo, "median": mid, "high": hi})
    now = now or timezone.now()
    used = [forecasts[h.asset.id] for h in with_forecast]
    return {
        "points": points,
        "start": {"t": reference.origin_time, "value": summary.value},
        "oldest_made_at": min(f.made_at for f in used),
        "oldest_origin": min(f.origin_time for f in used),
        "age": now - min(f.made_at for f in used),
        "kinds": sorted({f.kind for f in used}),
        "stale": any(f.stale for f in used),
        "without_forecast": [h.asset.symbol for h in held if h.asset.id not in forecasts],
        "method": FORECAST_METHOD,
    }


def portfolio_detail(portfolio: Portfolio, *, now: datetime | None = None) -> dict:
    """Everything the portfolio page shows, in a fixed number of queries."""
    rows = tx_rows(portfolio.transactions.all())
    prices = latest_prices({r.asset_id for r in rows})
    summary = summarize(rows, prices)
    times = [v["time"] for v in prices.values() if v["time"]]
    end = max(times) if times else None
    history = []
    if rows and end:
        history = value_history(rows, daily_closes(prices.keys(), min(r.executed_at for r in rows)), end)
        if history and not summary.missing_prices:
            history[-1]["value"] = summary.value  # the newest point at the newest prices, not a daily close
    return {
        "summary": summary,
        "history": history,
        "returns": returns(rows, history, summary, end),
        "forecast": portfolio_forecast(summary, latest_forecasts(prices.keys()), now=now) if rows else None,
        "as_of": end,
        "cost_basis_method": COST_BASIS_METHOD,
        "return_method": RETURN_METHOD,
    }
