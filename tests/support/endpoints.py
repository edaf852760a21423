"""Every API endpoint, with who may call it: the catalogue both access matrices walk (the API's and
the security suite's)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.world import World

ROLES = ("anonymous", "owner", "other", "staff")
CSV = "executed_at,kind,symbol,quantity,unit_price,fee,note\n2022-06-10T10:00:00Z,buy,ETHUSDT,2,50,0,csv\n"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {btc}, {portfolio}, {tx}, {token}, {v1}, {run}, {connection} filled from the world
    status: int  # for whoever may use it
    access: str  # "any" signed-in user, "staff" only, or "owner" of the object (others get 404)
    body: object = None
    format: str = "json"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


TX_BODY = {
    "symbol": "BTCUSDT",
    "kind": "buy",
    "quantity": "0.5",
    "unit_price": "110",
    "fee": "0",
    "executed_at": "2022-06-03T00:00:00Z",
    "note": "dip",
}
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
    Endpoint(
        "put",
        "/api/v1/portfolios/{portfolio}/transactions/{tx}/",
        200,
        "owner",
        {**TX_BODY, "kind": "sell", "quantity": "0.3", "executed_at": "2022-06-05T00:00:00Z"},
    ),
    Endpoint("patch", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 200, "owner", {"note": "taking profit"}),
    Endpoint("delete", "/api/v1/portfolios/{portfolio}/transactions/{tx}/", 204, "owner"),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/connections/", 200, "owner"),
    # Refused before Binance is asked: the matrix checks who gets that far.
    Endpoint("post", "/api/v1/portfolios/{portfolio}/connections/", 400, "owner", {"api_key": "", "api_secret": ""}),
    Endpoint("get", "/api/v1/portfolios/{portfolio}/connections/{connection}/", 200, "owner"),
    Endpoint("post", "/api/v1/portfolios/{portfolio}/connections/{connection}/sync/", 202, "owner"),
    Endpoint("delete", "/api/v1/portfolios/{portfolio}/connections/{connection}/", 204, "owner"),
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
    return endpoint.path.format(
        btc=w.btc.symbol,
        portfolio=w.portfolio.id,
        tx=w.sell.id,
        token=w.owner_token.id,
        v1=w.v1.id,
        run=w.run.id,
        connection=w.connection.id,
    )


def call(client, endpoint: Endpoint, path: str):
    if endpoint.format == "text/csv":
        return client.generic(endpoint.method.upper(), path, endpoint.body.encode(), content_type="text/csv")
    return getattr(client, endpoint.method)(path, endpoint.body, format="json")


def walk_routes(patterns, prefix=""):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from walk_routes(p.url_patterns, prefix + str(p.pattern).lstrip("^"))
        else:
            yield prefix + str(p.pattern).lstrip("^"), p.callback


def route_key(path: str) -> str:
    """A path or a route regex, with every parameter as {}."""
    import re

    path = path.removeprefix("/api/v1/").lstrip("^").rstrip("$")
    path = re.sub(r"\(\?P<[^>]+>[^)]*\)|\{[^}]+\}", "{}", path)
    return path.replace("\\", "")
