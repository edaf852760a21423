"""A benchmark child process running the project from a given checkout (this one or another, for
side-by-side comparisons) on a given database, with the test settings and throttling out of the way."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def django_in_checkout(tree: str, database_url: str) -> None:
    """Import the project from `tree`, set up Django on `database_url` and migrate it."""
    sys.path.insert(0, tree)
    os.chdir(tree)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mur_site.settings.test",
            "DATABASE_URL": database_url,
            "MUR_API_USER_RATE": "1000000/s",
            "MUR_KLINES_DIR": "",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def run_child(script: str, tree, database_url: str, requests: int, timeout: int) -> dict:
    """Run `script --child <tree> <database_url> <requests>` and return the JSON line it printed last."""
    import json
    import subprocess

    out = subprocess.run(
        [sys.executable, script, "--child", str(tree), database_url, str(requests)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        sys.exit(f"measuring {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def checkouts(this: Path, against: Path | None) -> dict[str, Path]:
    """{"this": this checkout} and, with --against, {"against": that one}; exits if it is not a
    checkout of the project."""
    trees = {"this": this}
    if against:
        if not (against / "manage.py").exists():
            sys.exit(f"{against} is not a checkout of the project (no manage.py)")
        trees["against"] = against.resolve()
    return trees
