"""The two ways to run (embedded default and production) come from the environment alone.

Each configuration is loaded in a child process with a clean environment, so nothing from the
test run (DATABASE_URL, REDIS_URL, DJANGO_SETTINGS_MODULE) leaks into what is being checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Prints the settings under test as JSON, plus the broker the Celery app itself ends up with.
_PROBE = """
import json, django
django.setup()
from django.conf import settings
from mur_site.celery_app import app
db = settings.DATABASES["default"]
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SECRET_KEY": settings.SECRET_KEY,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
    "db": {k: str(db.get(k, "")) for k in ("ENGINE", "NAME", "HOST", "PORT", "USER", "PASSWORD")},
    "broker_url": settings.CELERY_BROKER_URL,
    "broker_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "app_broker_url": app.conf.broker_url,
    "cache": settings.CACHES["default"],
    "queues": [q.name for q in settings.CELERY_TASK_QUEUES],
    "training": {
        k: getattr(settings, k) for k in ("TRAIN_DAYS", "BACKTEST_DAYS", "TRAIN_MAX_EPOCHS", "TRAIN_ENSEMBLE")
    },
}))
"""


FERNET_KEY = "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMtLS0="


def clean_env(settings_module: str, **variables: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DJANGO_SETTINGS_MODULE": settings_module}
    if settings_module.endswith("production"):
        env["MUR_FERNET_KEYS"] = FERNET_KEY  # required there; the test of that removes it
    env.update(variables)
    return env


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def load_settings(settings_module: str, **variables: str) -> dict:
    """The settings a fresh process gets from `settings_module` and exactly these variables."""
    proc = run_python(_PROBE, clean_env(settings_module, **variables))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_production_refuses_to_start_without_a_secret_key():
    for secret in (None, ""):
        extra = {"DJANGO_ALLOWED_HOSTS": "example.com"}
        if secret is not None:
            extra["DJANGO_SECRET_KEY"] = secret
        proc = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env("mur_site.settings.production", **extra),
        )
        assert proc.returncode != 0, proc.stdout
        assert "ImproperlyConfigured" in proc.stderr
        assert "DJANGO_SECRET_KEY" in proc.stderr


@pytest.mark.parametrize("keys", ["", "not-a-fernet-key"])
def test_production_refuses_to_start_without_fernet_keys(keys):
    env = clean_env(
        "mur_site.settings.production", DJANGO_SECRET_KEY="s3cret-for-this-test", DJANGO_ALLOWED_HOSTS="example.com"
    )
    env["MUR_FERNET_KEYS"] = keys
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode != 0, proc.stdout
    assert "ImproperlyConfigured" in proc.stderr and "MUR_FERNET_KEYS" in proc.stderr


def test_production_requires_allowed_hosts():
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env("mur_site.settings.production", DJANGO_SECRET_KEY="s3cret-for-this-test"),
    )
    assert proc.returncode != 0, proc.stdout
    assert "DJANGO_ALLOWED_HOSTS" in proc.stderr


def test_production_with_key_and_hosts_loads_and_passes_checks():
    env = clean_env(
        "mur_site.settings.production",
        DJANGO_SECRET_KEY="s3cret-for-this-test",
        DJANGO_ALLOWED_HOSTS="mur.example.com,www.mur.example.com",
    )
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    s = load_settings(
        "mur_site.settings.production",
        DJANGO_SECRET_KEY="s3cret-for-this-test",
        DJANGO_ALLOWED_HOSTS="mur.example.com,www.mur.example.com",
    )
    assert s["DEBUG"] is False
    assert s["SECRET_KEY"] == "s3cret-for-this-test"
    assert s["ALLOWED_HOSTS"] == ["mur.example.com", "www.mur.example.com"]


def test_embedded_default_needs_no_services():
    s = load_settings("mur_site.settings.local")
    assert s["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(s["db"]["NAME"]) == ROOT / "var" / "db.sqlite3"
    assert s["broker_url"] == s["app_broker_url"] == "filesystem://localhost/"
    broker_dir = ROOT / "var" / "broker"
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        assert Path(s["broker_options"][key]).parent == broker_dir
    assert s["cache"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"


@pytest.mark.parametrize("module", ["mur_site.settings.local", "mur_site.settings.production"])
def test_training_defaults_are_those_the_forecast_grid_measured(module):
    # The grid (bench/forecast_grid.py) chose and reported the defaults with TrainConfig's epoch
    # cap, three years of history and a 30-day backtest; production must train the same way.
    sys.path.insert(0, str(ROOT / "bench"))
    import forecast_grid

    from forecasting.ml.config import TrainConfig

    production = {"DJANGO_SECRET_KEY": "s3cret-for-this-test", "DJANGO_ALLOWED_HOSTS": "mur.example.com"}
    s = load_settings(module, **(production if module.endswith("production") else {}))["training"]
    assert s["TRAIN_MAX_EPOCHS"] == TrainConfig().max_epochs
    assert s["TRAIN_ENSEMBLE"] == TrainConfig().ensemble
    assert s["TRAIN_DAYS"] == forecast_grid.TRAIN_DAYS
    assert s["BACKTEST_DAYS"] * 24 == forecast_grid.GATE_STEPS


def test_database_url_selects_postgresql():
    s = load_settings("mur_site.settings.local", DATABASE_URL="postgres://mur:pw@db.internal:5433/murdb")
    assert s["db"] == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "murdb",
        "HOST": "db.internal",
        "PORT": "5433",
        "USER": "mur",
        "PASSWORD": "pw",
    }
    # Only the database moved: broker and cache stay embedded without REDIS_URL.
    assert s["broker_url"] == "filesystem://localhost/"


def test_redis_url_selects_redis_broker_and_cache():
    url = "redis://cache.internal:6380/3"
    s = load_settings(
        "mur_site.settings.production",
        DJANGO_SECRET_KEY="s3cret-for-this-test",
        DJANGO_ALLOWED_HOSTS="mur.example.com",
        REDIS_URL=url,
        DATABASE_URL="postgres://mur:pw@db.internal:5432/mur",
    )
    assert s["broker_url"] == s["app_broker_url"] == url
    # Redis behind the backend that degrades to "no cache" while Redis is down (tests/faults).
    assert s["cache"] == {
        "BACKEND": "core.cache.ResilientRedisCache",
        "LOCATION": url,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    assert s["db"]["ENGINE"] == "django.db.backends.postgresql"


def test_three_celery_queues(settings):
    names = [q.name for q in settings.CELERY_TASK_QUEUES]
    assert sorted(names) == ["forecast", "ingest", "train"]
    assert settings.CELERY_TASK_DEFAULT_QUEUE in names
    for route in settings.CELERY_TASK_ROUTES.values():
        assert route["queue"] in names
    # Every project task is routed (by its own options or CELERY_TASK_ROUTES) to one of them.
    from mur_site.celery_app import app

    app.loader.import_default_modules()
    project_tasks = [name for name in app.tasks if name.split(".")[0] in {"forecasting", "portfolio", "mur_site"}]
    assert project_tasks, "no project task registered"
    for name in project_tasks:
        task = app.tasks[name]
        route = app.amqp.router.route(dict(task._get_exec_options()), name, (), {}, task_type=task)
        assert route["queue"].name in names, f"{name} is routed to unknown queue {route['queue'].name!r}"


def test_production_settings_pass_the_deploy_check_without_warnings():
    import secrets

    env = clean_env(
        "mur_site.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="makeusrich.example",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_logs_are_json_lines():
    import json
    import logging

    from core.logging import JsonFormatter

    record = logging.LogRecord("mur", logging.WARNING, __file__, 1, "candles %s", ("late",), None)
    line = JsonFormatter().format(record)
    assert json.loads(line) | {"time": "x"} == {
        "time": "x",
        "level": "WARNING",
        "logger": "mur",
        "message": "candles late",
    }


def test_web_process_does_not_load_torch():
    """Pages, admin and API never train: torch and Lightning stay out of web processes (memory,
    start-up time and garbage-collection pauses on every request)."""
    code = """
import sys, django
django.setup()
from django.urls import get_resolver
from django.contrib import admin
get_resolver().url_patterns
admin.autodiscover()
from django.test import Client
Client().get('/healthz')
print('torch' in sys.modules, 'pytorch_lightning' in sys.modules)
"""
    result = run_python(code, clean_env("mur_site.settings.test"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["False", "False"]


def test_an_asset_page_with_past_forecasts_loads_no_model_stack(tmp_path):
    """The asset page's past forecasts need three numbers from the model code, not scipy and
    scikit-learn: importing those cost each web worker seconds on its first asset page."""
    code = """
import sys, django
django.setup()
from django.core.management import call_command
call_command('migrate', verbosity=0)
from django.test import Client
from forecasting.models import ModelVersion
from tests.factories import BacktestTrackFactory, UserFactory, candles
track = BacktestTrackFactory(version__status=ModelVersion.Status.CHAMPION)
candles(track.version.asset, [100 + k % 5 for k in range(48)])
client = Client(HTTP_HOST='localhost')
client.force_login(UserFactory())
page = client.get('/assets/%s/' % track.version.asset.symbol)
print(page.status_code, 'Past forecasts' in page.content.decode())
print(*(name in sys.modules for name in ('scipy.stats', 'sklearn', 'torch')))
"""
    result = run_python(code, clean_env("mur_site.settings.test", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}"))
    assert result.returncode == 0, result.stderr
    shown, loaded = result.stdout.strip().splitlines()[-2:]
    assert shown == "200 True"
    assert loaded == "False False False"


_STORAGE_PROBE = """
import json, django
django.setup()
from django.core.files.storage import storages
store = storages["default"]
print(json.dumps({"class": type(store).__name__,
    "options": {k: getattr(store, k, None) for k in ("bucket_name", "endpoint_url", "location")}}))
"""


def test_artifacts_live_in_the_database_unless_object_storage_or_files_are_asked_for():
    def storage(**variables):
        proc = run_python(_STORAGE_PROBE, clean_env("mur_site.settings.local", **variables))
        return proc

    default = storage()
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["class"] == "DatabaseStorage"
    s3 = storage(
        MUR_ARTIFACT_STORAGE="s3",
        MUR_S3_BUCKET="models",
        MUR_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        MUR_S3_ACCESS_KEY_ID="key",
        MUR_S3_SECRET_ACCESS_KEY="secret",
    )
    assert s3.returncode == 0, s3.stderr
    answer = json.loads(s3.stdout)
    assert answer["class"] == "S3Storage"
    assert answer["options"] == {
        "bucket_name": "models",
        "endpoint_url": "http://127.0.0.1:9000",
        "location": "make-us-rich",
    }
    assert json.loads(storage(MUR_ARTIFACT_STORAGE="files").stdout)["class"] == "FileSystemStorage"
    # A mistake stops the process at once, saying what to set.
    wrong = storage(MUR_ARTIFACT_STORAGE="nfs")
    assert wrong.returncode != 0 and "MUR_ARTIFACT_STORAGE='nfs': use one of database, files, s3" in wrong.stderr
    bucketless = storage(MUR_ARTIFACT_STORAGE="s3")
    assert bucketless.returncode != 0 and "MUR_ARTIFACT_STORAGE=s3 needs MUR_S3_BUCKET" in bucketless.stderr
