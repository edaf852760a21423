"""Development and the embedded default: debug on, a throwaway key if none is given."""

from .base import *  # noqa: F403
from .base import FERNET_KEYS, derived_fernet_key, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# An empty value (a copied .env.example) counts as unset here.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or "insecure-local-development-key-do-not-use-in-production"
EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# scripts/run's first run creates a demo account (staff; its password is printed once), also with
# DEBUG off, which is how scripts/run starts the site.
DEMO_ACCOUNT = env.bool("MUR_DEMO_ACCOUNT", default=True)
DEMO_PORTFOLIO = env.bool("MUR_DEMO_PORTFOLIO", default=True)
# Static files straight from the app folders, without collectstatic, also with DEBUG off (how
# scripts/run starts the site: a person using it never sees Django's debug pages).
WHITENOISE_USE_FINDERS = True
# One line per request is noise in the terminal of a local run; failed requests (4xx, 5xx) still show.
LOGGING["loggers"]["django.server"] = {"level": env.str("MUR_REQUEST_LOG_LEVEL", default="WARNING")}  # noqa: F405
# The request line above already tells each 4xx; django.request would repeat it ("Not Found: ...").
# Server errors still come with their traceback.
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405
# A Fernet key derived from SECRET_KEY when none is given: fine for development and tests only.
FERNET_KEYS = FERNET_KEYS or [derived_fernet_key(SECRET_KEY)]
