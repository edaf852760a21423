"""API views that belong to no app."""

from __future__ import annotations

from django.urls import Resolver404, resolve
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
