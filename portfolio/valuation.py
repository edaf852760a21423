"""Valuation and returns from a portfolio's transactions and the prices given: pure functions, no
database (the selectors read, this computes), beside positions.py, the holdings engine."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal
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
    return summarize_positions(list(replay(rows).positions.values()), prices)


def summarize_positions(positions: list[Position], prices: dict[int, dict]) -> Summary:
    """The summary of positions (a replay's, or the stored ones) at the prices given."""
    holdings, closed, missing = [], [], []
    value = cost = realized = unrealized = ZERO
    value_24h: Decimal | None = ZERO
    for pos in positions:
        asset_id = pos.asset_id
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
    transactions = sum(p.transactions for p in positions)
    return Summary(holdings, closed, value, value_24h, cost, realized, unrealized, missing, transactions)


# --- flows: what value over time and returns read -------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Sums of flow × time reach 40 digits; the default 28 would round them.
WIDE = Context(prec=80)


@dataclass(slots=True)
class Step:
    """A change of what is held and of the money put in: one transaction (flow_time None), or one
    asset's transactions of a day summed (DailyFlow), then at the day's end."""

    executed_at: datetime
    asset_id: int
    quantity: Decimal  # signed: + in, − out
    flow: Decimal
    flow_time: Decimal | None = None  # of a day: sum of flow × its time in µs since the epoch


def flow_day(t: datetime) -> date:
    """The day whose value point (23:59:59.999 UTC) is the first at or after t."""
    return (t.astimezone(UTC) + timedelta(microseconds=999)).date()


def day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, 59, 999000, tzinfo=UTC)


def _micros(t: datetime) -> int:
    return (t - EPOCH) // MICROSECOND


def steps_of(rows: list[TxRow]) -> list[Step]:
    return [Step(r.executed_at, r.asset_id, r.quantity if r.kind in INBOUND else -r.quantity, _flow(r)) for r in rows]


def day_sums(rows: list[TxRow]) -> dict[tuple[int, date, bool], tuple[Decimal, Decimal, Decimal, int]]:
    """Per (asset, flow_day, at the day's end exactly): net quantity, net flow, flow × time (µs)
    and the number of rows."""
    out: dict[tuple[int, date, bool], tuple[Decimal, Decimal, Decimal, int]] = {}
    # In time order, so the sums add in the order a replay adds them.
    for r in sorted(rows, key=attrgetter("executed_at")):
        day = flow_day(r.executed_at)
        key = (r.asset_id, day, r.executed_at == day_end(day))
        q, f, ft, n = out.get(key, (ZERO, ZERO, ZERO, 0))
        flow = _flow(r)
        out[key] = (
            q + (r.quantity if r.kind in INBOUND else -r.quantity),
            f + flow,
            WIDE.add(ft, WIDE.multiply(flow, Decimal(_micros(r.executed_at)))),
            n + 1,
        )
    return out


_day_ends: dict[date, datetime] = {}


def day_step(asset_id: int, day: date, closing: bool, quantity: Decimal, flow: Decimal, flow_time: Decimal) -> Step:
    """A day's sums as one step: at the day's end for the rows of that very moment, else just
    before it, so a period starting at the day's end leaves the earlier rows out, as a replay does."""
    t = _day_ends.get(day)
    if t is None:  # a year of ten assets asks for each day ten times
        t = _day_ends[day] = day_end(day)
    return Step(t if closing else t - MICROSECOND, asset_id, quantity, flow, flow_time)


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
    first = min((r.executed_at for r in rows), default=None)
    return value_history_steps(steps_of(rows), first, closes, end)


def value_history_steps(
    steps: list[Step], first: datetime | None, closes: dict[int, list[tuple[datetime, Decimal]]], end: datetime | None
) -> list[dict]:
    """value_history from steps; `first` is the first transaction's time."""
    if not steps or first is None or end is None:
        return []
    # One pass over the steps in time order beside the days (the order within an instant does not
    # change what is held at a day's end).
    ordered = sorted(steps, key=attrgetter("executed_at"))
    if first > end:  # no price yet since the first transaction
        return []
    day = first.astimezone(UTC).replace(hour=23, minute=59, second=59, microsecond=999000)
    points, price_pos, held = [], defaultdict(int), defaultdict(lambda: ZERO)
    last_price: dict[int, Decimal] = {}
    invested, n = ZERO, 0
    while True:
        t = min(day, end)
        while n < len(ordered) and ordered[n].executed_at <= t:
            r = ordered[n]
            held[r.asset_id] += r.quantity
            invested += r.flow
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
    first = min((r.executed_at for r in rows), default=None)
    return period_returns_steps(steps_of(rows), first, history, summary, end)


def period_returns_steps(
    steps: list[Step], first: datetime | None, history: list[dict], summary: Summary, end: datetime | None
) -> dict[str, dict]:
    """Modified Dietz return per period, ending at the newest price. 24h starts from the hourly
    prices a day before; longer periods from the daily value at or just before their start.
    A day's summed step must end before the 24 hours do (the selector keeps the last days' rows)."""
    out: dict[str, dict] = {}
    if not steps or first is None or end is None or not summary.value and not summary.holdings:
        return out
    # Suffix sums over the flows in time order, so each period is one bisect rather than a pass
    # over the whole history: the money moved from flow i on, and that money × time to `end` (µs).
    flows = [s for s in sorted(steps, key=attrgetter("executed_at")) if s.flow]
    times = [s.executed_at for s in flows]
    net_from, held_from = [ZERO] * (len(flows) + 1), [ZERO] * (len(flows) + 1)
    end_us = Decimal(_micros(end))
    for i in range(len(flows) - 1, -1, -1):
        s = flows[i]
        net_from[i] = net_from[i + 1] + s.flow
        if s.flow_time is None:
            # Flows after the newest price are in the value but held for none of the period.
            held_from[i] = held_from[i + 1] + s.flow * max((end - s.executed_at) // MICROSECOND, 0)
        else:  # a day's flows, all before `end`: sum of flow × (end − t)
            held_from[i] = held_from[i + 1] + WIDE.subtract(WIDE.multiply(s.flow, end_us), s.flow_time)
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
            v0 = _value_24h_ago(steps, summary, start)
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


def _value_24h_ago(steps: list[Step], summary: Summary, start: datetime) -> Decimal | None:
    """What was held at `start` at the closes a day before the newest (not today's quantities,
    which would count a buy of the last day both in the start value and as a flow)."""
    held: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for r in steps:
        if r.executed_at <= start:
            held[r.asset_id] += r.quantity
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
