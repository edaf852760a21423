"""The asset list: every tracked asset's price, 24-hour change, day-ahead forecast and what serves
it, in a fixed number of queries however many assets there are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ..models import Asset, ModelVersion, TrainingRun
from .forecasts import forecasts_latest, median_index
from .market_data import PriceNow, prices_now

AHEAD = timedelta(hours=24)
SORTS = {
    "symbol": lambda row: row.asset.symbol,
    "change": lambda row: row.price.change_pct if row.price and row.price.change_pct is not None else None,
    "forecast": lambda row: row.forecast_change_pct,
}


@dataclass(frozen=True)
class AssetRow:
    asset: Asset
    price: PriceNow | None
    median: Decimal | None  # the serving forecast about 24 hours after its origin
    low: Decimal | None  # its 80% band
    high: Decimal | None
    target_time: datetime | None
    champion: int | None  # the serving model's version; None: the statistical baseline serves
    training: str | None  # "queued" or "running" while a training is active

    @property
    def forecast_change_pct(self) -> float | None:
        if self.median is None or self.price is None or not self.price.close:
            return None
        return float(self.median / self.price.close - 1)


def assets_overview(*, query: str = "", sort: str = "symbol", now: datetime | None = None) -> list[AssetRow]:
    """Tracked assets whose symbol or base/quote asset contains `query`, sorted by `sort` (a key
    of SORTS, "-" first for descending; assets without the value last). Seven queries."""
    assets = Asset.objects.filter(tracked=True)
    if query:
        query = query.strip().upper()
        assets = [a for a in assets if query in a.symbol or query in f"{a.base_asset}/{a.quote_asset}"]
    assets = list(assets)
    ids = [a.id for a in assets]
    prices = prices_now(assets=assets, now=now)
    forecasts = forecasts_latest(asset_ids=ids)
    champions = dict(
        ModelVersion.objects.filter(asset_id__in=ids, status=ModelVersion.Status.CHAMPION).values_list(
            "asset_id", "version"
        )
    )
    training = dict(
        TrainingRun.objects.filter(
            asset_id__in=ids, status__in=(TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        ).values_list("asset_id", "status")
    )
    rows = []
    for asset in assets:
        median = low = high = target = None
        forecast = forecasts.get(asset.id)
        if forecast is not None and forecast.steps:
            goal = forecast.origin_time + AHEAD
            # The step nearest a day ahead (the last one if the horizon is shorter).
            step = min(forecast.steps, key=lambda s: abs(datetime.fromisoformat(s["target_time"]) - goal))
            values = [Decimal(v) for v in step["values"]]
            median, low, high = values[median_index(forecast.quantiles)], values[0], values[-1]
            target = datetime.fromisoformat(step["target_time"])
        rows.append(
            AssetRow(
                asset=asset,
                price=prices.get(asset.id),
                median=median,
                low=low,
                high=high,
                target_time=target,
                champion=champions.get(asset.id),
                training=training.get(asset.id),
            )
        )
    descending = sort.startswith("-")
    key = SORTS.get(sort.lstrip("-"), SORTS["symbol"])
    present = [r for r in rows if key(r) is not None]
    missing = [r for r in rows if key(r) is None]
    return sorted(present, key=key, reverse=descending) + missing
