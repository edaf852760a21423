"""Throttling per user and per anonymous client: 429 with Retry-After and the error body."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.support.processes import ROOT, clean_env
from tests.support.world import assert_error


@pytest.fixture
def low_rates(monkeypatch, settings):
    # DRF copies the rates into the throttle classes when it is imported: patch both places.
    rates = {"anon": "3/min", "user": "5/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return rates


def test_a_user_is_throttled_with_429_and_retry_after(world, low_rates):
    owner = world.client("owner")
    assert [owner.get("/api/v1/assets/").status_code for _ in range(5)] == [200] * 5
    response = owner.get("/api/v1/assets/")
    error = assert_error(response, 429)
    assert error["code"] == "throttled"
    assert "Expected available in" in error["message"]
    assert 1 <= int(response["Retry-After"]) <= 60
    # The limit is per user: another user, with another token, is not held back.
    assert world.client("other").get("/api/v1/assets/").status_code == 200


def test_a_users_limit_counts_every_token_and_the_session(world, low_rates):
    """Throttled by who they are, not by the credential: a second token does not double the rate."""
    second = world.client("owner").post("/api/v1/tokens/", {"name": "second"}, format="json").json()["key"]
    session = APIClient()
    session.force_authenticate(user=None)
    session.login(username="owner", password="correct-horse-battery-staple")
    again = APIClient()
    again.credentials(HTTP_AUTHORIZATION=f"Token {second}")
    codes = [c.get("/api/v1/ping/").status_code for c in (again, session, again, session)]
    assert codes == [200] * 4  # with the creation above: 5 requests
    assert_error(again.get("/api/v1/ping/"), 429)
    assert_error(session.get("/api/v1/ping/"), 429)


def test_anonymous_clients_are_throttled_per_address(world, low_rates):
    anonymous = APIClient()
    # Refused requests count: each gets its 401 until the anonymous rate is spent.
    assert [anonymous.get("/api/v1/assets/").status_code for _ in range(3)] == [401] * 3
    response = anonymous.get("/api/v1/assets/")
    error = assert_error(response, 429)
    assert error["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    # The open schema counts against the same allowance.
    assert_error(anonymous.get("/api/schema/", HTTP_ACCEPT="application/json"), 429)
    # Another address has its own count; a signed-in user is not limited by the anonymous rate.
    assert APIClient(REMOTE_ADDR="10.0.0.9").get("/api/schema/").status_code == 200
    assert world.client("owner").get("/api/v1/assets/").status_code == 200


def test_guessing_keys_is_throttled_as_anonymous(world, low_rates):
    guesser = APIClient()
    for i in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token mur_guess{i}")
        assert_error(guesser.get("/api/v1/ping/"), 401, message="Invalid token.")
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {world.keys['owner']}")
    assert guesser.get("/api/v1/ping/").status_code == 200  # a valid key is not the anonymous client
    guesser.credentials(HTTP_AUTHORIZATION="Token mur_guess4")
    assert_error(guesser.get("/api/v1/ping/"), 429)


def test_the_rates_come_from_the_environment():
    """Deployments (and the benchmark) set the rates without code changes."""
    code = (
        "import django; django.setup(); from rest_framework.throttling import AnonRateThrottle, UserRateThrottle;"
        "print(UserRateThrottle().rate, AnonRateThrottle().rate)"
    )
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.test", MUR_API_USER_RATE="12345/min", MUR_API_ANON_RATE="7/hour"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["12345/min", "7/hour"], out.stderr[-2000:]
