"""docker-compose.yml describes the production shape; these checks keep it in step with the code.

Every command must start a real entry point of the project, and every environment variable must
be one the settings read (and the other way round for .env.example), so a rename in the code
cannot leave the deployment silently pointing at nothing.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.test_settings import load_settings, run_python

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SETTINGS_DIR = ROOT / "mur_site" / "settings"

SERVICES = {"postgres", "redis", "web", "worker", "trainer", "beat"}
DJANGO_SERVICES = ("web", "worker", "trainer", "beat")
PRODUCTION_REQUIRED = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "MUR_FERNET_KEYS")
# Variables project containers may set although no settings module reads them.
PROCESS_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",  # read by Django itself
    "OMP_NUM_THREADS",  # OpenMP and MKL thread pools under torch
    "MKL_NUM_THREADS",
}
# The official postgres image reads these.
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}
# Never given a default in the compose file: a missing value must stop `docker compose up`.
SECRETS = ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "MUR_FERNET_KEYS")
FERNET_KEY = "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMtLS0="

# env("X"), env.str("X", ...), env.db_url("X"), ... and plain os.environ reads, in case one appears.
_ENV_READ = re.compile(
    r"""(?:\benv(?:\.\w+)?\(|os\.environ\.get\(|os\.getenv\(|os\.environ\[)\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
)
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def settings_variables(*files: str) -> set[str]:
    """Environment variable names read by the given settings modules (default: all of them)."""
    paths = [SETTINGS_DIR / f"{f}.py" for f in files] if files else sorted(SETTINGS_DIR.glob("*.py"))
    return {name for p in paths for name in _ENV_READ.findall(p.read_text())}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    assert "env_file" not in service, "variables must be visible here to be checked; set them in environment"
    return {k: "" if v is None else str(v) for k, v in env.items()}


def interpolate(value: str, given: dict[str, str]) -> str:
    """docker compose's ${NAME}, ${NAME:-default} and ${NAME:?error} substitution."""

    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if given.get(name):
            return given[name]
        if op and op.endswith("-"):
            return arg
        raise AssertionError(f"${{{name}}} is required: {arg or 'no message'}")

    return _INTERPOLATION.sub(sub, value).replace("$$", "$")


def command_lines(service: dict) -> list[list[str]]:
    """The argv of each program a service's command runs (a `sh -c` script is split on && and ;)."""
    cmd = service["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"]):
        lines = [shlex.split(part) for part in re.split(r"&&|\|\||;", argv[2]) if part.strip()]
    else:
        lines = [argv]
    return [line[1:] if line[0] == "exec" else line for line in lines]


def parse_celery(argv: list[str]) -> tuple[str, dict]:
    """Parse `celery [global options] SUBCOMMAND [options]` with celery's own option tables,
    so an option the installed celery does not know fails here instead of at deploy time."""
    from celery.bin.celery import celery as celery_group

    if argv[:3] in (["python", "-m", "celery"], ["python3", "-m", "celery"]):
        argv = ["celery", *argv[3:]]
    assert argv[0] == "celery"

    def table(command):
        return {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}

    values: dict = {}
    sub_name = None
    options = table(celery_group)
    tokens = iter(argv[1:])
    for token in tokens:
        if not token.startswith("-"):
            assert sub_name is None, f"unexpected argument {token!r} in {argv}"
            sub_name = token
            sub = celery_group.get_command(None, token)
            assert sub is not None, f"celery has no subcommand {token!r}"
            options = table(sub)
            continue
        opt, _, inline = token.partition("=")
        assert opt in options, f"celery {sub_name or ''} has no option {opt!r}"
        param = options[opt]
        values[param.name] = True if param.is_flag else (inline or next(tokens))
    assert sub_name, f"no celery subcommand in {argv}"
    return sub_name, values


def check_manage_command(argv: list[str]) -> str:
    from django.core.management import get_commands, load_command_class

    assert argv[1] == "manage.py", argv
    assert (ROOT / "manage.py").is_file()
    name = argv[2]
    commands = get_commands()
    assert name in commands, f"manage.py has no command {name!r}"
    # The command's own parser rejects unknown options.
    load_command_class(commands[name], name).create_parser("manage.py", name).parse_args(argv[3:])
    return name


def test_six_services(compose):
    assert set(compose["services"]) == SERVICES
    for name in DJANGO_SERVICES:
        assert "build" in compose["services"][name], f"{name} must run the project image"
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


def test_postgres_has_healthcheck_and_volume_and_apps_wait_for_it(compose):
    pg = compose["services"]["postgres"]
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    volume = pg["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    for name in DJANGO_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert "redis" in depends


def test_dockerfile_builds_the_project_image(compose):
    for name in DJANGO_SERVICES:
        build = compose["services"][name]["build"]
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert stages[-1] == "python:3.11-slim"
    assert "pip install -r requirements.txt" in text
    # manage.py commands run at build time exist too (collectstatic must be one of them).
    run_text = re.sub(r"\\\n", " ", text)
    build_commands = {
        check_manage_command(shlex.split(m.group(0))) for m in re.finditer(r"python manage\.py [^\n&;]+", run_text)
    }
    assert "collectstatic" in build_commands
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", ".git"} <= ignored, "secrets and local environments must stay out of the image"


# Loading the WSGI handler builds WhiteNoise, which warns that collectstatic has not run here.
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
def test_web_migrates_then_serves_the_wsgi_application(compose):
    from django.core.handlers.wsgi import WSGIHandler
    from gunicorn.config import Config
    from gunicorn.util import import_app

    lines = command_lines(compose["services"]["web"])
    assert [line[0] for line in lines] == ["python", "gunicorn"], lines
    assert check_manage_command(lines[0]) == "migrate"
    args = Config().parser().parse_args(lines[1][1:])
    assert args.bind == ["0.0.0.0:8000"]
    assert len(args.args) == 1
    module, _, attr = args.args[0].partition(":")
    application = import_app(args.args[0])
    assert isinstance(application, WSGIHandler), f"{args.args[0]} is not Django's WSGI handler"
    assert application is getattr(importlib.import_module(module), attr)
    assert "8000:8000" in compose["services"]["web"]["ports"]


def test_workers_and_beat_run_the_project_celery_app(compose, settings):
    from celery.app.utils import find_app
    from celery.utils.imports import symbol_by_name
    from django_celery_beat.schedulers import DatabaseScheduler

    project_app = importlib.import_module("mur_site.celery_app").app
    queue_names = {q.name for q in settings.CELERY_TASK_QUEUES}
    consumed: dict[str, set[str]] = {}
    for name in ("worker", "trainer", "beat"):
        lines = command_lines(compose["services"][name])
        assert len(lines) == 1, f"{name} runs one program"
        sub, opts = parse_celery(lines[0])
        assert find_app(opts["app"]) is project_app, f"{name}: -A {opts['app']} is not mur_site's Celery app"
        if name == "beat":
            assert sub == "beat"
            scheduler = symbol_by_name(opts.get("scheduler") or settings.CELERY_BEAT_SCHEDULER)
            assert scheduler is DatabaseScheduler
            continue
        assert sub == "worker"
        assert "beat" not in opts, f"{name} must not embed beat: exactly one beat runs"
        queues = set(opts["queues"].split(","))
        assert queues <= queue_names, f"{name} consumes unknown queues {queues - queue_names}"
        consumed[name] = queues
        if name == "trainer":
            assert queues == {"train"}
            assert int(opts["concurrency"]) == 1
    assert consumed["worker"] == {"ingest", "forecast"}
    # Every queue has a consumer.
    assert set().union(*consumed.values()) == queue_names


def test_trainer_pins_torch_threads(compose):
    env = service_env(compose["services"]["trainer"])
    threads = {interpolate(env[v], {}) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MUR_TORCH_THREADS")}
    assert len(threads) == 1 and int(threads.pop()) >= 1


def test_environment_names_are_read_by_the_settings(compose):
    production_reads = settings_variables("base", "production")
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MUR_KLINES_DIR"} <= production_reads
    for name in DJANGO_SERVICES:
        env = service_env(compose["services"][name])
        unknown = set(env) - production_reads - PROCESS_VARIABLES
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
        assert env["DJANGO_SETTINGS_MODULE"] == "mur_site.settings.production"
        for var in PRODUCTION_REQUIRED:
            assert env.get(var), f"{name} does not set {var}"
    assert set(service_env(compose["services"]["postgres"])) <= POSTGRES_IMAGE_VARIABLES


def test_secrets_have_no_default_in_the_compose_file():
    text = COMPOSE_FILE.read_text()
    for name in SECRETS:
        uses = [m for m in _INTERPOLATION.finditer(text) if m.group(1) == name]
        assert uses, f"{name} is not taken from the environment"
        for m in uses:
            assert m.group(2) in (":?", "?"), f"{m.group(0)} must fail when unset, not default"
    with pytest.raises(AssertionError, match="DJANGO_SECRET_KEY"):
        interpolate(service_env(yaml.safe_load(text)["services"]["web"])["DJANGO_SECRET_KEY"], {})


def test_compose_environment_is_accepted_by_the_production_settings(compose):
    """The web container's variables, as compose substitutes them, load the production settings
    pointing at the compose postgres and redis services."""
    given = {
        "DJANGO_SECRET_KEY": "compose-test-key",
        "POSTGRES_PASSWORD": "compose-test-password",
        "MUR_FERNET_KEYS": FERNET_KEY,
    }
    env = {k: interpolate(v, given) for k, v in service_env(compose["services"]["web"]).items()}
    pg_env = {k: interpolate(v, given) for k, v in service_env(compose["services"]["postgres"]).items()}
    s = load_settings(env.pop("DJANGO_SETTINGS_MODULE"), **env)
    assert s["SECRET_KEY"] == "compose-test-key"
    assert s["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert s["db"]["HOST"] == "postgres"
    assert (s["db"]["NAME"], s["db"]["USER"], s["db"]["PASSWORD"]) == (
        pg_env["POSTGRES_DB"],
        pg_env["POSTGRES_USER"],
        pg_env["POSTGRES_PASSWORD"],
    )
    assert s["broker_url"].startswith("redis://redis:")
    assert s["cache"]["BACKEND"] == "core.cache.ResilientRedisCache"


def test_settings_variable_parser_matches_what_settings_read_at_runtime():
    """The regex above must not miss a read: record every variable django-environ is asked for."""
    code = """
import importlib, json, environ
seen = set()
original = environ.Env.get_value
def recording(self, var, *args, **kwargs):
    seen.add(var)
    return original(self, var, *args, **kwargs)
environ.Env.get_value = recording
for name in ("base", "local", "test", "production"):
    importlib.import_module("mur_site.settings." + name)
print(json.dumps(sorted(seen)))
"""
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "k", "DJANGO_ALLOWED_HOSTS": "localhost"}
    env["MUR_FERNET_KEYS"] = FERNET_KEY
    proc = run_python(code, env)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) == settings_variables()


def env_example_variables() -> list[str]:
    names = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            names.append(m.group(1))
    return names


def test_env_example_lists_exactly_what_settings_and_compose_read():
    listed = env_example_variables()
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    compose_only = {m.group(1) for m in _INTERPOLATION.finditer(COMPOSE_FILE.read_text())} - settings_variables()
    assert set(listed) == settings_variables() | compose_only
