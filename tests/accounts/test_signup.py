"""Accounts: sign up, sign in and out, password change and reset, through the Django test client."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

PASSWORD = "correct-horse-battery-staple"


def signed_in_user(client):
    return client.get(reverse("portfolio:dashboard")).wsgi_request.user


@pytest.mark.django_db
def test_sign_up_signs_in_then_sign_out_and_sign_in_again(client):
    page = client.get(reverse("signup")).content.decode()
    for field in ("username", "email", "password1", "password2"):
        assert f'<label for="id_{field}">' in page, field

    response = client.post(
        reverse("signup"),
        {"username": "carol", "email": "", "password1": "a-long-new-passphrase", "password2": "a-long-new-passphrase"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("portfolio:dashboard")
    user = get_user_model().objects.get(username="carol")
    assert user.email == ""  # e-mail is optional
    assert signed_in_user(client) == user
    assert "No portfolio yet" in client.get(reverse("portfolio:dashboard")).content.decode()

    # Signing out is a POST (a GET must not sign anyone out).
    assert client.get(reverse("logout")).status_code == 405
    assert signed_in_user(client).is_authenticated
    client.post(reverse("logout"))
    assert not signed_in_user(client).is_authenticated

    response = client.post(reverse("login"), {"username": "carol", "password": "a-long-new-passphrase"})
    assert response.status_code == 302 and response["Location"] == reverse("portfolio:dashboard")
    assert signed_in_user(client) == user


@pytest.mark.django_db
def test_sign_up_applies_the_password_validators(client):
    response = client.post(reverse("signup"), {"username": "dave", "password1": "qwerty", "password2": "qwerty"})
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["password2"])
    assert "too common" in errors and "too short" in errors
    response = client.post(
        reverse("signup"), {"username": "dave", "password1": "48120937561", "password2": "48120937561"}
    )
    assert "entirely numeric" in " ".join(response.context["form"].errors["password2"])
    response = client.post(
        reverse("signup"), {"username": "dave", "password1": "a-long-new-passphrase", "password2": "another-passphrase"}
    )
    assert "didn’t match" in " ".join(response.context["form"].errors["password2"])
    assert not get_user_model().objects.filter(username="dave").exists()


def test_signed_in_user_is_sent_from_sign_up_and_sign_in_to_the_dashboard(client, user):
    client.force_login(user)
    for name in ("signup", "login"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("portfolio:dashboard"), name


def test_public_pages_need_no_sign_in(client, db):
    for url in ("/", reverse("login"), reverse("signup"), reverse("password_reset"), reverse("password_reset_done")):
        assert client.get(url).status_code == 200, url


def test_password_change(client, user):
    client.force_login(user)
    url = reverse("password_change")
    response = client.post(url, {"old_password": "wrong", "new_password1": "x", "new_password2": "x"})
    assert response.status_code == 200
    assert response.context["form"].errors["old_password"]

    response = client.post(
        url,
        {"old_password": PASSWORD, "new_password1": "a-fresh-passphrase-42", "new_password2": "a-fresh-passphrase-42"},
    )
    assert response["Location"] == reverse("password_change_done")
    assert signed_in_user(client) == user  # the session survives the change
    user.refresh_from_db()
    assert user.check_password("a-fresh-passphrase-42")


def test_password_reset_sends_an_email_whose_link_sets_a_new_password(client, user):
    user.email = "alice@example.com"
    user.save()
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Make Us Rich: choose a new password"
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/\S+/)", message.body).group(1)

    # Django swaps the token for a session key and redirects to the form.
    response = client.get(link)
    assert response.status_code == 302
    form_url = response["Location"]
    response = client.post(form_url, {"new_password1": "reset-passphrase-77", "new_password2": "reset-passphrase-77"})
    assert response["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("reset-passphrase-77")
    # The link works once.
    assert "This link no longer works" in client.get(link, follow=True).content.decode()

    # An unknown address sends nothing (and does not say so).
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_local_run_creates_its_demo_account_with_debug_off_and_production_never(settings):
    """scripts/run starts with DEBUG off; its first run must still give a newcomer an account."""
    import io

    from portfolio.management.commands.demo_setup import Command

    settings.DEBUG = False
    settings.DEMO_ACCOUNT = True
    out = io.StringIO()
    Command(stdout=out)._demo_account()
    assert "username: demo  password: " in out.getvalue()
    assert get_user_model().objects.get(username="demo").is_staff
    settings.DEMO_ACCOUNT = False  # what base and production settings say
    get_user_model().objects.filter(username="demo").delete()
    out = io.StringIO()
    Command(stdout=out)._demo_account()
    assert "no demo account is created" in out.getvalue()
    assert not get_user_model().objects.filter(username="demo").exists()
