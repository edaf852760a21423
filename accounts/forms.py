"""Sign-in, sign-up and API-token forms."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from .throttling import ThrottledSignInMixin

MAX_EXPIRY_DAYS = 3650


class SignInForm(ThrottledSignInMixin, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignInMixin, AdminAuthenticationForm):
    pass


class SignUpForm(UserCreationForm):
    email = forms.EmailField(required=False, label="E-mail (optional)",
                             help_text="Only used to reset a forgotten password.")

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name",
                           help_text="Where the token is used, e.g. “laptop script” or “CI”.")
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_EXPIRY_DAYS, label="Expires after (days)",
        help_text="Leave empty for a token that never expires; you can revoke it at any time.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}))
