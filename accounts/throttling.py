"""Limits on failed sign-ins (shared by the site's and the admin's sign-in forms) and on
password-reset mails, per account and per client address (core.clients)."""

from __future__ import annotations

import hashlib
import math

from django.core.cache import cache
from django.core.exceptions import ValidationError

from core import clock
from core.clients import client_address

# Failed sign-ins allowed within the window, per username and per client address, before sign-in
# is refused until the window (counted from the first failure) ends. Per username stops guessing
# one account's password from many addresses; per address stops trying many accounts from one.
SIGNIN_WINDOW_SECONDS = 15 * 60
SIGNIN_MAX_FAILURES_PER_USERNAME = 5
SIGNIN_MAX_FAILURES_PER_ADDRESS = 30


class WindowLimit:
    """Counts in the cache (shared by every web process), each against its own limit. A count lives
    for the window from its first hit; an `until` key beside it says when that is."""

    window_seconds = 0

    def __init__(self, counters: list[tuple[str, int]]):
        self.counters = counters

    def retry_after(self) -> int:
        """Seconds until the action is allowed again; 0 when it is allowed now."""
        values = cache.get_many([k for k, _ in self.counters] + [k + ":until" for k, _ in self.counters])
        now, wait = clock.now(), 0
        for key, limit in self.counters:
            until = values.get(key + ":until")
            # A window is over at its end, whether or not the cache has dropped its keys yet.
            if until is not None and until > now and (values.get(key) or 0) >= limit:
                wait = max(wait, math.ceil(until - now))
        return wait

    def hit(self) -> None:
        now, window = clock.now(), self.window_seconds
        for key, _ in self.counters:
            until = cache.get(key + ":until")
            if until is not None and until <= now:
                cache.delete_many([key, key + ":until"])  # the old window is over: this hit starts a new one
            cache.add(key + ":until", now + window, window)
            cache.add(key, 0, window)
            try:
                cache.incr(key)  # atomic: parallel attempts cannot slip past the limit
            except ValueError:  # expired between add() and incr(), or the cache is down
                cache.set(key, 1, window)


def _digest(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


class SignInThrottle(WindowLimit):
    """Failed sign-ins per username and per client address."""

    def __init__(self, request, username: str):
        self.window_seconds = SIGNIN_WINDOW_SECONDS
        address = client_address(request) if request is not None else ""
        super().__init__(
            [
                (f"signin-failures:user:{_digest(username)}", SIGNIN_MAX_FAILURES_PER_USERNAME),
                (f"signin-failures:addr:{address}", SIGNIN_MAX_FAILURES_PER_ADDRESS),
            ]
        )

    def failed(self) -> None:
        self.hit()

    def succeeded(self) -> None:
        # Only the username's count: signing in to one's own account must not reset the address's.
        cache.delete_many([self.counters[0][0], self.counters[0][0] + ":until"])


# Password-reset mails per e-mail address and per client within the window: enough for a person
# who mistyped or lost a mail, too few to flood a mailbox or to send mail for many addresses.
RESET_WINDOW_SECONDS = 60 * 60
RESET_MAX_PER_EMAIL = 3
RESET_MAX_PER_ADDRESS = 10


class PasswordResetLimit(WindowLimit):
    def __init__(self, request, email: str):
        self.window_seconds = RESET_WINDOW_SECONDS
        address = client_address(request) if request is not None else ""
        super().__init__(
            [
                (f"reset-requests:email:{_digest(email)}", RESET_MAX_PER_EMAIL),
                (f"reset-requests:addr:{address}", RESET_MAX_PER_ADDRESS),
            ]
        )


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
                f"Try again in {_wait_text(self.retry_after)}.",
                code="throttled",
            )
        try:
            data = super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login":
                throttle.failed()
            raise
        throttle.succeeded()
        return data
