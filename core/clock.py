"""The current time, read in one place: code that waits out a window asks here, so tests move the
clock instead of sleeping."""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch."""
    return time.time()
