"""CSRF on every form and every session-authenticated API write, session fixation, open
redirects, the limit on failed sign-ins, and password rules. That API keys are stored only as a
SHA-256 is tested in tests/api/test_tokens.py (test_token_lifecycle_through_the_api)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client
from rest_framework.test import APIClient

from accounts import throttling as accounts
from tests.reliability import record
from tests.support.endpoints import ENDPOINTS, call
from tests.support.endpoints import url as api_url

from .conftest import PASSWORD, client_for
from .test_access_matrix import API_PREFIX, all_routes, classify, fill, snapshot


def caller_for(page) -> str:
    """The role that may use a page: CSRF must stop even the person the form is for."""
    return {
        "guest": "anonymous",
        "public": "anonymous",
        "post-only": "owner",
        "signed-in": "owner",
        "owner": "owner",
        "admin-login": "anonymous",
        "admin-logout": "staff",
        "admin": "staff",
    }[page.access]


def csrf_token(client: Client, role: str) -> str:
    client.get("/accounts/login/" if role == "anonymous" else "/portfolios/")  # a page with a form sets it
    return client.cookies["csrftoken"].value


def state(world):
    return (
        snapshot(),
        get_user_model().objects.count(),
        list(get_user_model().objects.order_by("id").values_list("password")),
    )


# --- CSRF -----------------------------------------------------------------------------------------


def test_every_page_refuses_a_post_without_the_csrf_token(world):
    """Every page and admin URL, posted to by the person allowed to use it, without the token: 403,
    and nothing changes. The pages listed as forms then accept the same POST with the token."""
    before = state(world)
    routes = [r for r in all_routes() if not r.startswith(API_PREFIX)]
    for route in routes:
        page = classify(route)
        client = client_for(world, caller_for(page), enforce_csrf_checks=True)
        path = fill(route, world)
        response = client.post(path, {"name": "x", "username": "owner", "password": PASSWORD})
        if route.startswith("api/"):
            # The schema and docs are API views (their own CSRF rules) that only read: POST is 405.
            assert response.status_code == 405, (path, response.status_code)
            continue
        assert response.status_code == 403, (path, response.status_code)
        assert b"CSRF verification failed" in response.content, path
    assert state(world) == before

    forms = [r for r in routes if classify(r).post]
    for route in forms:
        page = classify(route)
        client = client_for(world, caller_for(page), enforce_csrf_checks=True)
        token = csrf_token(client, caller_for(page))
        status = client.post(fill(route, world), {"csrfmiddlewaretoken": token}).status_code
        assert status not in (403, 405) and status < 500, (route, status)
    assert len(forms) >= 15
    record(
        "security",
        "POST without the CSRF token to every page",
        urls=len(routes),
        forms_accepting_post_with_token=len(forms),
    )


def test_session_authenticated_api_writes_need_the_csrf_token(world, no_broker):
    """A browser's session works for the API, so every write needs the CSRF token: 403 with the error body."""
    from tests.support.world import assert_error

    before = state(world)
    writes = [e for e in ENDPOINTS if e.method != "get"]
    for endpoint in writes:
        client = APIClient(enforce_csrf_checks=True)
        client.force_login(world.staff if endpoint.access == "staff" else world.owner)
        error = assert_error(call(client, endpoint, api_url(endpoint, world)), 403)
        assert "CSRF" in error["message"], (endpoint.id, error)
    assert state(world) == before
    assert no_broker == []
    record(
        "security",
        "session-authenticated API writes without the CSRF token",
        endpoints=len(writes),
        status_403=len(writes),
    )


# --- sessions and redirects ---------------------------------------------------------------------------


def test_signing_in_gives_a_new_session_key_and_signing_out_ends_it(world):
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client, "anonymous")
    session = client.session
    session["planted"] = "by someone else"  # a key an attacker could have fixed in the victim's browser
    session.save()
    planted = session.session_key
    client.cookies["sessionid"] = planted

    response = client.post(
        "/accounts/login/", {"username": "owner", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    signed_in = client.cookies["sessionid"].value
    assert signed_in != planted
    assert not SessionStore().exists(planted)
    attacker = Client()
    attacker.cookies["sessionid"] = planted
    assert attacker.get("/portfolios/").status_code == 302  # the planted key signs no one in

    client.post("/accounts/logout/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert not SessionStore().exists(signed_in)
    replay = Client()
    replay.cookies["sessionid"] = signed_in
    assert replay.get("/portfolios/").status_code == 302
    record("security", "session key rotated on sign-in and dropped on sign-out", keys_checked=2)


EVIL = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "https:evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "http://testserver@evil.example/",
    "javascript:alert(1)",
    " //evil.example",
    "https://evil.example/?next=/portfolios/",
]


def assert_on_site(location: str) -> None:
    parts = urlsplit(location)
    assert parts.scheme == "" and parts.netloc == "", location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


@pytest.mark.parametrize("target", EVIL)
def test_no_next_parameter_leads_off_the_site(world, target):
    checked = 0
    # Sign-in (the form and the already-signed-in shortcut), sign-out, sign-up, the admin's sign-in.
    anon = Client()
    response = anon.post(f"/accounts/login/?next={target}", {"username": "owner", "password": PASSWORD, "next": target})
    assert response.status_code == 302
    assert_on_site(response["Location"])
    assert response["Location"] == "/portfolios/"
    checked += 1
    assert_on_site(anon.get("/accounts/login/", {"next": target})["Location"])
    checked += 1
    response = anon.post("/accounts/logout/", {"next": target})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    checked += 1
    response = Client().post(
        f"/accounts/signup/?next={target}",
        {
            "username": "newcomer",
            "password1": "a-long-new-passphrase",
            "password2": "a-long-new-passphrase",
            "next": target,
        },
    )
    assert response.status_code == 302 and response["Location"] == "/portfolios/"
    checked += 1
    response = Client().post(
        f"/admin/login/?next={target}", {"username": "staff", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 302
    assert_on_site(response["Location"])
    checked += 1
    record("security", f"open redirect attempt {target!r}", forms=checked, left_the_site=0)


def test_a_next_parameter_on_the_site_is_followed(world):
    """The check above is not just "next is ignored"."""
    path = f"/portfolios/{world.portfolio.id}/"
    response = Client().post(f"/accounts/login/?next={path}", {"username": "owner", "password": PASSWORD, "next": path})
    assert response["Location"] == path
    record("security", "a next parameter on the site is followed", forms=1)


# --- failed sign-ins ------------------------------------------------------------------------------------


def sign_in(client: Client, username: str, password: str, *, address: str = "198.51.100.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in_as(client: Client):
    return client.get("/portfolios/").wsgi_request.user


@pytest.fixture
def low_limits(monkeypatch):
    monkeypatch.setattr(accounts, "SIGNIN_MAX_FAILURES_PER_USERNAME", 3)
    monkeypatch.setattr(accounts, "SIGNIN_MAX_FAILURES_PER_ADDRESS", 6)


def test_sign_in_is_refused_after_repeated_failures_for_a_username(world, low_limits, monkeypatch, clock):
    client = Client()
    for attempt in range(3):
        response = sign_in(client, "owner", f"wrong-{attempt}", address=f"198.51.100.{attempt}")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    # Now even the right password is refused, from any address, and in any letter case.
    for username in ("owner", "OWNER"):
        response = sign_in(client, username, PASSWORD, address="203.0.113.99")
        assert response.status_code == 429
        assert 890 <= int(response["Retry-After"]) <= 900
        page = response.content.decode()
        assert "Too many failed sign-ins for this account or from your network. Try again in 15 minutes." in page
        assert not signed_in_as(client).is_authenticated
    # The admin's sign-in shares the limit.
    staff_client = Client()
    for _ in range(3):
        staff_client.post("/admin/login/", {"username": "staff", "password": "nope"}, REMOTE_ADDR="192.0.2.1")
    response = staff_client.post("/admin/login/", {"username": "staff", "password": PASSWORD}, REMOTE_ADDR="192.0.2.2")
    assert "Too many failed sign-ins" in response.content.decode()
    assert not staff_client.get("/admin/").wsgi_request.user.is_authenticated
    # Other accounts are not affected.
    assert sign_in(Client(), "other", PASSWORD).status_code == 302

    # When the window is over, the right password works again.
    for attempt in range(3):
        sign_in(client, "other", f"wrong-{attempt}")
    assert sign_in(client, "other", PASSWORD).status_code == 429
    clock.advance(accounts.SIGNIN_WINDOW_SECONDS - 1)
    assert sign_in(client, "other", PASSWORD).status_code == 429
    clock.advance(1)
    assert sign_in(client, "other", PASSWORD).status_code == 302
    assert signed_in_as(client) == world.other
    record(
        "security",
        "sign-in refused after repeated failures for one username",
        failures_allowed=3,
        refused_status=429,
        forms=2,
    )


def test_sign_in_is_refused_after_repeated_failures_from_one_address(world, low_limits):
    for i in range(6):
        assert sign_in(Client(), f"nobody-{i}", "guess", address="198.51.100.50").status_code == 200
    response = sign_in(Client(), "owner", PASSWORD, address="198.51.100.50")
    assert response.status_code == 429
    assert "Try again in 15 minutes" in response.content.decode()
    assert sign_in(Client(), "owner", PASSWORD, address="198.51.100.51").status_code == 302
    record(
        "security", "sign-in refused after repeated failures from one address", failures_allowed=6, refused_status=429
    )


def test_a_successful_sign_in_clears_the_usernames_failures(world, low_limits):
    client = Client()
    for _ in range(2):
        sign_in(client, "owner", "wrong")
    assert sign_in(client, "owner", PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(2):
        assert sign_in(client, "owner", "wrong").status_code == 200
    assert sign_in(client, "owner", PASSWORD).status_code == 302
    record("security", "a successful sign-in clears the username's failures", failures=4, sign_ins=2)


# --- passwords ----------------------------------------------------------------------------------------

WEAK = {
    "too short": ("Ab1$x", "too short"),
    "common": ("password123", "too common"),
    "similar to the username": ("owner-owner", "too similar to the username"),
    "numeric": ("48120937561", "entirely numeric"),
}


@pytest.mark.parametrize("kind", WEAK)
def test_weak_passwords_are_refused_on_sign_up_and_change(world, kind):
    password, message = WEAK[kind]
    users = get_user_model().objects.count()
    response = Client().post(
        "/accounts/signup/",
        {
            "username": "owner-owner" if kind == "similar to the username" else "newcomer",
            "password1": password,
            "password2": password,
        },
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["password2"])
    assert get_user_model().objects.count() == users

    client = client_for(world, "owner")
    if kind == "similar to the username":
        password = "owner123"  # the owner's username is "owner"
    response = client.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": password, "new_password2": password}
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["new_password2"])
    world.owner.refresh_from_db()
    assert world.owner.check_password(PASSWORD)
    record("security", f"weak password ({kind}) on sign-up and password change", forms=2, refused=2)
