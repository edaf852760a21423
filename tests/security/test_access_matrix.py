"""Every URL of the site, found by walking the root URLconf, against every kind of caller:
anonymous, the owner, another user and staff. A URL that is not classified below fails the test,
so a new page cannot be added without saying who may see it.

Public without signing in: the landing page, sign-in, sign-up, the password-reset pages, /healthz
and the API's schema and docs (they describe the API, nothing about anyone's data). The API
itself (/api/v1/) is checked endpoint by endpoint in tests/api/test_access_matrix.py; here its
routes are only required to be listed there."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.urls import get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import ApiToken
from portfolio.models import Portfolio, Transaction
from tests.reliability import record
from tests.support.endpoints import ENDPOINTS
from tests.support.endpoints import route_key as _route_key

from .conftest import ROLES, client_for


@dataclass(frozen=True)
class Page:
    access: str
    post: bool = False  # the view takes a form by POST
    query: str = ""  # what a GET sends after the path, for views that need parameters


# access: who gets the page (200), and what everyone else gets.
#   guest      anyone signed out; signed-in people are sent to their dashboard
#   public     everyone
#   post-only  a GET is refused (405) for everyone: signing out is a POST
#   signed-in  anyone signed in; anonymous callers are sent to sign in
#   owner      the owner of the object in the URL; anyone else gets 404, anonymous callers sign in
PAGES = {
    "": Page("guest"),
    "healthz": Page("public"),
    "favicon.ico": Page("public"),
    "accounts/login/": Page("guest", post=True),
    "accounts/logout/": Page("post-only", post=True),
    "accounts/signup/": Page("guest", post=True),
    "accounts/password/change/": Page("signed-in", post=True),
    "accounts/password/change/done/": Page("signed-in"),
    "accounts/password/reset/": Page("public", post=True),
    "accounts/password/reset/sent/": Page("public"),
    "accounts/password/reset/<uidb64>/<token>/": Page("public", post=True),
    "accounts/password/reset/done/": Page("public"),
    "accounts/api-tokens/": Page("signed-in", post=True),
    "accounts/api-tokens/<int:pk>/revoke/": Page("owner", post=True),
    "assets/": Page("signed-in"),
    "assets/<str:symbol>/": Page("signed-in"),
    "assets/<str:symbol>/prices.json": Page("signed-in"),
    "assets/<str:symbol>/training.json": Page("signed-in"),
    "portfolios/": Page("signed-in", post=True),
    # Market data for the transaction form: anyone signed in, whatever they own.
    "portfolios/price-at/": Page("signed-in", query="?symbol=BTCUSDT&time=2022-06-30T12:00:00"),
    "portfolios/<int:pk>/": Page("owner"),
    "portfolios/<int:pk>/edit/": Page("owner", post=True),
    "portfolios/<int:pk>/transactions/add/": Page("owner", post=True),
    "portfolios/<int:pk>/transactions/<int:tx_id>/edit/": Page("owner", post=True),
    "portfolios/<int:pk>/import/": Page("owner", post=True),
    "portfolios/<int:pk>/export.csv": Page("owner"),
    "portfolios/<int:pk>/connections/add/": Page("owner", post=True),
    "portfolios/<int:pk>/connections/<int:connection_id>/sync/": Page("post-only", post=True),
    # Last among the forms: a POST to these removes what the URLs before them use.
    "portfolios/<int:pk>/transactions/<int:tx_id>/delete/": Page("owner", post=True),
    "portfolios/<int:pk>/connections/<int:connection_id>/delete/": Page("owner", post=True),
    "portfolios/<int:pk>/delete/": Page("owner", post=True),
    "api/schema/": Page("public"),
    "api/docs/": Page("public"),
    "api/redoc/": Page("public"),
    "api/redoc-dist/bundles/redoc.standalone.js": Page("public"),
}
# The admin site: staff only, whatever models it grows. Its sign-in page is for everyone; signing
# out is a POST, and a GET from someone not staff is sent to the admin's index (and on to sign in).
ADMIN_RULES = [
    (re.compile(r"admin/login/"), Page("admin-login", post=True)),
    (re.compile(r"admin/logout/"), Page("admin-logout", post=True)),
    (re.compile(r"admin/"), Page("admin")),
]
# What staff get on admin pages other than 200. Market data, forecasts, model versions and training
# runs are written by the workers only, and transactions through the portfolio services only.
ADMIN_STAFF = {
    "admin/(?P<url>.*)$": 404,  # the admin's own "not found", only shown to staff
    "admin/r/<path:content_type_id>/<path:object_id>/": 404,  # "view on site": no model has a public page
    "admin/autocomplete/": 403,  # needs the parameters of a real autocomplete field
    **{
        f"admin/{model}/{page}": 403
        for model in (
            "forecasting/candle",
            "forecasting/forecast",
            "forecasting/modelversion",
            "forecasting/trainingrun",
        )
        for page in ("add/", "<path:object_id>/delete/")
    },
    "admin/portfolio/transaction/add/": 403,
    # Connections are added by their owners, after Binance checks the key.
    "admin/portfolio/exchangeconnection/add/": 403,
}
API_PREFIX = "api/v1/"


def walk(patterns, prefix=""):
    for p in patterns:
        if hasattr(p, "url_patterns"):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern)


def all_routes() -> list[str]:
    return list(walk(get_resolver().url_patterns))


def classify(route: str) -> Page | None:
    if route in PAGES:
        return PAGES[route]
    for pattern, page in ADMIN_RULES:
        if pattern.match(route):
            return page
    return None


def fill(route: str, w) -> str:
    """A concrete path for a route, with the owner's objects in its parameters."""
    model = None
    admin = re.match(r"admin/(\w+)/(\w+)/<path:object_id>/", route)
    if admin:
        model = apps.get_model(admin.group(1), admin.group(2))
    token = route.startswith("accounts/api-tokens/")
    values = {
        "pk": str(w.owner_token.id if token else w.portfolio.id),
        "tx_id": str(w.sell.id),
        "connection_id": str(w.connection.id),
        "symbol": w.btc.symbol,
        # The owner's real account id with a wrong token: the "link no longer works" page.
        "uidb64": urlsafe_base64_encode(force_bytes(w.owner.pk)),
        "token": "abc-0123456789abcdef",
        "content_type_id": str(ContentType.objects.get_for_model(Portfolio).id),
        "object_id": str(
            model.objects.order_by("pk").values_list("pk", flat=True).first() if model else w.portfolio.id
        ),
        "id": str(w.owner.id),
        "app_label": "portfolio",
        "url": "no-such-page/",
    }

    def value(match):
        return values[match.group("name")]

    path = re.sub(r"\^?\(\?P<(?P<name>\w+)>[^)]*\)\$?", value, route)  # regex routes
    path = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", value, path)
    path = path.replace("^", "").replace("$", "")
    assert "<" not in path and "(" not in path, (route, path)
    return "/" + path


def expected(page: Page, role: str, path: str, route: str) -> tuple[int, str | None]:
    """(status, where a redirect goes) for a GET."""
    signed_in = role != "anonymous"
    sign_in = f"/accounts/login/?next={quote(path)}"
    match page.access:
        case "public":
            return 200, None
        case "guest":
            return (302, "/portfolios/") if signed_in else (200, None)
        case "post-only":
            return 405, None
        case "signed-in":
            return (200, None) if signed_in else (302, sign_in)
        case "owner":
            if not signed_in:
                return 302, sign_in
            return (200, None) if role == "owner" else (404, None)
        case "admin-login":
            return (302, "/admin/") if role == "staff" else (200, None)
        case "admin-logout":
            return (405, None) if role == "staff" else (302, "/admin/")
        case "admin":
            if role != "staff":
                return 302, f"/admin/login/?next={quote(path)}"
            if route in ADMIN_STAFF:
                return ADMIN_STAFF[route], None
            if route.endswith("<path:object_id>/"):
                return 302, path + "change/"  # old-style object URL, sent on to the change page
            return 200, None
    raise AssertionError(f"unknown access {page.access!r}")


def test_every_url_is_classified():
    """A new URL fails here until it is given an entry above (or, for the API, in tests/api)."""
    routes = all_routes()
    unclassified = [r for r in routes if not r.startswith(API_PREFIX) and classify(r) is None]
    assert unclassified == []
    assert set(PAGES) <= set(routes), set(PAGES) - set(routes)  # no stale entries either
    # Every API route is in the API's own matrix (which also checks it method by method).
    api = {
        _route_key(r.removeprefix(API_PREFIX))
        for r in routes
        if r.startswith(API_PREFIX) and "format" not in r and r != API_PREFIX
    }
    covered = {_route_key(e.path) for e in ENDPOINTS}
    api -= {""}  # the catch-all that answers 404 with the error body
    assert api - covered == set()
    assert len(routes) > 100
    record(
        "security",
        "every URL of the URLconf classified",
        routes=len(routes),
        api_routes=len(api),
        pages=len(routes) - len([r for r in routes if r.startswith(API_PREFIX)]),
        unclassified=0,
    )


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_classified(world, settings, role):
    settings.HEALTH_MAX_CANDLE_AGE_INTERVALS = 0  # the world's candles are from 2022
    client = client_for(world, role)
    statuses: dict[int, int] = {}
    wrong = []
    pages = [r for r in all_routes() if not r.startswith(API_PREFIX)]
    for route in pages:
        page = classify(route)
        path = fill(route, world) + page.query
        response = client.get(path)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        status, location = expected(page, role, path, route)
        got = (response.status_code, response.get("Location") if response.status_code in (301, 302) else None)
        if got != (status, location):
            wrong.append(f"{role} GET {path} [{route}]: {got}, expected {(status, location)}")
    assert wrong == [], "\n".join(wrong)
    assert not [s for s in statuses if s >= 500]
    record("security", f"every page against the {role} role", urls=len(pages), statuses=statuses)


def snapshot():
    return (
        list(Portfolio.objects.order_by("id").values()),
        list(Transaction.objects.order_by("id").values()),
        list(ApiToken.objects.order_by("id").values()),
    )


@pytest.mark.parametrize("role", ["other", "staff"])
def test_posts_to_someone_elses_objects_are_404_and_change_nothing(world, role):
    client = client_for(world, role)
    before = snapshot()
    owned = [r for r, page in PAGES.items() if page.access == "owner" and page.post]
    for route in owned:
        path = fill(route, world)
        response = client.post(path, {"name": "taken", "note": "taken", "quantity": "1", "kind": "sell"})
        assert response.status_code == 404, (path, response.status_code)
    assert snapshot() == before
    record("security", f"posts to another user's objects as {role}", urls=len(owned), status_404=len(owned))
