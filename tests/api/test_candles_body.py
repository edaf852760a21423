"""The candles endpoint's answers, byte for byte, against a reference built here in plain Python
from the Candle rows by the documented rules: decimals in plain notation without trailing zeros
("0" for zero), times ISO 8601 UTC with microseconds and a Z, oldest first unless
`ordering=-open_time`, `start`/`end` both included (a date is its whole UTC day), limit/offset
pages (500 by default, at most 1000, a bad limit falls back to the default) with DRF's count and
links. The endpoint writes its JSON without the serializers; this keeps its shape the same."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create
from forecasting.intervals import INTERVAL_MS
from forecasting.models import Asset, Candle

# The fast path is PostgreSQL's SQL, and SQLite keeps decimals as doubles (the 28-digit edges below
# would not survive it); on SQLite the serializer writes the page (tests/system/test_sqlite_concurrency.py).
pytestmark = pytest.mark.usefixtures("on_postgres")

NEWEST = datetime(2022, 6, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
COUNT = 1100
BASE = "http://testserver/api/v1/assets/{symbol}/candles/"


def _price(i: int) -> Decimal:
    """Prices with 0 to 8 places, some with trailing zeros as stored ("1.10000000")."""
    return Decimal(i * 7919 % 1_000_003 + 1).scaleb(-(i % 9))


@pytest.fixture
def candle_world(db, django_user_model):
    btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    rows = []
    for i in range(COUNT):
        open_time = NEWEST - (COUNT - 1 - i) * HOUR
        low, close = _price(i), _price(i + 1)
        rows.append(
            Candle(
                asset=btc,
                interval="1h",
                open_time=open_time,
                close_time=open_time + HOUR - timedelta(milliseconds=1),
                open=close,
                close=close,
                low=min(low, close),
                high=max(low, close) + Decimal("0.5"),
                volume=Decimal(i % 3) * Decimal("1.25000000"),  # 0, 1.25, 2.5
            )
        )
    # The edges of the columns: the smallest price, the largest, a whole volume of 24 digits.
    rows[0].low, rows[0].open, rows[0].close = Decimal("0.00000001"), Decimal("0.00000010"), Decimal("1E-8")
    rows[1].high = Decimal("99999999999999999999.99999999")
    rows[2].volume = Decimal("123456789012345678901234.00000000")
    Candle.objects.bulk_create(rows)
    # Candles of another interval for the same asset, and another asset's: never in the answer.
    Candle.objects.create(
        asset=btc,
        interval="1d",
        open_time=NEWEST - 24 * HOUR,
        close_time=NEWEST - timedelta(milliseconds=1),
        open=1,
        high=2,
        low=1,
        close=2,
        volume=3,
    )
    for interval, ms in INTERVAL_MS.items():
        asset = Asset.objects.create(
            symbol=f"X{interval.upper()}USDT", base_asset=f"X{interval.upper()}", quote_asset="USDT", interval=interval
        )
        step = timedelta(milliseconds=ms)
        Candle.objects.bulk_create(
            Candle(
                asset=asset,
                interval=interval,
                open_time=NEWEST - k * step,
                close_time=NEWEST - k * step + step - timedelta(milliseconds=1),
                open=Decimal("10.5"),
                high=Decimal("11"),
                low=Decimal("10.25"),
                close=Decimal(10 + k),
                volume=Decimal("0.001"),
            )
            for k in range(3)
        )
    user = django_user_model.objects.create_user(username="reader")
    _, key = token_create(user=user, name="reader")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- the reference ----------------------------------------------------------------------------------


def _decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("0", "-0") else text


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bound(text: str, side: str):
    if text == date.max.isoformat() and side == "end":
        return ("lte", datetime.max.replace(tzinfo=UTC))  # the last day has no day after it: no bound
    if len(text) == 10:
        day = date.fromisoformat(text)
        if side == "start":
            return ("gte", datetime.combine(day, time.min, UTC))
        return ("lt", datetime.combine(day + timedelta(days=1), time.min, UTC))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return ("gte" if side == "start" else "lte", moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def _int(text, default: int, *, strict: bool) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        return default
    if value < 0 or (strict and value == 0):
        return default
    return value


def _url(symbol: str, params: dict) -> str:
    return BASE.format(symbol=symbol) + ("?" + urlencode(sorted(params.items())) if params else "")


def expected(symbol: str, query: dict) -> dict:
    asset = Asset.objects.get(symbol=symbol)
    rows = list(Candle.objects.filter(asset=asset, interval=asset.interval).order_by("open_time"))
    for side in ("start", "end"):
        if query.get(side):
            op, bound = _bound(query[side], side)
            keep = {"gte": lambda t, b=bound: t >= b, "lte": lambda t, b=bound: t <= b, "lt": lambda t, b=bound: t < b}
            rows = [c for c in rows if keep[op](c.open_time)]
    terms = [t.strip() for t in query.get("ordering", "").split(",")]
    valid = [t for t in terms if t.lstrip("-") == "open_time"]
    if valid and valid[0] == "-open_time":
        rows.reverse()
    limit = min(_int(query.get("limit"), 500, strict=True), 1000)
    offset = _int(query.get("offset"), 0, strict=False)
    count = len(rows)
    page = [] if count == 0 or offset > count else rows[offset : offset + limit]
    params = {k: str(v) for k, v in query.items()}
    following = None
    if offset + limit < count:
        following = _url(symbol, {**params, "limit": str(limit), "offset": str(offset + limit)})
    previous = None
    if offset > 0:
        back = {**params, "limit": str(limit)}
        if offset - limit > 0:
            back["offset"] = str(offset - limit)
        else:
            back.pop("offset", None)
        previous = _url(symbol, back)
    return {
        "count": count,
        "next": following,
        "previous": previous,
        "results": [
            {
                "open_time": _time(c.open_time),
                "close_time": _time(c.close_time),
                "open": _decimal(c.open),
                "high": _decimal(c.high),
                "low": _decimal(c.low),
                "close": _decimal(c.close),
                "volume": _decimal(c.volume),
            }
            for c in page
        ],
    }


def _assert_same(client, symbol: str, query: dict) -> dict:
    response = client.get(f"/api/v1/assets/{symbol}/candles/", query)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = expected(symbol, query)
    # Bytes as DRF's JSON renderer writes them: compact, keys in this order.
    assert response.content.decode() == json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return body


QUERIES = [
    {},
    {"limit": 1},
    {"limit": 100},
    {"limit": 1000},
    {"limit": 5000},
    {"limit": 0},
    {"limit": "abc"},
    {"limit": -5},
    {"offset": "x"},
    {"limit": 100, "offset": 100},
    {"limit": 100, "offset": 50},
    {"limit": 100, "offset": 1050},
    {"limit": 100, "offset": 1000},
    {"limit": 100, "offset": 1100},
    {"limit": 100, "offset": 5000},
    {"limit": 1000, "offset": 1000},
    # Past PostgreSQL's bigint: an empty page with its links, not a database error.
    {"limit": 100, "offset": 10**29},
    {"start": "2022-01-01T00:00:00Z", "offset": 10**29},
    {"start": "2022-06-30T20:00:00Z"},
    {"start": "2022-06-26T23:00:00Z", "limit": 100},
    {"start": "2022-06-20T00:00:00Z", "end": "2022-06-21T12:30:00Z"},
    {"start": "2022-06-20", "end": "2022-06-21"},
    {"end": "2022-05-20"},
    {"start": "2022-07-01T01:00:00+03:00"},
    {"start": "2022-06-30T00:00:00Z", "end": "2022-06-29T00:00:00Z"},  # empty: start after end
    {"start": "2030-01-01"},  # empty: after the newest
    {"end": "2000-01-01", "offset": 10},
    {"start": "2022-06-01", "limit": 10, "offset": 30},
    {"ordering": "-open_time", "limit": 10},
    {"ordering": "-open_time", "limit": 10, "offset": 20},
    {"ordering": "open_time", "limit": 3, "offset": 1098},
    {"ordering": "not_a_field", "limit": 5},
    {"ordering": "-open_time,open_time", "limit": 5},
    {"interval": "1d", "limit": 5},  # not a parameter of this list: ignored
    {"end": "9999-12-31", "limit": 2},
    {"start": "2022-06-30T20:00:00.000Z", "end": "2022-06-30T21:59:59.999999+00:00"},
    {"start": "2022-06-30T20:00:00.5Z"},
    {"start": "2022-06-30T20:00:00"},  # no offset: UTC
    {"start": "0067-07-24T22:36:35+23:39", "limit": 2},
    {"start": "", "end": "", "ordering": "", "limit": 2},
    {"ordering": "-open_time", "start": "2022-06-20", "end": "2022-06-21", "limit": 10, "offset": 40},
]


@pytest.mark.parametrize("query", QUERIES, ids=[urlencode(q) or "default" for q in QUERIES])
def test_candle_pages_are_the_reference(candle_world, query):
    _assert_same(candle_world, "BTCUSDT", query)


def test_the_reference_covers_its_cases(candle_world):
    """A guard: the queries above hold the cases they are meant to."""
    assert len(expected("BTCUSDT", {"limit": 1})["results"]) == 1
    assert len(expected("BTCUSDT", {"limit": 1000})["results"]) == 1000
    assert expected("BTCUSDT", {"start": "2030-01-01"}) == {"count": 0, "next": None, "previous": None, "results": []}
    first = expected("BTCUSDT", {"limit": 3})["results"]
    assert (first[0]["low"], first[0]["open"], first[1]["high"], first[2]["volume"]) == (
        "0.00000001",
        "0.0000001",
        "99999999999999999999.99999999",
        "123456789012345678901234",
    )
    assert {c["volume"] for c in expected("BTCUSDT", {"limit": 9, "offset": 3})["results"]} == {"0", "1.25", "2.5"}


@pytest.mark.parametrize("interval", list(INTERVAL_MS))
def test_every_interval(candle_world, interval):
    body = _assert_same(candle_world, f"X{interval.upper()}USDT", {})
    assert body["count"] == 3


def test_symbol_in_any_case_and_other_renderers(candle_world):
    response = candle_world.get("/api/v1/assets/btcusdt/candles/", {"limit": 2})
    assert response.json()["results"] == expected("BTCUSDT", {"limit": 2})["results"]
    # The browsable API still renders the same page.
    html = candle_world.get("/api/v1/assets/BTCUSDT/candles/", {"limit": 2}, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
    assert b"0.00000001" in html.content


def test_a_range_page_is_one_query(candle_world, django_assert_num_queries):
    """The token and the page: no asset query, and no COUNT when the page shows the end."""
    path = "/api/v1/assets/BTCUSDT/candles/"
    candle_world.get(path, {"limit": 1})  # the token's last use is written once
    # Plus a savepoint and its release: the test's transaction is around the request.
    for query, queries in [({"start": "2022-06-26T23:00:00Z", "limit": 100}, 2), ({"limit": 10}, 3)]:
        with django_assert_num_queries(queries + 2):
            response = candle_world.get(path, query)
        assert response.json() == expected("BTCUSDT", query)
