"""API reads run without a request transaction; writes run in one, and an error after a write rolls it
back. On a database the test does not wrap in its own transaction, so BEGIN and COMMIT are real."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver
from rest_framework import exceptions
from rest_framework.routers import APIRootView

from core.api.mixins import WritesInTransaction
from core.api.views import NotFoundApi
from portfolio import services
from portfolio.models import Transaction
from tests.support.world import build_world

pytestmark = pytest.mark.django_db(transaction=True)


def statements(captured) -> list[str]:
    return [q["sql"].split()[0].upper() for q in captured.captured_queries]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/ping/",
        "/api/v1/assets/BTCUSDT/forecasts/latest/",
        "/api/v1/portfolios/",
        "/api/v1/assets/BTCUSDT/candles/?limit=5",
    ],
)
def test_a_read_opens_no_transaction(django_user_model, path):
    world = build_world(django_user_model)
    client = world.client("owner")
    client.get(path)  # the first request may write the token's last use
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    assert statements(captured)
    assert not {"BEGIN", "SAVEPOINT", "COMMIT"} & set(statements(captured)), statements(captured)


def test_a_write_runs_in_one_transaction(django_user_model):
    world = build_world(django_user_model)
    with CaptureQueriesContext(connection) as captured:
        created = world.client("owner").post("/api/v1/portfolios/", {"name": "Second"}, format="json")
    assert created.status_code == 201
    kinds = statements(captured)
    assert kinds[0] == "BEGIN" and kinds[-1] == "COMMIT" and "INSERT" in kinds, kinds


def test_an_error_after_a_write_rolls_the_write_back(django_user_model, monkeypatch):
    """The transaction is saved, then the request fails with a 400: nothing of it stays."""
    world = build_world(django_user_model)
    real_create = services.transaction_create

    def create_then_fail(**kwargs):
        real_create(**kwargs)
        raise exceptions.ValidationError({"note": ["Refused after the row was written."]})

    monkeypatch.setattr(services, "transaction_create", create_then_fail)
    before = Transaction.objects.count()
    response = world.client("owner").post(
        f"/api/v1/portfolios/{world.portfolio.id}/transactions/",
        {
            "symbol": "BTCUSDT",
            "kind": "buy",
            "quantity": "0.5",
            "unit_price": "100",
            "executed_at": "2022-06-10T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    assert Transaction.objects.count() == before


def test_every_api_view_writes_in_a_transaction():
    """A view left out would still be safe (ATOMIC_REQUESTS wraps it), but its reads pay for BEGIN and
    COMMIT; this keeps the rule the same for every endpoint."""
    seen = []

    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif (prefix + str(p.pattern)).startswith(("api/v1", "^api/v1")):
                cls = getattr(p.callback, "cls", None)
                if cls is not None and cls not in (NotFoundApi, APIRootView):  # neither touches the database
                    seen.append(cls)
                    assert issubclass(cls, WritesInTransaction), cls
                    assert p.callback._non_atomic_requests == {"default"}, cls

    walk(get_resolver().url_patterns)
    assert len(set(seen)) >= 10
