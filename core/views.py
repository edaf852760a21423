"""Pages that belong to no app."""

from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse


@lru_cache(maxsize=1)
def _favicon() -> bytes:
    return Path(finders.find("favicon.svg")).read_bytes()


def favicon(request):
    """/favicon.ico, which browsers ask for whatever a page links: the site's icon."""
    response = HttpResponse(_favicon(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=86400"
    return response
