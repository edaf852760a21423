"""The fake Binance server answers like Binance, as seen through python-binance's own Client
(including its get_historical_klines paging), so the other tests can trust it."""

from __future__ import annotations

import csv

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from .candle_checks import HOUR_MS, ms, utc


@pytest.fixture
def raw(fake_binance):
    client = Client(ping=False, requests_params={"timeout": 5})
    client.API_URL = fake_binance.api_url
    return client


def csv_rows(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [[int(r[0]), *r[1:6], int(r[6])] for r in rows]


def test_historical_klines_through_python_binance_are_the_csv_rows(raw, fake_binance, data_dir):
    rows = raw.get_historical_klines("BTCUSDT", Client.KLINE_INTERVAL_1DAY, start_str=0)
    # Seven fields, as the files have them: nothing invented.
    assert rows == csv_rows(data_dir / "BTCUSDT-1d.csv")
    first = fake_binance.calls("klines")[0].params
    assert (first["startTime"], first["limit"]) == ("0", "1") and "endTime" in first


def test_klines_parameters(raw, fake_binance):
    t0 = ms(utc(2021, 1, 1))
    assert len(raw.get_klines(symbol="BTCUSDT", interval="1h", startTime=t0)) == 500
    page = raw.get_klines(symbol="BTCUSDT", interval="1h", startTime=t0, endTime=t0 + 3 * HOUR_MS, limit=1000)
    assert [r[0] for r in page] == [t0 + i * HOUR_MS for i in range(4)]  # both ends included
    assert page[0][1:6] == ["28923.63", "29031.34", "28690.17", "28995.13", "2311.811445"]
    newest = raw.get_klines(symbol="BTCUSDT", interval="1h", limit=2)
    assert [r[4] for r in newest][-1] == "19093.63"
    with pytest.raises(BinanceAPIException) as err:
        raw.get_klines(symbol="BTCUSDT", interval="1h", limit=1001)
    assert err.value.status_code == 400


def test_unknown_symbol_and_exchange_info(raw):
    for call in (
        lambda: raw.get_klines(symbol="NOPEUSDT", interval="1h"),
        lambda: raw._get("exchangeInfo", data={"symbol": "NOPEUSDT"}),
    ):
        with pytest.raises(BinanceAPIException) as err:
            call()
        assert (err.value.status_code, err.value.code, err.value.message) == (400, -1121, "Invalid symbol.")
    info = raw.get_exchange_info()
    assert [(s["symbol"], s["baseAsset"], s["quoteAsset"], s["status"]) for s in info["symbols"]] == [
        ("BNBUSDT", "BNB", "USDT", "TRADING"),
        ("BTCUSDT", "BTC", "USDT", "TRADING"),
        ("ETHUSDT", "ETH", "USDT", "TRADING"),
    ]


def test_frozen_clock(raw, fake_binance):
    fake_binance.now_ms = ms(utc(2021, 11, 10, 14, 30))
    assert raw.get_server_time() == {"serverTime": fake_binance.now_ms}
    # The 14:00 candle is open: its close so far is the price; nothing later exists yet.
    page = raw.get_klines(symbol="BTCUSDT", interval="1h", startTime=ms(utc(2021, 11, 10, 13)))
    assert [r[0] for r in page] == [ms(utc(2021, 11, 10, 13)), ms(utc(2021, 11, 10, 14))]
    assert page[-1][2] == "69000.0"  # as the CSV writes it
    assert raw.get_symbol_ticker(symbol="BTCUSDT") == {"symbol": "BTCUSDT", "price": page[-1][4]}


def test_rate_limit_answer_carries_retry_after(raw, fake_binance):
    fake_binance.fail_next("429", retry_after=7)
    with pytest.raises(BinanceAPIException) as err:
        raw.ping()
    assert (err.value.status_code, err.value.code) == (429, -1003)
    assert err.value.response.headers["Retry-After"] == "7"
    assert raw.ping() == {}
    assert [r.status for r in fake_binance.calls("ping")] == [429, 200]
