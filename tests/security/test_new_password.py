"""A new password ends what the old one allowed: every API token of the account is revoked,
whichever way the password changed."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from tests.reliability import record

PASSWORD = "correct-horse-battery-staple"


@pytest.mark.django_db
@pytest.mark.parametrize("how", ["password page", "reset link", "admin", "shell"])
def test_a_new_password_revokes_every_api_token(client, how):
    from django.core.management import call_command
    from rest_framework.test import APIClient

    from accounts.services import token_create

    user = get_user_model().objects.create_user(username="erin", email="erin@example.com", password=PASSWORD)
    other = get_user_model().objects.create_user(username="frank", password=PASSWORD)
    _, key = token_create(user=user, name="laptop")
    _, kept = token_create(user=other, name="frank's")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/ping/").status_code == 200
    new = "another-long-passphrase-2"
    if how == "password page":
        client.force_login(user)
        client.post(reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new})
    elif how == "reset link":
        client.post(reverse("password_reset"), {"email": "erin@example.com"})
        link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
        form_url = client.get(link)["Location"]
        client.post(form_url, {"new_password1": new, "new_password2": new})
    elif how == "admin":
        admin = get_user_model().objects.create_superuser(username="root", password=PASSWORD)
        client.force_login(admin)
        client.post(
            reverse("admin:auth_user_password_change", args=[user.id]),
            {"password1": new, "password2": new, "usable_password": "true"},
        )
    else:
        from unittest import mock

        with mock.patch("getpass.getpass", return_value=new):
            call_command("changepassword", "erin", stdout=open("/dev/null", "w"))
    user.refresh_from_db()
    assert user.check_password(new), how
    assert api.get("/api/v1/ping/").status_code == 401
    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Token {kept}")
    assert other_api.get("/api/v1/ping/").status_code == 200
    # Signing in (which saves last_login) revokes nothing.
    _, fresh = token_create(user=user, name="new laptop")
    assert client.login(username="erin", password=new)
    api.credentials(HTTP_AUTHORIZATION=f"Token {fresh}")
    assert api.get("/api/v1/ping/").status_code == 200
    record("security", f"API tokens revoked on a new password ({how})", probes=4)
