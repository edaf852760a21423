"""The Redis cache degrades to "no cache" when Redis cannot be reached, and works when it can."""

from __future__ import annotations

import logging
import os

import pytest

from core.cache import ResilientRedisCache
from tests.support.processes import free_port


def _cache(location: str) -> ResilientRedisCache:
    return ResilientRedisCache(location, {"OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}})


def test_an_unreachable_redis_reads_as_misses_and_drops_writes(caplog, monkeypatch):
    monkeypatch.setattr(ResilientRedisCache, "_warned_at", float("-inf"))
    cache = _cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert cache.get("k", "fallback") == "fallback"
        cache.set("k", 1)
        assert cache.get_many(["k", "j"]) == {}
        assert cache.set_many({"k": 1, "j": 2}) == ["k", "j"]
        assert cache.add("k", 1) is False
        assert cache.has_key("k") is False
        assert cache.touch("k") is False
        assert cache.delete("k") is False
        cache.delete_many(["k"])
        assert cache.clear() is False
        with pytest.raises(ValueError, match="unavailable"):
            cache.incr("k")  # what callers of incr already handle for a missing key
    warnings = [r for r in caplog.records if r.name == "core.cache"]
    assert len(warnings) == 1, "one warning per interval, not one per call"
    assert "get skipped" in warnings[0].getMessage()


@pytest.mark.services
def test_a_reachable_redis_is_a_normal_cache():
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("This test needs Redis: run it through the test command (scripts/test), which sets REDIS_URL.")
    cache = _cache(url)
    cache.set("mur-test-cache", 41)
    assert cache.get("mur-test-cache") == 41
    assert cache.incr("mur-test-cache") == 42
    assert cache.add("mur-test-cache", 0) is False
    assert cache.delete("mur-test-cache") is True
    assert cache.get("mur-test-cache", "gone") == "gone"
