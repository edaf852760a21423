"""A Redis cache that degrades to "no cache" while Redis is down.

The cache only holds what can be recomputed (API answers, throttle counters), so an unreachable
Redis must not turn pages, sign-in or the API into 500s: reads miss, writes are dropped, and a
warning is logged (at most every WARN_EVERY seconds per process, not once per request). The price:
API rate limits are not enforced until Redis is back (sessions live in PostgreSQL, unaffected).
"""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

WARN_EVERY = 30.0


class ResilientRedisCache(RedisCache):
    _warned_at = float("-inf")

    def _down(self, operation: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - ResilientRedisCache._warned_at >= WARN_EVERY:
            ResilientRedisCache._warned_at = now
            log.warning("Cache unavailable, %s skipped (the site runs without the cache): %s", operation, exc)

    def _or(self, fallback, call, *args):
        """`call(*args)`, or `fallback` (logged) when Redis cannot be reached."""
        try:
            return call(*args)
        except RedisError as exc:
            self._down(call.__name__, exc)
            return fallback

    def get(self, key, default=None, version=None):
        return self._or(default, super().get, key, default, version)

    def get_many(self, keys, version=None):
        return self._or({}, super().get_many, keys, version)

    def has_key(self, key, version=None):
        return self._or(False, super().has_key, key, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._or(None, super().set, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        # Django's contract: set_many returns the keys that were not stored.
        return self._or(list(data), super().set_many, data, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(False, super().add, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._or(False, super().touch, key, timeout, version)

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            self._down("incr", exc)
            raise ValueError(f"Key {key!r} not found (the cache is unavailable).") from exc

    def delete(self, key, version=None):
        return self._or(False, super().delete, key, version)

    def delete_many(self, keys, version=None):
        self._or(None, super().delete_many, keys, version)

    def clear(self):
        return self._or(False, super().clear)
