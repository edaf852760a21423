"""Every 404 of the API names what was not found, in the one error body: never DRF's "Not found.",
Django's "No Portfolio matches the given query." or "Object with symbol=… does not exist."."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from tests.support.endpoints import ENDPOINTS, Endpoint, call, url
from tests.support.world import assert_error

UNKNOWN = 999999
# Each path parameter of the catalogue, and what a 404 for an unknown value of it must say.
MESSAGES = {
    "btc": "No asset with symbol DOGEUSDT; /api/v1/assets/ lists the tracked ones.",
    "portfolio": f"No portfolio with id {UNKNOWN}.",
    "tx": f"No transaction with id {UNKNOWN}.",
    "token": f"No token with id {UNKNOWN}.",
    "v1": f"No model version with id {UNKNOWN}.",
    "run": f"No training run with id {UNKNOWN}.",
    "connection": f"No exchange connection with id {UNKNOWN}.",
}
LOOKUPS = [(e, name) for e in ENDPOINTS for name in re.findall(r"\{(\w+)\}", e.path)]


def unknown_url(endpoint: Endpoint, world, name: str) -> str:
    """The endpoint's URL with an unknown value for one parameter and the world's for the others."""
    unknown = "dogeusdt" if name == "btc" else str(UNKNOWN)
    return url(replace(endpoint, path=endpoint.path.replace("{" + name + "}", unknown)), world)


def test_every_lookup_is_covered():
    # A guard that cannot pass on an empty catalogue: every kind of lookup the API has is here.
    assert {name for _, name in LOOKUPS} == set(MESSAGES)
    assert len(LOOKUPS) >= 25


@pytest.mark.parametrize(("endpoint", "name"), LOOKUPS, ids=lambda v: v.id if isinstance(v, Endpoint) else v)
def test_an_unknown_object_is_named_in_the_404(world, no_broker, endpoint, name):
    role = "staff" if endpoint.access == "staff" else "owner"
    response = call(world.client(role), endpoint, unknown_url(endpoint, world, name))
    error = assert_error(response, 404)
    assert error["code"] == "not_found"
    assert error["message"] == MESSAGES[name]
    assert error["fields"] == {}


def test_another_users_portfolio_is_as_unknown_as_a_missing_one(world):
    """The same words as for an id that does not exist: a 404 tells nothing about other users."""
    other = world.client("other")
    for path in (f"/api/v1/portfolios/{world.portfolio.id}/", f"/api/v1/portfolios/{world.portfolio.id}/transactions/"):
        error = assert_error(other.get(path), 404)
        assert error["message"] == f"No portfolio with id {world.portfolio.id}."


def test_a_lookup_that_cannot_be_an_id_is_named_too(world):
    error = assert_error(world.client("owner").get("/api/v1/portfolios/abc/"), 404)
    assert error["message"] == "No portfolio with id abc."


def test_no_answer_uses_a_default_not_found_text(world):
    client = world.client("owner")
    for path in ("/api/v1/portfolios/0/", "/api/v1/tokens/0/", "/api/v1/assets/NOPE/forecasts/latest/"):
        message = assert_error(client.get(path), 404)["message"]
        assert message.startswith("No ") and "matches the given query" not in message, message
        assert message != "Not found." and "does not exist" not in message, message
