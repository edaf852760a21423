"""Who a client is: the connection's address, never what the client writes in X-Forwarded-For
(unless MUR_TRUSTED_PROXIES says that many proxies of ours add to it). Each attack that worked
when the header was trusted as sent, and the password-reset mail limit."""

from __future__ import annotations

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts import throttling
from tests.reliability import record

from .conftest import PASSWORD


def sign_in(username: str, password: str, *, address: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": address}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client().post("/accounts/login/", {"username": username, "password": password}, **extra)


@pytest.fixture
def anon_rate(monkeypatch, settings):
    rates = {"anon": "20/min", "user": "1000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)


def test_guessing_api_tokens_with_a_new_forwarded_address_each_time_is_throttled(world, anon_rate):
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    codes = [
        client.get(
            "/api/v1/ping/", HTTP_AUTHORIZATION=f"Token mur_guess{i}", HTTP_X_FORWARDED_FOR=f"10.{i // 250}.{i % 250}.1"
        ).status_code
        for i in range(100)
    ]
    assert codes[:20] == [401] * 20
    assert set(codes[20:]) == {429}
    record(
        "security",
        "token guesses with a new X-Forwarded-For each are throttled",
        probes=100,
        answered_401=codes.count(401),
        answered_429=codes.count(429),
    )


def test_failed_sign_ins_from_new_forwarded_addresses_count_against_the_real_one(world):
    codes = [
        sign_in(f"nobody{i}", "guess", address="198.51.100.9", forwarded=f"10.0.0.{i}").status_code for i in range(40)
    ]
    assert codes[: throttling.SIGNIN_MAX_FAILURES_PER_ADDRESS] == [200] * throttling.SIGNIN_MAX_FAILURES_PER_ADDRESS
    assert set(codes[throttling.SIGNIN_MAX_FAILURES_PER_ADDRESS :]) == {429}
    record(
        "security",
        "sign-in failures from new X-Forwarded-For addresses are limited",
        probes=40,
        refused=codes.count(429),
    )


def test_a_forged_forwarded_address_cannot_lock_out_the_client_it_names(world):
    for i in range(30):
        sign_in(f"nobody{i}", "guess", address="198.51.100.66", forwarded="127.0.0.2")
    # The client really at 127.0.0.2 signs in.
    assert sign_in("owner", PASSWORD, address="127.0.0.2").status_code == 302
    record("security", "a forged X-Forwarded-For locks nobody else out", probes=30)


def test_behind_a_trusted_proxy_the_address_it_saw_is_the_client(world, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    # The proxy appends the address it saw: what the client wrote before it is ignored.
    for i in range(throttling.SIGNIN_MAX_FAILURES_PER_ADDRESS):
        sign_in(f"nobody{i}", "guess", address="10.0.0.1", forwarded=f"1.2.3.{i}, 198.51.100.20")
    assert sign_in("other", PASSWORD, address="10.0.0.1", forwarded="198.51.100.20").status_code == 429
    assert sign_in("other", PASSWORD, address="10.0.0.1", forwarded="198.51.100.21").status_code == 302


def test_password_reset_mails_are_limited_and_the_answer_is_always_the_same(world, clock):
    world.owner.email = "owner@example.com"
    world.owner.save(update_fields=["email"])
    answers = [
        Client(REMOTE_ADDR="198.51.100.30").post("/accounts/password/reset/", {"email": "owner@example.com"})
        for _ in range(30)
    ]
    assert {(a.status_code, a["Location"]) for a in answers} == {(302, "/accounts/password/reset/sent/")}
    assert len(mail.outbox) == throttling.RESET_MAX_PER_EMAIL
    # An address with no account gets the very same answer, and counts against the client.
    answer = Client(REMOTE_ADDR="198.51.100.30").post("/accounts/password/reset/", {"email": "nobody@example.com"})
    assert (answer.status_code, answer["Location"]) == (302, "/accounts/password/reset/sent/")
    # One client cannot mail many accounts either.
    from django.contrib.auth import get_user_model

    for i in range(20):
        get_user_model().objects.create_user(username=f"u{i}", email=f"u{i}@example.com", password=PASSWORD)
        Client(REMOTE_ADDR="198.51.100.31").post("/accounts/password/reset/", {"email": f"u{i}@example.com"})
    assert len(mail.outbox) == throttling.RESET_MAX_PER_EMAIL + throttling.RESET_MAX_PER_ADDRESS
    # After the window the owner can ask again.
    clock.advance(throttling.RESET_WINDOW_SECONDS)
    Client(REMOTE_ADDR="198.51.100.32").post("/accounts/password/reset/", {"email": "owner@example.com"})
    assert len(mail.outbox) == throttling.RESET_MAX_PER_EMAIL + throttling.RESET_MAX_PER_ADDRESS + 1
    record(
        "security", "password-reset mails limited per address and per client", probes=52, mails_sent=len(mail.outbox)
    )
