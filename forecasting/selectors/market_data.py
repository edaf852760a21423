"""Reading market data: gaps, price history for charts, freshness, the series models read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
from django.db.models import FloatField, Max, Q
from django.db.models.functions import Cast
from django.utils import timezone

from core.times import EpochMs, datetime_to_ms

from ..intervals import interval_delta, interval_ms
from ..ml.data import Series, SeriesError
from ..models import Asset, Candle


@dataclass(frozen=True)
class Gap:
    start: datetime  # open time of the first missing candle
    end: datetime  # open time of the last missing candle
    missing: int


def candle_gaps(*, asset: Asset, interval: str | None = None) -> list[Gap]:
    """Missing candles between the first and the newest stored one."""
    interval = interval or asset.interval
    step = interval_delta(interval)
    times = (
        Candle.objects.filter(asset=asset, interval=interval).order_by("open_time").values_list("open_time", flat=True)
    )
    gaps: list[Gap] = []
    previous = None
    for t in times.iterator(chunk_size=10_000):
        if previous is not None and t - previous > step:
            missing = int((t - previous) / step) - 1
            gaps.append(Gap(start=previous + step, end=t - step, missing=missing))
        previous = t
    return gaps


RANGES = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
    "all": None,
}
MAX_CHART_POINTS = 1500


def price_history(
    *, asset: Asset, range_key: str, max_points: int = MAX_CHART_POINTS, newest: datetime | None = None
) -> dict:
    """Close prices over a range ending at the newest candle, thinned to at most `max_points`
    (every k-th candle, always keeping the newest) so long ranges stay light in the browser.
    `newest`: the newest candle's open time if the caller has read it already (prices_now)."""
    if range_key not in RANGES:
        raise ValueError(f"Unknown range {range_key!r}; use one of {', '.join(RANGES)}.")
    qs = Candle.objects.filter(asset=asset, interval=asset.interval)
    if newest is None:
        newest = qs.aggregate(t=Max("open_time"))["t"]
    if newest is None:
        return {"range": range_key, "points": [], "newest": None, "stride": 1, "candles": 0}
    span = RANGES[range_key]
    if span is not None:
        # The range covers `span` worth of candles ending with the newest one.
        qs = qs.filter(open_time__gt=newest - span)
    rows = list(qs.order_by("open_time").values_list("open_time", "close"))
    stride = max(1, -(-len(rows) // max_points))
    picked = rows[::stride]
    if picked[-1] is not rows[-1]:
        picked.append(rows[-1])
    return {
        "range": range_key,
        "newest": newest,
        "stride": stride,
        "candles": len(rows),
        "points": [{"t": datetime_to_ms(t), "c": str(c)} for t, c in picked],
    }


# Prices whose newest candle closed more than this many intervals ago are flagged as old on every
# page that shows them: the hourly refresh has missed at least this many candles.
DATA_OLD_AFTER_INTERVALS = 3


def data_is_old(*, age: timedelta, interval: timedelta) -> bool:
    """The one rule for the old-prices warning: more than DATA_OLD_AFTER_INTERVALS intervals since
    the newest candle closed."""
    return age > interval * DATA_OLD_AFTER_INTERVALS


@dataclass(frozen=True)
class PriceNow:
    """An asset's newest close, how it moved over `span`, and how old it is."""

    close: Decimal
    open_time: datetime  # of the newest candle: what the pages call its time
    close_time: datetime
    change: Decimal | None  # against the close `span` earlier (None: no candle there)
    change_pct: float | None
    age: timedelta  # since the newest candle closed
    old: bool  # more than DATA_OLD_AFTER_INTERVALS intervals behind


def prices_now(*, assets, span: timedelta = timedelta(hours=24), now: datetime | None = None) -> dict[int, PriceNow]:
    """Per asset (by id): newest close and its change over `span`. Two queries for any number of assets."""
    now = now or timezone.now()
    assets = {a.id: a for a in assets}
    if not assets:
        return {}
    newest = dict(
        Candle.objects.filter(any_of(Q(asset_id=a.id, interval=a.interval) for a in assets.values()))
        .values("asset_id")
        .annotate(t=Max("open_time"))
        .values_list("asset_id", "t")
    )
    if not newest:
        return {}
    wanted = any_of(Q(asset_id=i, interval=assets[i].interval, open_time__in=[t, t - span]) for i, t in newest.items())
    rows = Candle.objects.filter(wanted).values_list("asset_id", "open_time", "close", "close_time")
    by_asset: dict[int, dict] = {}
    for asset_id, open_time, close, close_time in rows:
        by_asset.setdefault(asset_id, {})[open_time] = (close, close_time)
    out = {}
    for asset_id, t in newest.items():
        close, close_time = by_asset[asset_id][t]
        before = by_asset[asset_id].get(t - span)
        change = close - before[0] if before else None
        age = max(now - close_time, timedelta(0))
        out[asset_id] = PriceNow(
            close=close,
            open_time=t,
            close_time=close_time,
            change=change,
            change_pct=float(change / before[0]) if before else None,
            age=age,
            old=data_is_old(age=age, interval=assets[asset_id].interval_delta),
        )
    return out


def any_of(conditions) -> Q:
    """The OR of `conditions`."""
    out = Q(pk__in=[])
    for condition in conditions:
        out |= condition
    return out


def candle_at(*, asset: Asset, when: datetime) -> Candle | None:
    """The candle whose close was the price at `when`: the newest one opened at or before it. That
    is the candle containing `when`, or the newest candle when `when` is later, or the last one
    before a gap in the data; None before the first candle. One look-up on the unique index."""
    return (
        Candle.objects.filter(asset=asset, interval=asset.interval, open_time__lte=when).order_by("-open_time").first()
    )


def newest_candle_ages(*, now: datetime | None = None) -> list[dict]:
    """Newest candle per tracked asset and how old it is (seconds since it closed)."""
    now = now or timezone.now()
    out = []
    for asset in Asset.objects.filter(tracked=True):
        # One indexed lookup per asset (the unique index leads with asset, interval, open_time).
        newest = (
            Candle.objects.filter(asset=asset, interval=asset.interval)
            .order_by("-open_time")
            .values_list("close_time", flat=True)
            .first()
        )
        age = (now - newest).total_seconds() if newest else None
        out.append({"asset": asset, "newest_close": newest, "age_seconds": age})
    return out


def candle_series(
    *, asset: Asset, days: int | None = None, limit: int | None = None, since=None, digest: bool = True
) -> tuple[Series, str]:
    """The newest candles of an asset as a Series, and a sha256 digest of exactly those candles
    ("" with `digest=False`: forecasts need none, and hashing years of rows is a third of the read)."""
    qs = Candle.objects.filter(asset=asset, interval=asset.interval)
    newest = qs.order_by("-open_time").values_list("open_time", flat=True).first()
    if newest is None:
        raise SeriesError(f"{asset.symbol} has no candles yet")
    if days is not None:
        qs = qs.filter(open_time__gt=newest - timedelta(days=days))
    if since is not None:
        qs = qs.filter(open_time__gte=since)
    if limit is not None:
        first = qs.order_by("-open_time").values_list("open_time", flat=True)[limit - 1 : limit].first()
        if first is not None:
            qs = qs.filter(open_time__gte=first)
    if not digest:
        return _series_fast(qs, asset), ""
    rows = list(qs.order_by("open_time").values_list("open_time", "open", "high", "low", "close", "volume"))
    if not rows:
        raise SeriesError(f"{asset.symbol} has no candles in the range asked for")
    sha = hashlib.sha256() if digest else None
    if sha is not None:
        for r in rows:
            sha.update(f"{datetime_to_ms(r[0])},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]}\n".encode())
    cols = list(zip(*rows))
    series = Series.from_arrays(
        times=[datetime_to_ms(t) for t in cols[0]],
        open=[float(v) for v in cols[1]],
        high=[float(v) for v in cols[2]],
        low=[float(v) for v in cols[3]],
        close=[float(v) for v in cols[4]],
        volume=[float(v) for v in cols[5]],
        interval_ms=interval_ms(asset.interval),
    )
    return series, sha.hexdigest() if sha is not None else ""


def _series_fast(qs, asset: Asset) -> Series:
    """The same Series with times as epoch milliseconds and prices as floats converted by the
    database (exactly what float(Decimal) gives: both round the decimal to the nearest double).
    Without a digest nothing needs the decimal text, and three years of hourly candles are
    read in a third of the time (191 ms -> 67 ms for 26,245 here)."""
    rows = list(
        qs.order_by("open_time").values_list(
            EpochMs("open_time"), *(Cast(name, FloatField()) for name in ("open", "high", "low", "close", "volume"))
        )
    )
    if not rows:
        raise SeriesError(f"{asset.symbol} has no candles in the range asked for")
    arr = np.array(rows, dtype=np.float64)  # epoch ms are below 2**53: exact as doubles
    return Series.from_arrays(
        times=arr[:, 0].astype(np.int64),
        open=arr[:, 1],
        high=arr[:, 2],
        low=arr[:, 3],
        close=arr[:, 4],
        volume=arr[:, 5],
        interval_ms=interval_ms(asset.interval),
    )
