import pytest


@pytest.fixture(autouse=True)
def _fresh_counts(fresh_cache):
    """Throttle counters live in the cache; each API test starts from zero."""
