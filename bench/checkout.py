"""A benchmark child process running the project from a given checkout (this one or another, for
side-by-side comparisons) on a given database, with the test settings and throttling out of the way."""

from __future__ import annotations

import os
import sys


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
