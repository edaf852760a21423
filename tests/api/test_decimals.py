"""Every decimal of every API answer is written by one rule (the schema's description says it): a
string in plain notation, at most 8 places, no trailing zeros ("0.25", "100", "0")."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from core.formatting import decimal_string
from tests.support.endpoints import ENDPOINTS, Endpoint, call, url
from tests.support.world import T0

RULE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d{0,7}[1-9])?")
NUMBER_TEXT = re.compile(r"-?\d*\.?\d+(?:[eE][+-]?\d+)?")
# Strings of digits that are not amounts.
NOT_DECIMALS = {"artifact_sha256", "data_digest", "prefix", "key", "name", "note", "description", "text", "key_last4"}
# Answers that must hold decimals: a guard that cannot pass on empty answers.
WITH_DECIMALS = {
    "/api/v1/assets/{btc}/candles/",
    "/api/v1/assets/{btc}/forecasts/",
    "/api/v1/assets/{btc}/forecasts/latest/",
    "/api/v1/portfolios/{portfolio}/holdings/",
    "/api/v1/portfolios/{portfolio}/performance/",
    "/api/v1/portfolios/{portfolio}/forecast/",
    "/api/v1/portfolios/{portfolio}/transactions/",
    "/api/v1/portfolios/{portfolio}/transactions/{tx}/",
}


def follows_the_rule(text) -> bool:
    return isinstance(text, str) and RULE.fullmatch(text) is not None and text != "-0"


def leaves(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v, key)
    else:
        yield key, value


@pytest.fixture(scope="module")
def decimal_names(django_db_blocker) -> set[str]:
    """Every property the schema documents as a decimal (or a list of decimals)."""
    from django.test import Client

    with django_db_blocker.unblock():
        schema = json.loads(Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if isinstance(prop, dict) and "decimal" in (prop.get("format"), prop.get("items", {}).get("format")):
                    names.add(name)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    assert {"close", "volume", "last_close", "values", "quantity", "fee", "value", "median"} <= names
    return names


def test_the_rule():
    good = ["0", "0.25", "100", "-5.1", "0.00000001", "12345678901234567890.12345678"]
    bad = ["0.25000000", "100.0", "1E+2", "0E-8", "-0", "0.123456789", ".5", "007", 0.25, "1e-8"]
    assert [follows_the_rule(t) for t in good] == [True] * len(good)
    assert [follows_the_rule(t) for t in bad] == [False] * len(bad)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.status < 300], ids=lambda e: e.id)
def test_every_decimal_of_every_answer_follows_the_rule(world, no_broker, decimal_names, endpoint: Endpoint):
    role = "staff" if endpoint.access == "staff" else "owner"
    response = call(world.client(role), endpoint, url(endpoint, world))
    assert response.status_code == endpoint.status, response.content[:300]
    if endpoint.status == 204:
        return
    checked = 0
    for key, value in leaves(response.json()):
        if key in decimal_names:
            assert value is None or follows_the_rule(value), (key, value)
            checked += value is not None
        elif isinstance(value, str) and key not in NOT_DECIMALS:
            # A number written as text that the schema does not call a decimal would escape the rule.
            assert not NUMBER_TEXT.fullmatch(value), (key, value)
    if endpoint.method == "get" and endpoint.path in WITH_DECIMALS:
        assert checked > 0, endpoint.path


def test_the_same_values_read_the_same_everywhere(world):
    """The world's sell of 0.25 BTC at 120 without a fee, and candles closing at whole numbers."""
    client = world.client("owner")
    base = f"/api/v1/portfolios/{world.portfolio.id}"
    sell = client.get(f"{base}/transactions/{world.sell.id}/").json()
    assert (sell["quantity"], sell["unit_price"], sell["fee"]) == ("0.25", "120", "0")
    listed = next(t for t in client.get(f"{base}/transactions/").json()["results"] if t["id"] == world.sell.id)
    assert (listed["quantity"], listed["unit_price"], listed["fee"]) == ("0.25", "120", "0")
    [btc] = client.get(f"{base}/holdings/").json()["holdings"]
    assert btc["quantity"] == "0.75" and btc["realized_pnl"] == "4.75"  # (120 - 101) x 0.25
    candle = client.get("/api/v1/assets/BTCUSDT/candles/", {"limit": 1}).json()["results"][0]
    assert (candle["open"], candle["high"], candle["low"], candle["volume"]) == ("100", "101", "99", "1.5")
    latest = client.get("/api/v1/assets/BTCUSDT/forecasts/latest/").json()
    assert latest["last_close"] == "129" and latest["steps"][0]["values"] == ["120", "130", "140.5"]


@pytest.mark.parametrize("quantity", ["0.25", "0.25000000", 0.25, "2.5E-1"])
def test_inputs_are_accepted_as_before_and_answered_by_the_rule(world, quantity):
    body = {"symbol": "BTCUSDT", "kind": "buy", "quantity": quantity, "unit_price": "61000.50", "fee": 0}
    response = world.client("owner").post(
        f"/api/v1/portfolios/{world.portfolio.id}/transactions/",
        {**body, "executed_at": T0.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["quantity"], answer["unit_price"], answer["fee"]) == ("0.25", "61000.5", "0")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.25000000"), "0.25"),
        (Decimal("1E+2"), "100"),
        (Decimal("0E-8"), "0"),
        (Decimal("-0E-8"), "0"),
        (Decimal("-0.000000001"), "0"),  # rounds to a zero, written without its sign
        (Decimal("1.123456789"), "1.12345679"),
        (Decimal("12345678901234567890.12345678"), "12345678901234567890.12345678"),
        ("140.50000000", "140.5"),  # a forecast's stored price
        ("1e-05", "0.00001"),  # a float stored as text by older code
        (0.1, "0.1"),
        (0, "0"),
    ],
)
def test_the_rule_as_written(value, text):
    assert decimal_string(value, trim=True) == text
    assert follows_the_rule(text)
