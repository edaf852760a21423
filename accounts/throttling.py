"""A limit on failed sign-ins, shared by the site's and the admin's sign-in forms."""

from __future__ import annotations

import hashlib
import math

from django.core.cache import cache
from django.core.exceptions import ValidationError
from rest_framework.throttling import BaseThrottle

from core import clock

# Failed sign-ins allowed within the window, per username and per client address, before sign-in
# is refused until the window (counted from the first failure) ends. Per username stops guessing
# one account's password from many addresses; per address stops trying many accounts from one.
SIGNIN_WINDOW_SECONDS = 15 * 60
SIGNIN_MAX_FAILURES_PER_USERNAME = 5
SIGNIN_MAX_FAILURES_PER_ADDRESS = 30


class SignInThrottle:
    """Failure counts in the cache (shared by every web process). Each count lives for the window
    from its first failure; an `until` key beside it says when that is."""

    def __init__(self, request, username: str):
        # The client address as the API's throttles see it, so both agree on who a client is.
        address = BaseThrottle().get_ident(request) if request is not None else ""
        user_digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        self.counters = [(f"signin-failures:user:{user_digest}", SIGNIN_MAX_FAILURES_PER_USERNAME),
                         (f"signin-failures:addr:{address}", SIGNIN_MAX_FAILURES_PER_ADDRESS)]

    def retry_after(self) -> int:
        """Seconds until sign-in is allowed again; 0 when it is allowed now."""
        values = cache.get_many([k for k, _ in self.counters] + [k + ":until" for k, _ in self.counters])
        now, wait = clock.now(), 0
        for key, limit in self.counters:
            until = values.get(key + ":until")
            # A window is over at its end, whether or not the cache has dropped its keys yet.
            if until is not None and until > now and (values.get(key) or 0) >= limit:
                wait = max(wait, math.ceil(until - now))
        return wait

    def failed(self) -> None:
        now = clock.now()
        for key, _ in self.counters:
            until = cache.get(key + ":until")
            if until is not None and until <= now:
                cache.delete_many([key, key + ":until"])  # the old window is over: this failure starts a new one
            cache.add(key + ":until", now + SIGNIN_WINDOW_SECONDS, SIGNIN_WINDOW_SECONDS)
            cache.add(key, 0, SIGNIN_WINDOW_SECONDS)
            try:
                cache.incr(key)  # atomic: parallel guesses cannot slip past the limit
            except ValueError:  # expired between add() and incr(), or the cache is down
                cache.set(key, 1, SIGNIN_WINDOW_SECONDS)

    def succeeded(self) -> None:
        # Only the username's count: signing in to one's own account must not reset the address's.
        cache.delete_many([self.counters[0][0], self.counters[0][0] + ":until"])


def _wait_text(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class ThrottledSignInMixin:
    """For authentication forms: refuses sign-in, without checking the password, while too many
    attempts have failed; `retry_after` is then the wait in seconds."""

    retry_after = 0

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        throttle = SignInThrottle(self.request, username)
        self.retry_after = throttle.retry_after()
        if self.retry_after:
            raise ValidationError(
                f"Too many failed sign-ins for this account or from your network. "
                f"Try again in {_wait_text(self.retry_after)}.", code="throttled")
        try:
            data = super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login":
                throttle.failed()
            raise
        throttle.succeeded()
        return data
