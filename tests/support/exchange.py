"""Fixtures for exchange connections: a Binance account on the fake server and a portfolio
connected to it (registered in tests/conftest.py)."""

from __future__ import annotations

import pytest

from forecasting.models import Asset
from portfolio.exchange import crypto
from portfolio.exchange.client import BinanceAccount
from portfolio.models import ExchangeConnection
from tests import factories
from tests.fakes.binance_account import generate_account

PAIRS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC", "BNBBTC", "BNBETH"]


@pytest.fixture
def binance_account(fake_binance, settings):
    """A read-only account with 300 trades over six pairs (three of them crosses), served signed."""
    account = generate_account(fake_binance, pairs=PAIRS, trades=300, seed=7)
    fake_binance.add_account(account)
    settings.EXCHANGE_HISTORY_START = "2020-10-01"  # fewer empty 90-day windows to read
    for coin in ("BTC", "ETH", "BNB"):
        Asset.objects.get_or_create(symbol=f"{coin}USDT", defaults={"base_asset": coin, "quote_asset": "USDT"})
    return account


@pytest.fixture
def connection(binance_account, db):
    return factories.ExchangeConnectionFactory(api_key=binance_account.api_key, api_secret=binance_account.api_secret)


def account_client(account, server, **kwargs) -> BinanceAccount:
    kwargs.setdefault("max_retries", 1)
    return BinanceAccount(api_key=account.api_key, api_secret=account.api_secret, api_url=server.api_url, **kwargs)


def secret_of(connection: ExchangeConnection) -> str:
    return crypto.decrypt(connection.api_secret_encrypted)
