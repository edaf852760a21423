"""A small world for the API tests: an asset with candles, model versions, a training run and
forecasts; an owner with a portfolio, transactions and a token; another user; a staff user."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from forecasting.models import Asset, Candle, Forecast, ModelVersion, TrainingRun
from portfolio import services
from portfolio.models import ExchangeConnection, Portfolio, Transaction
from tests.factories import ExchangeConnectionFactory, ModelVersionFactory, candles

# Well in the past, so nothing depends on today's date.
NEWEST = datetime(2022, 6, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
T0 = datetime(2022, 6, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery-staple"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def make_candles(asset: Asset, count: int, *, newest: datetime = NEWEST) -> list[Candle]:
    """`count` hourly candles ending at `newest`; the close is the candle's index + 100."""
    return candles(asset, [100 + i for i in range(count)], newest=newest)


def make_version(asset: Asset, version: int, status: str, **fields) -> ModelVersion:
    return ModelVersionFactory(
        asset=asset,
        version=version,
        status=status,
        artifact_sha256="1" * 64,
        backtest={"origins": 10},
        metrics={"mae": 1.5, "coverage": 0.8},
        hyperparameters={"hidden": 32},
        **fields,
    )


def make_forecast(
    asset: Asset,
    origin: datetime,
    *,
    source: str,
    version: ModelVersion | None = None,
    steps: int = 3,
    stale: bool = False,
) -> Forecast:
    kind = Forecast.Kind.MODEL if version else Forecast.Kind.BASELINE
    return Forecast.objects.create(
        asset=asset,
        model_version=version,
        kind=kind,
        source=source,
        origin_time=origin,
        last_close="129.00000000",
        quantiles=[0.1, 0.5, 0.9],
        stale=stale,
        steps=[
            {
                "target_time": (origin + (k + 1) * HOUR).isoformat(),
                "values": [f"{120 + k}.00000000", f"{130 + k}.00000000", f"{140 + k}.50000000"],
            }
            for k in range(steps)
        ],
    )


@dataclass
class World:
    btc: Asset
    eth: Asset
    run: TrainingRun
    v1: ModelVersion
    v2: ModelVersion
    forecast: Forecast
    owner: object
    other: object
    staff: object
    keys: dict[str, str]  # role -> raw API key
    portfolio: Portfolio
    buy: Transaction
    sell: Transaction
    owner_token: ApiToken
    connection: ExchangeConnection

    def client(self, role: str, **kwargs) -> APIClient:
        """An API client for a role: anonymous, owner, other or staff (token authentication)."""
        c = APIClient(**kwargs)
        if role != "anonymous":
            c.credentials(HTTP_AUTHORIZATION=f"Token {self.keys[role]}")
        return c


def build_world(django_user_model) -> World:
    btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    make_candles(btc, 24 * 40)
    make_candles(eth, 24 * 40)
    run = TrainingRun.objects.create(
        asset=btc,
        status=TrainingRun.Status.SUCCEEDED,
        triggered_by="schedule",
        started_at=NEWEST - 3 * HOUR,
        finished_at=NEWEST - 2 * HOUR,
        epoch=20,
        max_epochs=20,
    )
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, retired_at=NEWEST - 2 * HOUR)
    v2 = make_version(
        btc, 2, ModelVersion.Status.CHAMPION, replaced=v1, training_run=run, promoted_at=NEWEST - 2 * HOUR
    )
    make_forecast(btc, NEWEST - HOUR, source="baseline")
    forecast = make_forecast(btc, NEWEST, source="v2", version=v2)
    make_forecast(eth, NEWEST, source="baseline")

    owner = django_user_model.objects.create_user(username="owner", password=PASSWORD)
    other = django_user_model.objects.create_user(username="other", password=PASSWORD)
    staff = django_user_model.objects.create_user(username="staff", password=PASSWORD, is_staff=True)
    # An operator: the two permissions the staff actions need (forecasting/permissions.py).
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_trainingrun", "change_modelversion"]))
    keys = {}
    owner_token, keys["owner"] = token_create(user=owner, name="laptop")
    _, keys["other"] = token_create(user=other, name="other's")
    _, keys["staff"] = token_create(user=staff, name="ops")
    portfolio = services.portfolio_create(owner=owner, name="Main", description="Long term")
    buy = services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("1"),
        unit_price=Decimal("100"),
        fee=Decimal("1"),
        executed_at=T0,
    )
    sell = services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="sell",
        quantity=Decimal("0.25"),
        unit_price=Decimal("120"),
        executed_at=T0 + 24 * HOUR,
    )
    return World(
        btc=btc,
        eth=eth,
        run=run,
        v1=v1,
        v2=v2,
        forecast=forecast,
        owner=owner,
        other=other,
        staff=staff,
        keys=keys,
        portfolio=portfolio,
        buy=buy,
        sell=sell,
        owner_token=owner_token,
        connection=ExchangeConnectionFactory(portfolio=portfolio),
    )


@pytest.fixture
def world(db, django_user_model) -> World:
    return build_world(django_user_model)


@pytest.fixture
def no_broker(monkeypatch):
    """Training and forecast tasks recorded instead of sent: no test needs a broker."""
    from forecasting import tasks

    sent = []
    monkeypatch.setattr(tasks.training_run_task, "delay", lambda *a, **k: sent.append(("train", a)))
    monkeypatch.setattr(tasks.forecast_task, "delay", lambda *a, **k: sent.append(("forecast", a)))
    return sent


def assert_error(response, status: int, *, message: str | None = None, field: str | None = None) -> dict:
    """The one error body of every 4xx; returns its `error` object."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"status", "code", "message", "fields"}, error
    assert error["status"] == status
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if message is not None:
        assert message in error["message"], error
    if field is not None:
        assert field in error["fields"], error
    return error
