"""Settings shared by every way of running Make Us Rich.

Everything that differs between machines comes from the environment (django-environ),
see `.env.example`. The embedded default needs no services: SQLite under `var/` and
kombu's filesystem transport as the Celery broker.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def derived_fernet_key(secret: str) -> str:
    """A Fernet key (32 url-safe base64 bytes) derived from a secret: the local and test default."""
    import base64
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(b"mur-fernet:" + secret.encode()).digest()).decode()


def check_fernet_keys(keys: list[str]) -> None:
    from cryptography.fernet import Fernet

    for i, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"MUR_FERNET_KEYS: key {i} is not a Fernet key (32 url-safe base64-encoded bytes)."
            ) from None


# A local .env is optional; real deployments set variables in the process environment.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "accounts",
    "forecasting",
    "portfolio",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "mur_site.urls"
WSGI_APPLICATION = "mur_site.wsgi.application"
ASGI_APPLICATION = "mur_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.chartjs",
            ],
        },
    },
]

# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DB_CONN_MAX_AGE = env.int("MUR_DB_CONN_MAX_AGE", default=300)  # PostgreSQL only, see below
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Parameters bound by the server, and a statement run five times on a connection is prepared:
    # the queries every request makes (the API token, the latest forecast's state) are then planned
    # once per connection instead of on every request. No connection pooler sits in between.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
    # A connection kept across requests (checked before reuse): opening one per request made
    # PostgreSQL spend as much CPU as gunicorn under load (new backends, authentication, catalog
    # caches), and a statement is only ever prepared on a connection that lives. 0 closes each
    # connection at the end of its request, as Django does by default.
    DATABASES["default"].setdefault("CONN_MAX_AGE", DB_CONN_MAX_AGE)  # a ?conn_max_age= in the URL wins
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web, worker and beat processes write the same file. WAL lets readers go on while one
    # writes; IMMEDIATE takes the write lock when a transaction begins, so two writers queue for it
    # (the busy timeout) instead of one failing with "database is locked" when it upgrades a read.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "portfolio:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Chart.js is installed from the npm registry at setup (never committed); serve its dist folder.
CHARTJS_NODE_DIST = BASE_DIR / "node_modules" / "chart.js" / "dist"
if CHARTJS_NODE_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/chartjs", CHARTJS_NODE_DIST))

# "cdn" loads Chart.js from a CDN with an SRI hash and falls back to the local copy if it fails;
# "local" uses only the local copy (tests, offline machines).
CHARTJS_SOURCE = env.str("MUR_CHARTJS_SOURCE", default="cdn")
CHARTJS_VERSION = "4.5.1"
CHARTJS_CDN_URL = f"https://cdn.jsdelivr.net/npm/chart.js@{CHARTJS_VERSION}/dist/chart.umd.min.js"
# sha384 of dist/chart.umd.min.js of that npm release; a test checks it against the local copy.
CHARTJS_SRI = "sha384-jb8JQMbMoBUzgWatfe6COACi2ljcDdZQ2OxczGA3bGNeWe+6DChMTBJemed7ZnvJ"

# --- API. https://www.django-rest-framework.org/api-guide/settings/
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",  # the browser, with CSRF
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.DefaultPagination",
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.StrictJSONParser",  # refuses lone surrogates and deep nesting with a 400
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("MUR_API_ANON_RATE", default="60/min"),
        "user": env.str("MUR_API_USER_RATE", default="1200/min"),
    },
    "EXCEPTION_HANDLER": "core.api.exceptions.api_exception_handler",
    # Who the client is, for every throttle and the sign-in and password-reset limits
    # (core.clients.client_address): REMOTE_ADDR, unless this many proxies of ours sit in front and
    # append to X-Forwarded-For. A client cannot choose its own address by sending that header.
    "NUM_PROXIES": env.int("MUR_TRUSTED_PROXIES", default=0),
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.AutoSchema",  # tags by resource, summaries
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Make Us Rich API",
    "DESCRIPTION": "Market data, forecasts with 80% bands, model versions and portfolios.\n\n"
    "Decimals (prices, quantities, amounts) are JSON strings, every one written by one rule: plain "
    "notation, at most 8 decimal places, no trailing zeros, so `0.25`, `100`, `0` (never `0.25000000`, "
    "`1E+2` or `-0`). Input decimals may be strings or numbers, with or without trailing zeros. "
    "Quantile levels, durations and model metrics are JSON numbers.\n\n"
    "Times are ISO 8601 in UTC. Every 4xx has the body "
    '{"error": {"status", "code", "message", "fields"}}; a 404 names what was not found.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: works offline
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "/api/redoc-dist",  # the sidecar's bundle, served by core.api.views.redoc_bundle
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids from the path after it: `assets_list`, not `v1_assets_list`.
    "SCHEMA_PATH_PREFIX": "/api/v1/",
    # Several models have a "kind" or "status": each choice set gets its own readable name.
    "ENUM_NAME_OVERRIDES": {
        "TransactionKindEnum": "portfolio.models.Transaction.Kind",
        "ForecastKindEnum": "forecasting.models.Forecast.Kind",
        "TrainingRunStatusEnum": "forecasting.models.TrainingRun.Status",
        "ModelVersionStatusEnum": "forecasting.models.ModelVersion.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.add_error_responses",  # the one error body, documented on every operation
        "core.api.schema.add_tags",  # each resource's tag, described, in reading order
    ],
}

# --- Cache: local memory by default, Redis when REDIS_URL is set. It holds only what can be
# recomputed, so while Redis is down it acts as an empty cache instead of failing requests, and
# short socket timeouts keep a hung Redis from holding up every page.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery. https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_DIR = Path(env.str("MUR_BROKER_DIR", default=str(VAR_DIR / "broker")))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 4 * 3600}
else:
    # kombu's filesystem transport: a folder as the queue, so nothing else needs to run.
    # A host name, though the transport ignores it: without one kombu warns on every connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "store_processed": False,
    }
    # kombu expects the folders to exist.
    for _folder in ("queue", "control", "processed"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker (and beat) that loses the broker keeps reconnecting, waiting 2 s more each time up to
# 30 s, however long the outage lasts: no restart by hand. Celery's default gives up after 100 tries.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 10 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 9 * 60
# Three queues: market data, forecasts, and training (run with concurrency 1 on its own worker).
CELERY_TASK_DEFAULT_QUEUE = "ingest"
# Each queue has its own direct exchange and routing key; without them Celery binds every queue
# to the default exchange with the default key, and one message would land in all three.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in ("ingest", "forecast", "train")
)
CELERY_TASK_DEFAULT_EXCHANGE = "ingest"
CELERY_TASK_DEFAULT_ROUTING_KEY = "ingest"
# One place that says which queue each task uses.
CELERY_TASK_ROUTES = {
    "forecasting.tasks.candles_refresh_task": {"queue": "ingest"},
    "forecasting.tasks.tracked_assets_refresh_task": {"queue": "ingest"},
    "forecasting.tasks.forecast_task": {"queue": "forecast"},
    "forecasting.tasks.training_runs_reap_task": {"queue": "forecast"},
    "forecasting.tasks.training_run_task": {"queue": "train"},
    # Only queues a run (visible at once in admin); the run itself goes to "train".
    "forecasting.tasks.asset_retrain_task": {"queue": "forecast"},
    "portfolio.tasks.exchange_sync_task": {"queue": "ingest"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Market data.
BINANCE_API_URL = env.str("MUR_BINANCE_API_URL", default="https://api.binance.com/api")
BINANCE_TIMEOUT = env.float("MUR_BINANCE_TIMEOUT", default=10.0)
BINANCE_MAX_RETRIES = env.int("MUR_BINANCE_MAX_RETRIES", default=5)
BINANCE_BACKOFF_BASE = env.float("MUR_BINANCE_BACKOFF_BASE", default=1.0)
BINANCE_BACKOFF_MAX = env.float("MUR_BINANCE_BACKOFF_MAX", default=60.0)
# A folder of kline CSV files (`<SYMBOL>-<interval>.csv`): when set, candles come from there.
KLINES_DIR = env.str("MUR_KLINES_DIR", default="")
# /healthz fails when the newest candle of a tracked asset is older than this many intervals
# (0 turns the check off, e.g. for the offline demo whose data ends in 2022).
HEALTH_MAX_CANDLE_AGE_INTERVALS = env.int("MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS", default=3)
# New pairs one person (not staff) may start tracking by adding a transaction: each adds hourly
# refreshes and a daily training to the workers' load.
MAX_TRACKED_PER_USER = env.int("MUR_MAX_TRACKED_PER_USER", default=5)
# --- Exchange connections (portfolio/exchange/). Fernet keys that encrypt API secrets at rest,
# comma-separated: the first encrypts, all decrypt (rotation: put a new key first, keep the old ones
# until `manage.py exchange_keys_rotate` has re-encrypted every secret). Local and test settings
# derive one from SECRET_KEY when unset; production refuses to start without it.
FERNET_KEYS = env.list("MUR_FERNET_KEYS", default=[])
# Hourly by default (https://crontab.guru/#17_*_*_*_*): off the minute the candle refreshes use.
EXCHANGE_SYNC_CRON = {"minute": env.str("MUR_EXCHANGE_SYNC_MINUTE", default="17")}
# The first sync reads deposits and withdrawals from this date (Binance opened in July 2017).
EXCHANGE_HISTORY_START = env.str("MUR_EXCHANGE_HISTORY_START", default="2017-07-01")
# Binance's request-weight budget per minute for one IP (6,000 today); the sync waits for the next
# minute when the X-MBX-USED-WEIGHT-1M header says a request would go past this share of it.
EXCHANGE_WEIGHT_LIMIT = env.int("MUR_EXCHANGE_WEIGHT_LIMIT", default=4800)
# demo_setup's staff account with a printed password: only the local settings turn it on.
DEMO_ACCOUNT = False
# ... and its sample portfolio, built from the stored candles when the account is created.
DEMO_PORTFOLIO = False

# --- Forecasting. Model artifacts go through Django's storage API (local folder by default).
MEDIA_ROOT = Path(env.str("MUR_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Where model artifacts live (MUR_ARTIFACT_STORAGE): "database" (the default: in PostgreSQL, which
# every machine of a deployment reaches already), "s3" (object storage through django-storages,
# configured by MUR_S3_* below) or "files" (MEDIA_ROOT: one machine, or a volume shared by all).
ARTIFACT_STORAGE = env.str("MUR_ARTIFACT_STORAGE", default="database")
_ARTIFACT_BACKENDS = {
    "database": {"BACKEND": "forecasting.storage.DatabaseStorage"},
    "files": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "s3": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("MUR_S3_BUCKET", default=""),
            "endpoint_url": env.str("MUR_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("MUR_S3_REGION", default="") or None,
            "access_key": env.str("MUR_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("MUR_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("MUR_S3_PREFIX", default="make-us-rich"),
            "default_acl": None,
            "file_overwrite": False,
        },
    },
}
if ARTIFACT_STORAGE not in _ARTIFACT_BACKENDS:
    raise ImproperlyConfigured(
        f"MUR_ARTIFACT_STORAGE={ARTIFACT_STORAGE!r}: use one of {', '.join(_ARTIFACT_BACKENDS)}."
    )
if ARTIFACT_STORAGE == "s3" and not _ARTIFACT_BACKENDS["s3"]["OPTIONS"]["bucket_name"]:
    raise ImproperlyConfigured("MUR_ARTIFACT_STORAGE=s3 needs MUR_S3_BUCKET.")
STORAGES = {
    "default": _ARTIFACT_BACKENDS[ARTIFACT_STORAGE],
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# History each training reads (the backtest month included). Three years, chosen on the forecast
# grid's tuning months: the model beat the seasonal band in 41% of them with one year, 57% with
# two, 65% with three and 67% with four, where training time doubles (bench/results/forecast_tuning.md).
TRAIN_DAYS = env.int("MUR_TRAIN_DAYS", default=1095)
BACKTEST_DAYS = env.int("MUR_BACKTEST_DAYS", default=30)  # held out for the walk-forward backtest
# TrainConfig.max_epochs (per LSTM) and .ensemble (LSTMs averaged), as the forecast grid measured the
# defaults (a test keeps them equal). One LSTM halves training time for slightly less sharp bands.
TRAIN_MAX_EPOCHS = env.int("MUR_TRAIN_MAX_EPOCHS", default=15)
TRAIN_ENSEMBLE = env.int("MUR_TRAIN_ENSEMBLE", default=2)
TORCH_THREADS = env.int("MUR_TORCH_THREADS", default=1)
# An asset's first candles queue its first training (a model within minutes, not at the nightly
# retrain). The tests turn it off except where it is the point: eager tasks would train inline.
FIRST_TRAINING = env.bool("MUR_FIRST_TRAINING", default=True)
# Forecasts from a model older than this are marked stale.
MODEL_MAX_AGE_HOURS = env.float("MUR_MODEL_MAX_AGE_HOURS", default=72)
# A running training whose heartbeat is older than this is taken as dead (its worker was lost).
TRAINING_HEARTBEAT_TIMEOUT = env.int("MUR_TRAINING_HEARTBEAT_TIMEOUT", default=600)
# A training that lost its database connection is given back and retried after this many seconds.
TRAINING_RETRY_SECONDS = env.int("MUR_TRAINING_RETRY_SECONDS", default=30)
# A promotion needs point MAE at most this much above naive's (0.005 = 0.5%).
GATE_MAX_MAE_RATIO = env.float("MUR_GATE_MAX_MAE_RATIO", default=1.005)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
