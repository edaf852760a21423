"""Sign-in, sign-up and API-token forms."""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm

from .throttling import PasswordResetLimit, ThrottledSignInMixin

MAX_EXPIRY_DAYS = 3650


class SignInForm(ThrottledSignInMixin, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignInMixin, AdminAuthenticationForm):
    pass


class LimitedPasswordResetForm(PasswordResetForm):
    """Sends at most PasswordResetLimit's mails; beyond it the answer is the same page, so it tells
    nobody whether an account exists or how many mails were sent."""

    def save(self, *args, request=None, **kwargs):
        limit = PasswordResetLimit(request, self.cleaned_data["email"])
        if limit.retry_after():
            return
        limit.hit()
        super().save(*args, request=request, **kwargs)


class SignUpForm(UserCreationForm):
    email = forms.EmailField(
        required=False, label="E-mail (optional)", help_text="Only used to reset a forgotten password."
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Name", help_text="Where the token is used, e.g. “laptop script” or “CI”."
    )
    expires_in_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        label="Expires after (days)",
        help_text="Leave empty for a token that never expires; you can revoke it at any time.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
