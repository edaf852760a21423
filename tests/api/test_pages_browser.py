"""In headless Chromium: the API tokens page on a phone, and the API docs working offline."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import ApiToken

# The browser suite's fixtures: the system Chromium, every request outside the live server refused.

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}


def fits(page) -> None:
    # Measured once the stylesheet is in: before it, an unstyled <pre> is as wide as its line
    # (the browser never paints that, but a script can measure it).
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_tokens_page_works_on_a_phone(page, live_server, sign_in, site_user, tmp_path):
    ApiToken.objects.create(
        user=site_user,
        name="a rather long name for the nightly export job",
        key_hash="a" * 64,
        prefix="mur_abcdefgh",
        expires_at=timezone.now() + timedelta(days=30),
        last_used_at=timezone.now(),
    )
    ApiToken.objects.create(
        user=site_user, name="old", key_hash="b" * 64, prefix="mur_oldoldol", revoked_at=timezone.now()
    )
    page.set_viewport_size(PHONE)
    sign_in()
    page.goto(f"{live_server.url}/accounts/api-tokens/")
    fits(page)
    assert page.locator("#token-table tbody tr").count() == 2
    # Labelled fields: the form is filled by its labels, as a screen reader user would.
    page.get_by_label("Name").fill("phone script")
    page.get_by_label("Expires after (days)").fill("7")
    page.get_by_role("button", name="Create token").click()
    page.wait_for_selector("#token-key")
    fits(page)
    key = page.locator("#token-key").input_value()
    assert key.startswith("mur_")
    assert "it will not be shown again" in page.content()
    page.screenshot(path=str(tmp_path / "token-created-375.png"), full_page=True)

    page.get_by_role("link", name="Done").click()
    row = page.locator("#token-table tbody tr", has_text="phone script")
    assert row.locator(".token-status").inner_text() == "active"
    row.get_by_role("link", name="Revoke phone script").click()
    fits(page)
    page.get_by_role("button", name="Revoke token").click()
    page.wait_for_url(f"{live_server.url}/accounts/api-tokens/")
    fits(page)
    assert row.locator(".token-status").inner_text().startswith("revoked")
    assert ApiToken.objects.get(name="phone script").revoked_at is not None


def test_swagger_ui_and_redoc_work_offline(page, live_server, browser_context):
    blocked = []  # requests the page's own Content-Security-Policy stopped inside the browser
    page.on("requestfailed", lambda r: blocked.append(r.url) if r.failure == "csp" else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() == 40
    page.goto(f"{live_server.url}/api/redoc/")
    page.wait_for_selector("text=Make Us Rich API", timeout=20_000)
    page.wait_for_selector("text=/api/v1/assets/{symbol}/forecasts/latest/", timeout=20_000)
    page.wait_for_timeout(500)  # ReDoc's badge logo is requested after the first render
    # Nothing went to another host: every request was to our server, or stopped by the page's policy
    # (ReDoc's bundle always asks for its badge logo on cdn.redoc.ly).
    assert browser_context.requests
    elsewhere = [u for u in browser_context.requests if not u.startswith(live_server.url)]
    assert elsewhere == blocked, (elsewhere, blocked)


def test_the_new_key_page_copies_the_key_and_the_curl_example(page, live_server, sign_in, browser_context):
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    refused = []  # anything the page's Content-Security-Policy stopped, an inline handler say
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    sign_in()
    page.goto(f"{live_server.url}/accounts/api-tokens/")
    page.get_by_label("Name").fill("clipboard")
    page.get_by_label("Expires after (days)").fill("7")
    page.get_by_role("button", name="Create token").click()
    key = page.get_by_label("Key").input_value()
    assert key.startswith("mur_")

    page.get_by_role("button", name="Copy key").click()
    # Playwright's own text matching, not a string for the page to evaluate: the page's policy
    # forbids eval, and a string predicate now and then ran into it.
    expect(page.locator("#copy-status")).to_have_text("Key copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == key

    page.get_by_role("button", name="Copy command").click()
    expect(page.locator("#copy-status")).to_have_text(re.compile(r"^Command copied"))
    command = f'curl -H "Authorization: Token {key}" {live_server.url}/api/v1/portfolios/'
    assert page.evaluate("navigator.clipboard.readText()") == command
    assert page.locator("#token-curl").inner_text() == command

    # Focusing the key selects all of it, for copying by hand.
    page.get_by_label("Key").focus()
    selected = page.evaluate("(k => k.selectionEnd - k.selectionStart)(document.getElementById('token-key'))")
    assert selected == len(key)
    assert refused == []
