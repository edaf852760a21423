"""The demo account's sample portfolio: buys and a sell at stored candle closes, so a newcomer's
first page has holdings, profit and loss, allocation, value over time and a projection to read."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.db import transaction

from forecasting.models import Asset, Candle

from .models import Portfolio, Transaction
from .services import portfolio_create, transaction_create

SAMPLE_NAME = "Sample portfolio"
SAMPLE_DESCRIPTION = (
    "Made by demo_setup from the stored candles: every price is the close of the candle at that time. "
    "Edit, delete or import over it freely."
)
FEE_RATE = Decimal("0.001")  # a typical spot taker fee
# (share of the stored history at which it happens, kind, quote currency spent or share sold)
_FIRST = [(0.15, Transaction.Kind.BUY, Decimal("6000")), (0.55, Transaction.Kind.BUY, Decimal("4000"))]
_FIRST_SELL = (0.8, Decimal("0.3"))
_OTHERS = [(0.35, Transaction.Kind.BUY, Decimal("3000")), (0.7, Transaction.Kind.BUY, Decimal("1500"))]


def _candle_at(asset: Asset, share: float) -> Candle | None:
    """The candle at `share` of the way from the asset's first stored candle to its newest."""
    candles = Candle.objects.filter(asset=asset, interval=asset.interval)
    first = candles.order_by("open_time").values_list("open_time", flat=True).first()
    newest = candles.order_by("-open_time").values_list("open_time", flat=True).first()
    if first is None:
        return None
    when = first + (newest - first) * share
    return candles.filter(open_time__lte=when).order_by("-open_time").first()


def _quantity(spend: Decimal, price: Decimal) -> Decimal:
    return (spend / price).quantize(Decimal("0.0001"), rounding=ROUND_DOWN) or Decimal("0.0001")


@transaction.atomic
def sample_portfolio_create(*, owner, symbols: list[str]) -> Portfolio | None:
    """The sample portfolio over the first of `symbols` that have candles (at most three), or None
    if the owner has one already or no symbol has candles. All or nothing."""
    if Portfolio.objects.filter(owner=owner, name=SAMPLE_NAME).exists():
        return None
    assets = [a for a in Asset.objects.filter(symbol__in=symbols) if a.candles.exists()]
    assets.sort(key=lambda a: symbols.index(a.symbol))
    if not assets:
        return None
    portfolio = portfolio_create(owner=owner, name=SAMPLE_NAME, description=SAMPLE_DESCRIPTION)
    for i, asset in enumerate(assets[:3]):
        bought = Decimal("0")
        for share, kind, spend in _FIRST if i == 0 else _OTHERS:
            candle = _candle_at(asset, share)
            quantity = _quantity(spend, candle.close)
            transaction_create(
                portfolio=portfolio,
                asset=asset,
                kind=kind,
                quantity=quantity,
                unit_price=candle.close,
                fee=(quantity * candle.close * FEE_RATE).quantize(Decimal("0.01")),
                executed_at=candle.close_time,
                note="sample",
            )
            bought += quantity
        if i == 0:
            share, part = _FIRST_SELL
            candle = _candle_at(asset, share)
            quantity = (bought * part).quantize(Decimal("0.0001"), rounding=ROUND_DOWN)
            transaction_create(
                portfolio=portfolio,
                asset=asset,
                kind=Transaction.Kind.SELL,
                quantity=quantity,
                unit_price=candle.close,
                fee=(quantity * candle.close * FEE_RATE).quantize(Decimal("0.01")),
                executed_at=candle.close_time,
                note="sample",
            )
    return portfolio
