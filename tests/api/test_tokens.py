"""API tokens: created once, stored only as a SHA-256, used, revoked, expired; the tokens page;
session authentication with CSRF."""

from __future__ import annotations

import hashlib
import html as html_lib
import io
import re
from datetime import timedelta

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create
from tests.support.world import PASSWORD, assert_error


def table_dump() -> str:
    """Every row of the token table as the database itself prints it."""
    table = connection.ops.quote_name(ApiToken._meta.db_table)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"SELECT t::text FROM {table} t")
        else:
            cur.execute(f"SELECT * FROM {table}")
        return "\n".join(repr(row) for row in cur.fetchall())


def assert_key_not_stored(key: str) -> None:
    secret = key[12:]  # the part after the stored prefix
    assert len(secret) >= 30
    rows = list(ApiToken.objects.values())
    assert rows
    for row in rows:
        for column, value in row.items():
            assert secret not in str(value), column
    dump = table_dump()
    assert hashlib.sha256(key.encode()).hexdigest() in dump  # the dump is of the right rows
    assert secret not in dump
    everything = io.StringIO()
    call_command("dumpdata", stdout=everything)  # the whole database, every app
    assert secret not in everything.getvalue()


def test_token_lifecycle_through_the_api(world):
    owner = world.client("owner")
    created = owner.post("/api/v1/tokens/", {"name": "  backup job ", "expires_in_days": 7}, format="json")
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert re.fullmatch(r"mur_[A-Za-z0-9_-]{43}", key)
    assert body["name"] == "backup job"
    assert body["prefix"] == key[:12]
    token = ApiToken.objects.get(id=body["id"])
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert timedelta(days=7) - timedelta(minutes=1) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert_key_not_stored(key)

    # Listed and shown without the key, ever.
    listed = owner.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["backup job", "laptop"]
    shown = owner.get(f"/api/v1/tokens/{token.id}/").json()
    assert "key" not in shown and key not in str(listed) and shown["active"] is True

    # Used: 200, and the last use is recorded.
    use = APIClient()
    use.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert use.get("/api/v1/ping/").json() == {"ok": True, "user": "owner"}
    token.refresh_from_db()
    assert token.last_used_at is not None
    bearer = APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert bearer.get("/api/v1/ping/").status_code == 200

    # Revoked: 401 with the reason.
    assert owner.delete(f"/api/v1/tokens/{token.id}/").status_code == 204
    error = assert_error(use.get("/api/v1/ping/"), 401, message="This token was revoked.")
    assert error["code"] == "authentication_failed"
    assert owner.get(f"/api/v1/tokens/{token.id}/").json()["active"] is False
    assert owner.delete(f"/api/v1/tokens/{token.id}/").status_code == 204  # revoking twice is harmless


def test_an_expired_token_gets_401(world):
    key = (
        world.client("owner")
        .post("/api/v1/tokens/", {"name": "short", "expires_in_days": 1}, format="json")
        .json()["key"]
    )
    use = APIClient()
    use.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert use.get("/api/v1/assets/").status_code == 200
    ApiToken.objects.filter(name="short").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(use.get("/api/v1/assets/"), 401, message="This token has expired.")


def test_the_token_lookup_reads_what_the_orm_reads(world):
    """Authentication reads the token and its user with its own SQL: every field, converted as the ORM
    converts it (aware datetimes, booleans on SQLite too), and no token for an unknown key."""
    from accounts.selectors import token_by_key

    token, key = token_create(user=world.staff, name="compare", expires_in_days=3)
    ApiToken.objects.filter(id=token.id).update(last_used_at=timezone.now() - timedelta(hours=2))
    fast = token_by_key(key=key)
    orm = ApiToken.objects.select_related("user").get(id=token.id)
    fields = [f.attname for f in ApiToken._meta.concrete_fields]
    user_fields = [f.attname for f in type(orm.user)._meta.concrete_fields]
    assert [getattr(fast, f) for f in fields] == [getattr(orm, f) for f in fields]
    assert [getattr(fast.user, f) for f in user_fields] == [getattr(orm.user, f) for f in user_fields]
    assert timezone.is_aware(fast.expires_at) and fast.user.is_staff is True
    assert fast._state.adding is False and fast._state.db == "default"
    assert token_by_key(key=key + "x") is None and token_by_key(key="") is None


@pytest.mark.parametrize(
    "header, message",
    [
        ("Token mur_not-a-real-key", "Invalid token."),
        ("Token", "The Authorization header must be 'Token <key>'."),
        ("Token a b", "The Authorization header must be 'Token <key>'."),
    ],
)
def test_bad_credentials_get_401(world, header, message):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/ping/"), 401, message=message)


def test_a_disabled_accounts_tokens_stop_working(world):
    world.owner.is_active = False
    world.owner.save()
    assert_error(world.client("owner").get("/api/v1/ping/"), 401, message="This account is disabled.")


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "x", "expires_in_days": 99999}, "expires_in_days"),
        ({"name": "x" * 101}, "name"),
    ],
)
def test_token_creation_is_validated(world, body, field):
    before = ApiToken.objects.count()
    assert_error(world.client("owner").post("/api/v1/tokens/", body, format="json"), 400, field=field)
    assert ApiToken.objects.count() == before


# --- session authentication and CSRF ---------------------------------------------------------------


def test_session_authentication_needs_csrf_for_unsafe_methods(world):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="owner", password=PASSWORD)
    assert client.get("/api/v1/portfolios/").status_code == 200  # safe methods need no CSRF token
    error = assert_error(client.post("/api/v1/portfolios/", {"name": "No csrf"}, format="json"), 403)
    assert "CSRF" in error["message"]
    assert not world.owner.portfolios.filter(name="No csrf").exists()
    # With the token from the cookie, as a page's script sends it.
    client.get("/accounts/api-tokens/")
    csrf = client.cookies["csrftoken"].value
    response = client.post("/api/v1/portfolios/", {"name": "With csrf"}, format="json", HTTP_X_CSRFTOKEN=csrf)
    assert response.status_code == 201
    # A script with a token needs no CSRF token at all.
    token_client = world.client("owner", enforce_csrf_checks=True)
    assert token_client.post("/api/v1/portfolios/", {"name": "Script"}, format="json").status_code == 201


# --- the API tokens page -----------------------------------------------------------------------------


@pytest.fixture
def browser(world):
    client = Client(enforce_csrf_checks=True)
    client.login(username="owner", password=PASSWORD)
    return client


def csrf_of(client, path="/accounts/api-tokens/") -> str:
    html = client.get(path).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_tokens_page_needs_sign_in(world):
    response = Client().get("/accounts/api-tokens/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/api-tokens/"


def test_the_tokens_page_lists_the_users_tokens_only(world, browser):
    ApiToken.objects.create(
        user=world.owner,
        name="old one",
        key_hash="a" * 64,
        prefix="mur_oldoldol",
        expires_at=timezone.now() - timedelta(days=1),
    )
    ApiToken.objects.create(
        user=world.owner, name="gone", key_hash="b" * 64, prefix="mur_gonegone", revoked_at=timezone.now()
    )
    html = browser.get("/accounts/api-tokens/").content.decode()
    rows = dict(
        re.findall(r'<th scope="row" data-label="Name">([^<]+)</th>.*?class="token-status">([a-z]+)', html, re.S)
    )
    assert rows == {"laptop": "active", "old one": "expired", "gone": "revoked"}
    assert world.owner_token.prefix in html
    assert "other&#x27;s" not in html and "other's" not in html  # another user's token
    for label in ("Name", "Expires after (days)"):
        assert re.search(rf'<label for="id_[a-z_]+">{re.escape(label)}</label>', html)
    assert len(re.findall(r'href="/accounts/api-tokens/\d+/revoke/', html)) == 1  # only the active one


def test_create_a_token_on_the_page(world, browser):
    response = browser.post(
        "/accounts/api-tokens/",
        {"name": "spreadsheet", "expires_in_days": "30", "csrfmiddlewaretoken": csrf_of(browser)},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    key = re.search(r'id="token-key" value="([^"]+)"', html).group(1)
    assert "it will not be shown again" in html
    token = ApiToken.objects.get(name="spreadsheet")
    assert token.user == world.owner and token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert token.expires_at > timezone.now() + timedelta(days=29)
    assert_key_not_stored(key)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/ping/").json()["user"] == "owner"
    # The list afterwards shows the prefix, never the key.
    listing = browser.get("/accounts/api-tokens/").content.decode()
    assert token.prefix in listing and key not in listing


def test_the_new_key_page_has_a_copy_button_and_a_working_curl_example(world, browser, settings):
    settings.ALLOWED_HOSTS = ["testserver", "mur.example"]
    response = browser.post(
        "/accounts/api-tokens/", {"name": "terminal", "csrfmiddlewaretoken": csrf_of(browser)}, HTTP_HOST="mur.example"
    )
    assert response.status_code == 200
    html = response.content.decode()
    key = re.search(r'id="token-key" value="([^"]+)"', html).group(1)
    example = re.search(r'<pre class="command" id="token-curl"[^>]*><code>([^<]+)</code>', html)
    curl = html_lib.unescape(example.group(1))
    # The real address of the site, as the request reached it, and the header the API reads.
    assert curl == f'curl -H "Authorization: Token {key}" http://mur.example/api/v1/portfolios/'
    assert html.count(key) == 2  # the key's field and the example, on this answer only
    assert re.search(r'<button type="button"[^>]*data-copy="token-key"[^>]*>Copy key</button>', html)
    assert re.search(r'<button type="button"[^>]*data-copy="token-curl"[^>]*>Copy command</button>', html)
    # The copying is a static script: the Content-Security-Policy runs nothing inline.
    assert not re.search(r"<script>|\son[a-z]+=", html)
    [script] = re.findall(r'<script src="/static/([^"]+)"', html)
    assert finders.find(script) and script == "js/accounts/token_created.js"
    # The example works as written: its header and path, sent to the API.
    header, path = re.fullmatch(r'curl -H "Authorization: ([^"]+)" http://mur\.example(/\S+)', curl).groups()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    answer = api.get(path)
    assert answer.status_code == 200 and [p["name"] for p in answer.json()["results"]] == ["Main"]
    assert key not in browser.get("/accounts/api-tokens/").content.decode()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "  "}, "This field is required."),
        ({"name": "x", "expires_in_days": "0"}, "greater than or equal to 1"),
    ],
)
def test_the_create_form_shows_its_errors(world, browser, data, message):
    before = ApiToken.objects.count()
    response = browser.post("/accounts/api-tokens/", {**data, "csrfmiddlewaretoken": csrf_of(browser)})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert ApiToken.objects.count() == before


def test_revoke_a_token_on_the_page(world, browser):
    path = f"/accounts/api-tokens/{world.owner_token.id}/revoke/"
    confirm = browser.get(path)
    assert confirm.status_code == 200
    assert "get 401 from then on" in confirm.content.decode()
    world.owner_token.refresh_from_db()
    assert world.owner_token.revoked_at is None  # asking is not revoking
    assert browser.post(path).status_code == 403  # no CSRF token
    response = browser.post(path, {"csrfmiddlewaretoken": csrf_of(browser, path)})
    assert response.status_code == 302 and response["Location"] == "/accounts/api-tokens/"
    world.owner_token.refresh_from_db()
    assert world.owner_token.revoked_at is not None
    assert "revoked" in browser.get("/accounts/api-tokens/").content.decode()
    assert_error(world.client("owner").get("/api/v1/ping/"), 401, message="This token was revoked.")


def test_another_users_token_cannot_be_revoked_on_the_page(world):
    other = Client()
    other.login(username="other", password=PASSWORD)
    path = f"/accounts/api-tokens/{world.owner_token.id}/revoke/"
    assert other.get(path).status_code == 404
    assert other.post(path).status_code == 404
    world.owner_token.refresh_from_db()
    assert world.owner_token.revoked_at is None
