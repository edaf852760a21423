"""Every endpoint against every kind of caller: anonymous (401), the owner (2xx), another user
(404 for owned objects) and staff (staff-only actions; 403 for everyone else)."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from accounts.models import ApiToken
from portfolio.models import Portfolio, Transaction
from tests.support.endpoints import ENDPOINTS, ROLES, TX_BODY, call, expected, route_key, url, walk_routes
from tests.support.world import T0, assert_error


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
        {"other": "other's", "staff": "ops"}[role]
    ]


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
    assert (tx.asset, tx.kind, str(tx.quantity), tx.executed_at) == (
        world.btc,
        "buy",
        "0.50000000",
        T0.replace(day=3, hour=0),
    )


def test_every_api_route_is_in_the_matrix():
    """A new endpoint must be added above (and so get its access checks)."""
    from mur_site import api_router

    covered = {(e.method, route_key(e.path)) for e in ENDPOINTS}
    routes = set()
    for regex, callback in walk_routes(get_resolver(api_router).url_patterns):
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if "format" in regex or view_class.__name__ == "NotFoundApi":
            continue
        actions = getattr(callback, "actions", None)
        # DRF adds "head" to a viewset's actions once it has served a GET: it is GET's twin.
        methods = (
            (actions.keys() - {"head", "options"})
            if actions
            else [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]
        )
        routes |= {(method, route_key(regex)) for method in methods}
    assert len(routes) > 30
    assert routes - covered == set()
