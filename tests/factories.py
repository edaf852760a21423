"""factory-boy factories for every model, and one helper for runs of candles. Tests build what they
need from these; a test module's own helper (make_version, say) only sets the values it cares about."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import ApiToken
from accounts.services import hash_key
from forecasting.models import Asset, BacktestTrack, Candle, Forecast, ModelVersion, StoredFile, TrainingRun
from portfolio.exchange import crypto
from portfolio.exchange.services import key_hash
from portfolio.models import DailyFlow, ExchangeConnection, Portfolio, PositionState, Transaction
from portfolio.services import portfolio_state_rebuild

# Well in the past, so nothing depends on today's date.
NEWEST = datetime(2022, 6, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset
        django_get_or_create = ("symbol",)

    symbol = "BTCUSDT"
    base_asset = factory.LazyAttribute(lambda a: a.symbol.removesuffix("USDT"))
    quote_asset = "USDT"
    interval = "1h"


class CandleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Candle

    asset = factory.SubFactory(AssetFactory)
    interval = factory.LazyAttribute(lambda c: c.asset.interval)
    open_time = factory.Sequence(lambda n: NEWEST - n * HOUR)
    close_time = factory.LazyAttribute(lambda c: c.open_time + HOUR - timedelta(milliseconds=1))
    open = close = high = low = Decimal("100")
    volume = Decimal("1")


def candles(
    asset: Asset,
    closes: Sequence[Decimal | int | str],
    *,
    newest: datetime = NEWEST,
    step: timedelta = HOUR,
    interval: str | None = None,
    spread: Decimal = Decimal("1"),
    volume: Decimal = Decimal("1.5"),
) -> list[Candle]:
    """Consecutive candles ending at `newest`, one per close (oldest first): open = close, high and
    low `spread` away from it. Stored in one insert."""
    rows = []
    for i, close in enumerate(closes):
        open_time = newest - (len(closes) - 1 - i) * step
        price = Decimal(close)
        rows.append(
            CandleFactory.build(
                asset=asset,
                interval=interval or asset.interval,
                open_time=open_time,
                close_time=open_time + step - timedelta(milliseconds=1),
                open=price,
                close=price,
                high=price + spread,
                low=price - spread,
                volume=volume,
            )
        )
    return Candle.objects.bulk_create(rows)


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    asset = factory.SubFactory(AssetFactory)
    triggered_by = "test"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    asset = factory.SubFactory(AssetFactory)
    version = factory.Sequence(lambda n: n + 1)
    status = ModelVersion.Status.CANDIDATE
    data_start = NEWEST - 1000 * HOUR
    data_end = NEWEST - 48 * HOUR
    data_candles = 952
    data_digest = "0" * 64
    artifact = factory.LazyAttribute(lambda v: f"models/{v.asset.symbol}/v{v.version}.pt")
    artifact_size = 1234
    artifact_sha256 = factory.LazyAttribute(lambda v: f"{v.version:064x}")
    metrics = factory.LazyFunction(lambda: {"mae": 1.5, "pinball": 1.0, "coverage": 0.8})
    baseline_metrics = factory.LazyFunction(lambda: {"naive": {"mae": 2.0}})
    backtest = factory.LazyFunction(lambda: {"origins": 10, "horizon": 24})
    hyperparameters = factory.LazyFunction(lambda: {"hidden": 32})


class BacktestTrackFactory(factory.django.DjangoModelFactory):
    """Two origins an hour apart, one step ahead: the model's band and the close that followed."""

    class Meta:
        model = BacktestTrack

    version = factory.SubFactory(ModelVersionFactory)
    data = factory.LazyFunction(
        lambda: {
            "origin_times": [int((NEWEST - 2 * HOUR).timestamp() * 1000), int((NEWEST - HOUR).timestamp() * 1000)],
            "last_close": [100.0, 101.0],
            "steps": {"1": {"actual": [101.0, 99.0], "model": [[99.0, 100.0, 102.0], [100.0, 101.0, 103.0]]}},
        }
    )


class StoredFileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoredFile

    name = factory.Sequence(lambda n: f"models/BTCUSDT/{n:016x}.pt")
    data = b"artifact"
    size = factory.LazyAttribute(lambda f: len(f.data))


class ForecastFactory(factory.django.DjangoModelFactory):
    """Three steps an hour apart from `origin_time`, with the 10%, 50% and 90% prices."""

    class Meta:
        model = Forecast

    asset = factory.SubFactory(AssetFactory)
    model_version = None
    kind = factory.LazyAttribute(lambda f: Forecast.Kind.MODEL if f.model_version else Forecast.Kind.BASELINE)
    source = factory.LazyAttribute(lambda f: f"v{f.model_version.version}" if f.model_version else "baseline")
    origin_time = NEWEST
    last_close = Decimal("129")
    quantiles = factory.LazyFunction(lambda: [0.1, 0.5, 0.9])
    steps = factory.LazyAttribute(
        lambda f: [
            {
                "target_time": (f.origin_time + (k + 1) * HOUR).isoformat(),
                "values": [f"{120 + k}.00000000", f"{130 + k}.00000000", f"{140 + k}.50000000"],
            }
            for k in range(3)
        ]
    )


class PortfolioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Portfolio

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Portfolio {n}")


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transaction

    portfolio = factory.SubFactory(PortfolioFactory)
    asset = factory.SubFactory(AssetFactory)
    kind = Transaction.Kind.BUY
    quantity = Decimal("1")
    unit_price = Decimal("100")
    executed_at = NEWEST - 24 * HOUR

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Written around the services, so the portfolio's stored state is rebuilt as they would.
        tx = super()._create(model_class, *args, **kwargs)
        portfolio_state_rebuild(portfolio=tx.portfolio)
        return tx


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A token whose key is `key` (not stored: only its hash is)."""

    class Meta:
        model = ApiToken
        exclude = ("key",)

    user = factory.SubFactory(UserFactory)
    name = "script"
    key = factory.Sequence(lambda n: f"mur_test-key-{n:040d}")
    key_hash = factory.LazyAttribute(lambda t: hash_key(t.key))
    prefix = factory.LazyAttribute(lambda t: t.key[:12])


class PositionStateFactory(factory.django.DjangoModelFactory):
    """One bought unit at 100: what the services keep after a single buy (tests that need the
    state of a real history build it with portfolio_state_rebuild)."""

    class Meta:
        model = PositionState

    portfolio = factory.SubFactory(PortfolioFactory)
    asset = factory.SubFactory(AssetFactory)
    quantity = Decimal("1")
    cost = invested = Decimal("100")
    realized = withdrawn = rewards = fees = Decimal("0")
    first_at = NEWEST
    transactions = 1


class DailyFlowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DailyFlow

    portfolio = factory.SubFactory(PortfolioFactory)
    asset = factory.SubFactory(AssetFactory)
    day = NEWEST.date()
    closing = False
    quantity = Decimal("1")
    flow = Decimal("100")
    flow_time = Decimal("100") * int(NEWEST.timestamp() * 1_000_000)
    transactions = 1


class ExchangeConnectionFactory(factory.django.DjangoModelFactory):
    """A connection whose key and secret are `api_key` and `api_secret` (stored encrypted)."""

    class Meta:
        model = ExchangeConnection
        exclude = ("api_key", "api_secret")

    portfolio = factory.SubFactory(PortfolioFactory)
    api_key = factory.Sequence(lambda n: f"testkey{n:057d}")
    api_secret = factory.Sequence(lambda n: f"testsecret{n:054d}")
    key_last4 = factory.LazyAttribute(lambda c: c.api_key[-4:])
    key_hash = factory.LazyAttribute(lambda c: key_hash(c.api_key))
    api_key_encrypted = factory.LazyAttribute(lambda c: crypto.encrypt(c.api_key))
    api_secret_encrypted = factory.LazyAttribute(lambda c: crypto.encrypt(c.api_secret))
