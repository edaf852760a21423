"""The layout rules of docs/ARCHITECTURE.md that import-linter (pyproject.toml) cannot check: what
mur_site holds, one home for millisecond times, and tests that share fixtures without importing each
other's conftest or sleeping to make time pass."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("mur_site", "accounts", "core", "forecasting", "portfolio")


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


def test_mur_site_holds_the_configuration_only():
    """Settings, root URLs (the API's among them), the Celery app, WSGI and ASGI: a feature added
    here instead of an app would fail this."""
    files = {str(p.relative_to(ROOT / "mur_site")) for p in python_files("mur_site")}
    assert files == {
        "__init__.py",
        "api_router.py",
        "asgi.py",
        "celery_app.py",
        "urls.py",
        "wsgi.py",
        "settings/__init__.py",
        "settings/base.py",
        "settings/local.py",
        "settings/production.py",
        "settings/test.py",
    }


MS_BY_HAND = re.compile(r"timestamp\(\)\s*\*\s*1000|fromtimestamp\([^)]*/\s*1000")


def test_milliseconds_are_converted_in_core_times_only():
    by_hand = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in python_files(*PRODUCT)
        if p != ROOT / "core" / "times.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if MS_BY_HAND.search(line)
    ]
    assert by_hand == [], "use core.times.datetime_to_ms / ms_to_datetime"


def test_no_conftest_imports_another():
    """Shared fixtures are plugins registered once in tests/conftest.py; a conftest importing
    another folder's conftest registers its fixtures twice."""
    importing = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("conftest.py")
        if re.search(r"^\s*(from|import)\s+\S*conftest\b", p.read_text(), re.M)
    ]
    assert importing == []


# Real waits allowed, each on something outside the test's control: a helper polling a real
# process or service until it is ready, and the fake Binance server holding an answer past the
# HTTP client's real socket timeout.
REAL_WAITS = {"tests/support/processes.py": 1, "tests/fakes/binance_server.py": 1}


def test_tests_sleep_only_to_wait_for_real_processes():
    """Time that must pass in a test passes on the controllable clock (the `clock` fixture), and a
    race is held open by waiting for the other side, not for a while."""
    sleeps = {}
    for p in (ROOT / "tests").rglob("*.py"):
        count = len(re.findall(r"\b(?:time\.)?sleep\(", p.read_text()))
        if count:
            sleeps[str(p.relative_to(ROOT))] = count
    sleeps.pop("tests/test_layout.py", None)
    assert sleeps == REAL_WAITS


def selector_modules() -> list[str]:
    import importlib
    import pkgutil

    forecasting = importlib.import_module("forecasting.selectors")
    return [
        "accounts.selectors",
        "portfolio.selectors",
        *(f"forecasting.selectors.{m.name}" for m in pkgutil.iter_modules(forecasting.__path__)),
    ]


# Pure helpers the selector modules share with their callers: no query, one obvious argument.
SELECTOR_HELPERS = {"median_index", "any_of", "crontab_next"}


def test_selectors_take_keyword_arguments_only():
    """`portfolio_summary(portfolio=...)`, as docs/ARCHITECTURE.md says: a call reads the same
    wherever it is, and an argument added later cannot shift the others."""
    import importlib
    import inspect

    positional = []
    for name in selector_modules():
        module = importlib.import_module(name)
        for attr, fn in vars(module).items():
            if attr.startswith("_") or attr in SELECTOR_HELPERS or not inspect.isfunction(fn):
                continue
            if fn.__module__ != name:
                continue
            kinds = {p.kind for p in inspect.signature(fn).parameters.values()}
            if kinds - {inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD}:
                positional.append(f"{name}.{attr}")
    assert positional == []
