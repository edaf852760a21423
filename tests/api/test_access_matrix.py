"""Every endpoint against every kind of caller: anonymous (401), the owner (2xx), another user
(404 for owned objects) and staff (staff-only actions; 403 for everyone else)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import get_resolver

from accounts.models import ApiToken
from portfolio.models import Portfolio, Transaction

from .conftest import T0, World, assert_error

ROLES = ("anonymous", "owner", "other", "staff")
CSV = "executed_at,kind,symbol,quantity,unit_price,fee,note\n2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,csv\n"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {btc}, {portfolio}, {tx}, {token}, {v1}, {run} filled from the world
    status: int  # for whoever may use it
    access: str  # "any" signed-in user, "staff" only, or "owner" of the object (others get 404)
    body: object = None
    format: str = "json"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


TX_BODY = {"symbol": "BTCUSDT", "kind": "buy", "quantity": "0.5", "unit_price": "110", "fee": "0",
           "executed_at": "2022-06-03T00:00:00Z", "note": "dip"}
ENDPOINTS = [
    Endpoint("get", "/api/v1/", 200, "any"),
    Endpoint("get", "/api/v1/ping/", 200, "any"),
    Endpoint("get", "/api/v1/assets/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/candles/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/forecasts/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/forecasts/latest/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/model-versions/", 200, "any"),
    Endpoint("get", "/api/v1/assets/{btc}/training-runs/", 200, "any"),
    Endpoint("get", "/api/v1/model-versions/", 200, "any"),
    Endpoint("get", "/api/v1/model-versions/{v1}/", 200, "any"),
    Endpoint("get", "/api/v1/training-runs/", 200, "any"),
    Endpoint("get", "/api/v1/training-runs/{run}/", 200, "any"),
    Endpoint("post", "/api/v1/assets/{btc}/retrain/", 202, "staff"),
    Endpoint("post", "/api/v1/assets/{btc}/rollback/", 200, "staff"),
    Endpoint("post", "/api/v1/model-versions/{v1}/promote/", 200, "staff"),
    Endpoint("get", "/api/v1/portfolios/", 200, "any"),
    Endpoint("post", "/api/v1/portfolios/", 201, "any", {"name": "Trading"}),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/", 200, "owner"),
    Endpoint("put", "/api/v1/portfolios/{portfolio}/", 200, "owner", {"name": "Renamed", "description": ""}),
    Endpoint("patch", "/api/v1/portfolios/{portfolio}/", 200, "owner", {"description": "changed"}),
    Endpoint("delete", "/api/v1/portfolios/{portfolio}/", 204, "owner"),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/holdings/", 200, "owner"),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/performance/", 200, "owner"),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/forecast/", 200, "owner"),
    Endpoint("post", "/api/v1/portfolios/{portfolio}/import-csv/", 201, "owner", CSV, "text/csv"),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/transactions/", 200, "owner"),
    Endpoint("post", "/api/v1/portfolios/{portfolio}/transactions/", 201, "owner", TX_BODY),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 200, "owner"),
    Endpoint("put", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 200, "owner",
             {**TX_BODY, "kind": "sell", "quantity": "0.3", "executed_at": "2022-06-05T00:00:00Z"}),
    Endpoint("patch", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 200, "owner", {"note": "taking profit"}),
    Endpoint("delete", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 204, "owner"),
    Endpoint("get", "/api/v1/tokens/", 200, "any"),
    Endpoint("post", "/api/v1/tokens/", 201, "any", {"name": "ci", "expires_in_days": 30}),
    Endpoint("get", "/api/v1/tokens/{token}/", 200, "owner"),
    Endpoint("delete", "/api/v1/tokens/{token}/", 204, "owner"),
]


def expected(endpoint: Endpoint, role: str) -> int:
    if role == "anonymous":
        return 401
    if endpoint.access == "staff" and role != "staff":
        return 403
    if endpoint.access == "owner" and role != "owner":
        return 404  # someone else's object does not exist for you, staff included
    return endpoint.status


def url(endpoint: Endpoint, w: World) -> str:
    return endpoint.path.format(btc=w.btc.symbol, portfolio=w.portfolio.id, tx=w.sell.id, token=w.owner_token.id,
                                v1=w.v1.id, run=w.run.id)


def call(client, endpoint: Endpoint, path: str):
    if endpoint.format == "text/csv":
        return client.generic(endpoint.method.upper(), path, endpoint.body.encode(), content_type="text/csv")
    return getattr(client, endpoint.method)(path, endpoint.body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.id)
def test_access(world, no_broker, endpoint, role):
    response = call(world.client(role), endpoint, url(endpoint, world))
    status = expected(endpoint, role)
    if status >= 400:
        error = assert_error(response, status)
        if status == 401:
            assert error["code"] == "not_authenticated"
            assert response["WWW-Authenticate"] == 'Token realm="api"'
        return
    assert response.status_code == status, response.content[:500]


@pytest.mark.parametrize("role", ["other", "staff"])
def test_lists_hold_only_the_callers_own_objects(world, role):
    client = world.client(role)
    assert client.get("/api/v1/portfolios/").json()["results"] == []
    assert [t["name"] for t in client.get("/api/v1/tokens/").json()["results"]] == [
        {"other": "other's", "staff": "ops"}[role]]


def test_denied_writes_change_nothing(world, no_broker):
    """404 and 403 answers are not just answers: the objects stay as they were."""
    before = (list(Portfolio.objects.values()), list(Transaction.objects.values()), list(ApiToken.objects.values()))
    for endpoint in ENDPOINTS:
        if endpoint.method != "get" and endpoint.access in ("owner", "staff"):
            assert call(world.client("other"), endpoint, url(endpoint, world)).status_code in (403, 404)
    after = (list(Portfolio.objects.values()), list(Transaction.objects.values()), list(ApiToken.objects.values()))
    assert after == before
    assert no_broker == []
    world.v1.refresh_from_db()
    assert world.v1.status == "retired"


def test_owner_writes_take_effect(world, no_broker):
    owner = world.client("owner")
    owner.patch(f"/api/v1/portfolios/{world.portfolio.id}/", {"description": "changed"}, format="json")
    world.portfolio.refresh_from_db()
    assert world.portfolio.description == "changed"
    owner.delete(f"/api/v1/portfolios/{world.portfolio.id}/transactions/{world.sell.id}/")
    assert not Transaction.objects.filter(id=world.sell.id).exists()
    created = owner.post(f"/api/v1/portfolios/{world.portfolio.id}/transactions/", TX_BODY, format="json").json()
    tx = Transaction.objects.get(id=created["id"])
    assert (tx.asset, tx.kind, str(tx.quantity), tx.executed_at) == (world.btc, "buy", "0.50000000", T0.replace(
        day=3, hour=0))


def test_every_api_route_is_in_the_matrix():
    """A new endpoint must be added above (and so get its access checks)."""
    from mur_site import api_router

    covered = {(e.method, _route_key(e.path)) for e in ENDPOINTS}
    routes = set()
    for regex, callback in _walk(get_resolver(api_router).url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if "format" in regex or view_class.__name__ == "NotFoundApi":
            continue
        actions = getattr(callback, "actions", None)
        # DRF adds "head" to a viewset's actions once it has served a GET: it is GET's twin.
        methods = (actions.keys() - {"head", "options"}) if actions else [m for m in ("get", "post", "put", "patch", "delete")
                                                  if hasattr(view_class, m)]
        routes |= {(method, _route_key(regex)) for method in methods}
    assert len(routes) > 30
    assert routes - covered == set()


def _walk(patterns, prefix=""):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from _walk(p.url_patterns, prefix + str(p.pattern).lstrip("^"))
        else:
            yield prefix + str(p.pattern).lstrip("^"), p.callback


def _route_key(path: str) -> str:
    """A path or a route regex, with every parameter as {}."""
    import re

    path = path.removeprefix("/api/v1/").lstrip("^").rstrip("$")
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)|\{[^}]+\}", "{}", path)
    return path.replace("\\", "")
