"""API views that belong to no app."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class NotFoundApi(APIView):
    """Any other path under /api/v1/: a 404 with the error body instead of Django's HTML page."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        hint = "see /api/docs/"
        if not request.path.endswith("/"):
            try:
                match = resolve(request.path + "/")
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "view_class", None) is not NotFoundApi:
                hint = f"did you mean {request.path}/ ?"  # the API's paths end with a slash
        raise exceptions.NotFound(f"No API endpoint at {request.path}; {hint}")


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# An empty image in its place: the badge keeps its link, and the page asks no third party.
BLANK_SVG = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E"


@lru_cache(maxsize=1)
def _redoc_bundle() -> bytes:
    path = Path(finders.find("drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"))
    return path.read_bytes().replace(REDOC_LOGO.encode(), BLANK_SVG.encode())


@csrf_exempt  # read-only, like the API's documentation views: anything but GET is a 405
@require_safe
def redoc_bundle(request):
    """ReDoc's bundle from the sidecar package, except that its "by Redocly" badge no longer loads
    a logo from cdn.redoc.ly, which the Content-Security-Policy (img-src 'self') would block."""
    response = HttpResponse(_redoc_bundle(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=86400"
    return response
