"""Tests: PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set (the test command sets them),
SQLite and locmem otherwise. Fast hasher; Chart.js from the local copy."""

from .base import *  # noqa: F403
from .base import FERNET_KEYS, derived_fernet_key

DEBUG = False
SECRET_KEY = "test-only-secret-key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CHARTJS_SOURCE = "local"
BINANCE_TIMEOUT = 2.0
BINANCE_BACKOFF_BASE = 0.05
BINANCE_BACKOFF_MAX = 2.0
# Eager tasks would train inline wherever a test stores candles; the tests of it turn it on.
FIRST_TRAINING = env.bool("MUR_FIRST_TRAINING", default=False)  # noqa: F405
# A Fernet key derived from SECRET_KEY when none is given: fine for development and tests only.
FERNET_KEYS = FERNET_KEYS or [derived_fernet_key(SECRET_KEY)]
