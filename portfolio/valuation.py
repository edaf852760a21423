"""Valuation and returns from a portfolio's transactions and the prices given: pure functions, no
database (the selectors read, this computes), beside positions.py, the holdings engine."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import TYPE_CHECKING

from .positions import INBOUND, ZERO, Position, TxRow, replay

if TYPE_CHECKING:
    from forecasting.models import Asset, Forecast

COST_BASIS_METHOD = (
    "Average cost: each sale is set against the average price paid for the units held at that "
    "moment, buy fees included."
)
RETURN_METHOD = (
    "Modified Dietz: the change in value less money put in or taken out, divided by the starting "
    "value plus the money moved, weighted by how long it was in the portfolio."
)
HOLDING_RETURN_METHOD = (
    "Return: an asset's total profit and loss as a share of everything paid for it (buys and "
    "transfers in at their price, fees included); rewards count as profit, not as money paid."
)
FORECAST_METHOD = (
    "Each holding's quantity times its asset's newest forecast; the band adds the assets' 10% and "
    "90% quantiles as if all moved together, which is cautious (wide) for coins that rarely do."
)


@dataclass
class Holding:
    asset: Asset
    position: Position
    price: Decimal | None
    price_time: datetime | None
    price_24h: Decimal | None
    share: Decimal | None = None  # % of the portfolio's market value; set by summarize()

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

    @property
    def return_pct(self) -> Decimal | None:
        """Total P&L in % of the money paid for the asset (HOLDING_RETURN_METHOD); None when
        nothing was paid (rewards or free transfers only) or the price of what is held is unknown."""
        # Sold out, nothing is left to price: the realized P&L is the whole result.
        pnl = self.position.realized if self.position.quantity == 0 else self.total_pnl
        if pnl is None or not self.position.invested:
            return None
        return pnl / self.position.invested * 100


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

    @property
    def newest_candle(self) -> datetime | None:
        """Open time of the newest candle whose close prices the holdings (the asset page names
        candles by their open time too)."""
        times = [h.price_time for h in self.holdings + self.closed if h.price_time]
        return max(times) if times else None

    def allocation(self) -> list[dict]:
        """Share of the market value per asset, largest first."""
        rows = [{"symbol": h.asset.symbol, "value": h.value, "share": h.share} for h in self.holdings if h.share]
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
    for h in holdings:
        # Of the value that has a price: a holding without one is left out of the value too.
        h.share = h.value / value * 100 if value and h.value is not None else None
    holdings.sort(key=lambda h: h.value or ZERO, reverse=True)
    return Summary(holdings, closed, value, value_24h, cost, realized, unrealized, missing, len(rows))


# --- value over time ----------------------------------------------------------------------------


def _price_at(series: list[tuple[datetime, Decimal]], t: datetime, start: int = 0) -> tuple[Decimal | None, int]:
    """Last close at or before t, scanning forward from index `start` (callers walk in time order)."""
    i = start
    while i < len(series) and series[i][0] <= t:
        i += 1
    return (series[i - 1][1] if i else None), i


def value_history(
    rows: list[TxRow], closes: dict[int, list[tuple[datetime, Decimal]]], end: datetime | None
) -> list[dict]:
    """Daily market value and net money put in, from the first transaction's day to `end`."""
    if not rows or end is None:
        return []
    # One pass over the rows in time order beside the days (the order within an instant does not
    # change what is held at a day's end).
    ordered = sorted(rows, key=attrgetter("executed_at"))
    if ordered[0].executed_at > end:  # no price yet since the first transaction
        return []
    day = ordered[0].executed_at.astimezone(UTC).replace(hour=23, minute=59, second=59, microsecond=999000)
    points, price_pos, held = [], defaultdict(int), defaultdict(lambda: ZERO)
    last_price: dict[int, Decimal] = {}
    invested, n = ZERO, 0
    while True:
        t = min(day, end)
        while n < len(ordered) and ordered[n].executed_at <= t:
            r = ordered[n]
            held[r.asset_id] += r.quantity if r.kind in INBOUND else -r.quantity
            invested += _flow(r)
            n += 1
        value = ZERO
        for asset_id, quantity in held.items():
            price, price_pos[asset_id] = _price_at(closes.get(asset_id, []), t, price_pos[asset_id])
            if price is not None:
                last_price[asset_id] = price
            if quantity and asset_id in last_price:
                value += quantity * last_price[asset_id]
        points.append({"t": t, "value": value, "invested": invested})
        if day >= end:
            break
        day += timedelta(days=1)
    return points


def _flow(r: TxRow) -> Decimal:
    """Money moved in (+) or out (−) of the portfolio by a transaction. Rewards and fees paid in
    the asset move no money (they are part of the return); a fee in the quote currency is money
    paid in whatever the kind, as the holdings engine counts it as a cost or a loss."""
    if r.kind in ("buy", "transfer_in"):
        return r.quantity * r.unit_price + r.fee
    if r.kind in ("sell", "transfer_out"):
        return r.fee - r.quantity * r.unit_price
    return r.fee


MICROSECOND = timedelta(microseconds=1)
PERIODS = (
    ("24h", timedelta(hours=24)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
    ("ytd", None),
    ("1y", timedelta(days=365)),
    ("all", None),
)


def period_returns(rows: list[TxRow], history: list[dict], summary: Summary, end: datetime | None) -> dict[str, dict]:
    """Modified Dietz return per period, ending at the newest price. 24h starts from the hourly
    prices a day before; longer periods from the daily value at or just before their start."""
    out: dict[str, dict] = {}
    if not rows or end is None or not summary.value and not summary.holdings:
        return out
    first = min(r.executed_at for r in rows)
    # Suffix sums over the flows in time order, so each period is one bisect rather than a pass
    # over the whole history: the money moved from flow i on, and that money × time to `end` (µs).
    flows = [(r.executed_at, f) for r in sorted(rows, key=attrgetter("executed_at")) if (f := _flow(r))]
    times = [t for t, _ in flows]
    net_from, held_from = [ZERO] * (len(flows) + 1), [ZERO] * (len(flows) + 1)
    for i in range(len(flows) - 1, -1, -1):
        t, flow = flows[i]
        net_from[i] = net_from[i + 1] + flow
        # Flows after the newest price are in the value but held for none of the period.
        held_from[i] = held_from[i + 1] + flow * max((end - t) // MICROSECOND, 0)
    for key, span in PERIODS:
        if key == "all":
            start = first
        elif key == "ytd":
            start = end.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        else:
            start = end - span
        v0: Decimal | None = ZERO
        if start <= first:
            start = first
        elif key == "24h":
            v0 = _value_24h_ago(rows, summary, start)
        else:
            point = _point_at(history, start)
            if point is None:  # within the first day: the period is the whole history
                start = first
            else:
                # Start where the value is known, so no flow falls between the value and the start.
                start, v0 = point["t"], point["value"]
        if v0 is None:
            continue
        # From nothing, the flows at the start itself are what the period starts with.
        i = bisect_left(times, start) if v0 == 0 else bisect_right(times, start)
        length = (end - start) // MICROSECOND or 1
        gain = summary.value - v0 - net_from[i]
        base = v0 + held_from[i] / length
        out[key] = {"start": start, "gain": gain, "pct": (gain / base * 100) if base > 0 else None}
    return out


def _value_24h_ago(rows: list[TxRow], summary: Summary, start: datetime) -> Decimal | None:
    """What was held at `start` at the closes a day before the newest (not today's quantities,
    which would count a buy of the last day both in the start value and as a flow)."""
    held: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for r in rows:
        if r.executed_at <= start:
            held[r.asset_id] += r.quantity if r.kind in INBOUND else -r.quantity
    prices = {h.position.asset_id: h.price_24h for h in summary.holdings + summary.closed}
    value = ZERO
    for asset_id, quantity in held.items():
        if quantity:
            if prices.get(asset_id) is None:
                return None
            value += quantity * prices[asset_id]
    return value


def _point_at(history: list[dict], t: datetime) -> dict | None:
    point = None
    for p in history:
        if p["t"] > t:
            break
        point = p
    return point


# --- projected value ----------------------------------------------------------------------------


def projected_value(summary: Summary, forecasts: dict[int, Forecast], now: datetime) -> dict | None:
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
    used = [forecasts[h.asset.id] for h in with_forecast]
    total = sum((h.value for h in held), ZERO)

    def share(holdings) -> float:
        return float(sum((h.value for h in holdings), ZERO) / total) if total else 0.0

    by_model = [h for h in with_forecast if forecasts[h.asset.id].kind == "model"]
    return {
        # Which part of the value each kind of band covers: the page says how much is a model's.
        "model_share": share(by_model),
        "baseline_share": share([h for h in with_forecast if forecasts[h.asset.id].kind != "model"]),
        "flat_share": share([h for h in held if h.asset.id not in forecasts]),
        "by_model": [h.asset.symbol for h in by_model],
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
