"""The landing page, sign-up, sign-in with a limit on failed attempts, and the API tokens page;
sign-out and passwords are Django's own auth views."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from . import selectors
from .forms import SignInForm, SignUpForm, TokenCreateForm
from .models import ApiToken
from .services import token_create, token_revoke


class SignInView(LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


def home(request):
    if request.user.is_authenticated:
        return redirect("portfolio:dashboard")
    return render(request, "landing.html")


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("portfolio:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.get_username()}. Create your first portfolio below.")
        return redirect("portfolio:dashboard")
    return render(request, "registration/signup.html", {"form": form})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def token_page(request):
    """The user's tokens and a form for a new one; the new key is shown once, on the answer to the POST."""
    form = TokenCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, key = token_create(
            user=request.user, name=form.cleaned_data["name"], expires_in_days=form.cleaned_data["expires_in_days"]
        )
        # Rendered, not redirected: the key must not travel through a URL, the session or a message.
        return render(request, "accounts/token_created.html", {"token": token, "key": key, "curl": _curl(request, key)})
    now = timezone.now()
    tokens = [(t, t.status(now)) for t in selectors.token_list(user=request.user)]
    return render(
        request, "accounts/token_list.html", {"tokens": tokens, "form": form}, status=400 if form.errors else 200
    )


def _curl(request, key: str) -> str:
    """A first request to paste into a terminal: this site's real address (as the browser reached
    it) and the authentication header the API reads (accounts.authentication)."""
    url = request.build_absolute_uri(reverse("api:portfolio-list"))
    return f'curl -H "Authorization: Token {key}" {url}'


@login_required
@require_http_methods(["GET", "POST"])
def token_revoke_page(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)  # another user's token is a 404
    if request.method == "POST":
        token_revoke(token=token)
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) is revoked; requests with it now get 401.")
        return redirect("api-tokens:list")
    return render(
        request, "accounts/token_confirm_revoke.html", {"token": token, "status": token.status(timezone.now())}
    )
