"""The "API tokens" page, and the small API views that belong to no app."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.models import ApiToken

from .authentication import token_create, token_revoke
from .mixins import WritesInTransaction

MAX_EXPIRY_DAYS = 3650


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name",
                           help_text="Where the token is used, e.g. “laptop script” or “CI”.")
    expires_in_days = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_EXPIRY_DAYS, label="Expires after (days)",
        help_text="Leave empty for a token that never expires; you can revoke it at any time.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}))


def _status(token: ApiToken, now) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_list(request):
    """The user's tokens and a form for a new one; the new key is shown once, on the answer to the POST."""
    form = TokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, key = token_create(user=request.user, name=form.cleaned_data["name"],
                                  expires_in_days=form.cleaned_data["expires_in_days"])
        # Rendered, not redirected: the key must not travel through a URL, the session or a message.
        return render(request, "api/token_created.html", {"token": token, "key": key})
    now = timezone.now()
    tokens = [(t, _status(t, now)) for t in ApiToken.objects.filter(user=request.user)]
    return render(request, "api/token_list.html", {"tokens": tokens, "form": form},
                  status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke_view(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's token is a 404
    if request.method == "POST":
        token_revoke(token=token)
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked; requests with it now get 401.")
        return redirect("api-tokens:list")
    return render(request, "api/token_confirm_revoke.html", {"token": token, "status": _status(token, timezone.now())})


# --- API ------------------------------------------------------------------------------------------


class PingApi(WritesInTransaction, APIView):
    """Who you are, as the API sees you: the cheapest authenticated request (checks a token)."""

    @extend_schema(responses=inline_serializer("Ping", {"ok": serializers.BooleanField(),
                                                        "user": serializers.CharField()}))
    def get(self, request):
        return Response({"ok": True, "user": request.user.get_username()})


class NotFoundApi(APIView):
    """Any other path under /api/v1/: a 404 with the error body instead of Django's HTML page."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        hint = "see /api/docs/"
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundApi:
                hint = f"did you mean {request.path}/ ?"  # the API's paths end with a slash
        raise exceptions.NotFound(f"No API endpoint at {request.path}; {hint}")
