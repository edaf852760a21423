"""The fake server's signed endpoints check requests as Binance documents them
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type)."""

from __future__ import annotations

import hashlib
import hmac
import time
from decimal import Decimal

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from tests.fakes.binance_account import generate_account


@pytest.fixture
def account(fake_binance):
    account = generate_account(fake_binance, pairs=["BTCUSDT", "ETHBTC"], trades=40, seed=3)
    fake_binance.add_account(account)
    return account


def client_for(server, key: str, secret: str) -> Client:
    client = Client(key, secret, ping=False)
    client.API_URL = server.api_url
    client.MARGIN_API_URL = server.api_url.removesuffix("/api") + "/sapi"
    return client


def signed_get(server, path: str, query: str, secret: str, key: str | None) -> requests.Response:
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MBX-APIKEY": key} if key else {}
    base = server.api_url.removesuffix("/api")
    return requests.get(f"{base}{path}?{query}&signature={signature}", headers=headers, timeout=5)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_python_binance_reads_the_account_unchanged(fake_binance, account):
    client = client_for(fake_binance, account.api_key, account.api_secret)
    assert client.get_account_api_permissions()["enableReading"] is True
    balances = {b["asset"]: Decimal(b["free"]) for b in client.get_account()["balances"]}
    assert balances == account.balances
    trades = client.get_my_trades(symbol="ETHBTC", fromId=0, limit=1000)
    assert trades == account.trades["ETHBTC"]
    assert client.get_my_trades(symbol="ETHBTC", fromId=trades[-1]["id"] + 1) == []


def test_trade_prices_are_inside_the_candles(fake_binance, account):
    series = fake_binance.series("BTCUSDT", "1h")
    for trade in account.trades["BTCUSDT"]:
        row = series.rows[series.open_times.index(trade["time"] - trade["time"] % 3_600_000)]
        assert Decimal(row[3]) <= Decimal(trade["price"]) <= Decimal(row[2])


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("no key header", 401, -2014),
        ("unknown key", 401, -2015),
        ("wrong secret", 400, -1022),
        ("old timestamp", 400, -1021),
        ("timestamp ahead", 400, -1021),
        ("recvWindow too large", 400, -1131),
    ],
)
def test_signed_requests_are_checked_like_binance(fake_binance, account, case, status, code):
    key, secret, ts, extra = account.api_key, account.api_secret, now_ms(), ""
    if case == "no key header":
        key = None
    elif case == "unknown key":
        key = "x" * 64
    elif case == "wrong secret":
        secret = "not-the-secret"
    elif case == "old timestamp":
        ts -= 6000  # past the default recvWindow of 5,000 ms
    elif case == "timestamp ahead":
        ts += 1500
    else:
        extra = "&recvWindow=60001"
    response = signed_get(fake_binance, "/api/v3/account", f"timestamp={ts}{extra}", secret, key)
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["msg"]


def test_a_longer_recv_window_accepts_an_older_timestamp(fake_binance, account):
    query = f"recvWindow=20000&timestamp={now_ms() - 10_000}"
    response = signed_get(fake_binance, "/api/v3/account", query, account.api_secret, account.api_key)
    assert response.status_code == 200


def test_capital_history_takes_at_most_ninety_days(fake_binance, account):
    client = client_for(fake_binance, account.api_key, account.api_secret)
    start = account.deposits[0]["insertTime"] - 1000
    assert len(client.get_deposit_history(startTime=start, endTime=start + 90 * 86_400_000)) >= 1
    with pytest.raises(BinanceAPIException) as exc:
        client.get_deposit_history(startTime=start, endTime=start + 91 * 86_400_000)
    assert exc.value.code == -1127


def test_every_answer_reports_the_weight_used(fake_binance, account):
    client = client_for(fake_binance, account.api_key, account.api_secret)
    client.get_account()
    first = int(client.response.headers["X-MBX-USED-WEIGHT-1M"])
    client.get_account()
    assert int(client.response.headers["X-MBX-USED-WEIGHT-1M"]) in (first + 20, 20)  # 20, or a new minute
