"""The largest values every entry point accepts render on every page and in every answer; hostile
JSON and odd files are refused with a clear 4xx, never a 500."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from portfolio.services import MAX_DECIMAL, transaction_create
from tests.reliability import record
from tests.support.world import T0, assert_error

from .conftest import client_for

# Just under the shared limit (portfolio.services.MAX_DECIMAL), with all 8 places.
LARGEST = MAX_DECIMAL - Decimal("0.00000001")
EXTREMES = {
    "5e15 units at 1": (Decimal("5e15"), Decimal("1"), Decimal("0")),
    "1e26 of cost": (Decimal("1e13"), Decimal("1e13"), Decimal("0")),
    "largest of everything": (LARGEST, LARGEST, LARGEST),
    "smallest units": (Decimal("0.00000001"), Decimal("0.00000001"), Decimal("0")),
}


def pages(world, portfolio_id: int, tx_id: int) -> list[str]:
    return [
        "/portfolios/",
        f"/portfolios/{portfolio_id}/",
        f"/portfolios/{portfolio_id}/transactions/{tx_id}/edit/",
        f"/portfolios/{portfolio_id}/export.csv",
        f"/portfolios/{portfolio_id}/?date_to=9999-12-31",
        f"/portfolios/{portfolio_id}/?date_from=0001-01-01&date_to=0001-01-01",
        "/assets/BTCUSDT/",
    ]


API = [
    "/api/v1/portfolios/{p}/",
    "/api/v1/portfolios/{p}/holdings/",
    "/api/v1/portfolios/{p}/performance/",
    "/api/v1/portfolios/{p}/forecast/",
    "/api/v1/portfolios/{p}/transactions/",
    "/api/v1/portfolios/{p}/transactions/?end=9999-12-31",
]


@pytest.mark.parametrize("case", EXTREMES)
def test_the_largest_accepted_values_render_everywhere(world, case):
    quantity, price, fee = EXTREMES[case]
    tx = transaction_create(
        portfolio=world.portfolio,
        asset=world.btc,
        kind="buy",
        quantity=quantity,
        unit_price=price,
        fee=fee,
        executed_at=T0 + timedelta(days=2),
    )
    page = client_for(world, "owner")
    statuses = {}
    for path in pages(world, world.portfolio.id, tx.id):
        statuses[path] = page.get(path).status_code
    # Staff see the same rows in admin.
    staff = client_for(world, "staff")
    for path in (
        "/admin/portfolio/transaction/",
        f"/admin/portfolio/transaction/{tx.id}/change/",
        f"/admin/portfolio/portfolio/{world.portfolio.id}/change/",
    ):
        statuses[path] = staff.get(path).status_code
    api = world.client("owner")
    for path in API:
        url = path.format(p=world.portfolio.id)
        statuses[url] = api.get(url).status_code
    assert set(statuses.values()) == {200}, statuses
    record("security", "stored extremes render on every page and API answer", probes=len(statuses))


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "\\ud800"}',
        '{"name": "ok", "description": "\\udfff lone"}',
        "[" * 1000 + "]" * 1000,
        '{"name": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_hostile_json_is_a_400_with_the_error_body(world, body):
    api = world.client("owner")
    error = assert_error(api.generic("POST", "/api/v1/portfolios/", body, content_type="application/json"), 400)
    assert error["message"]
    tx_url = f"/api/v1/portfolios/{world.portfolio.id}/transactions/"
    bad_kind = (
        '{"symbol": "BTCUSDT", "kind": "\\ud800", "quantity": "1", "unit_price": "1", '
        '"executed_at": "2022-06-10T00:00:00Z"}'
    )
    assert_error(api.generic("POST", tx_url, bad_kind, content_type="application/json"), 400)
    record("security", "hostile JSON answered 400 with the error body", probes=2)


@pytest.mark.parametrize(
    "content, expect",
    [
        ("executed_at," + "x" * 131_073 + "\n", "line 1: "),
        ("executed_at,kind,symbol,quantity,unit_price\r2022-06-10T10:00:00Z,buy,BTCUSDT,1,50\r", None),
    ],
)
def test_odd_csv_files_on_the_page_are_answered_not_crashed(world, content, expect):
    page = client_for(world, "owner")
    before = world.portfolio.transactions.count()
    response = page.post(
        f"/portfolios/{world.portfolio.id}/import/",
        {"file": SimpleUploadedFile("odd.csv", content.encode(), "text/csv")},
        follow=True,
    )
    assert response.status_code == 200
    if expect is None:  # old Mac line endings are line endings
        assert world.portfolio.transactions.count() == before + 1
    else:
        assert expect in response.content.decode()
        assert world.portfolio.transactions.count() == before
