"""Content-Security-Policy on every answer that has none: scripts only from this site (and the
Chart.js CDN when the pages load it from there), nothing inline, no framing.

Styles may be inline: Swagger UI and ReDoc set them from script, and admin uses style attributes;
a style cannot run code, scripts can."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=4)
def build_policy(chartjs_source: str, chartjs_cdn_url: str) -> str:
    script = ["'self'"]
    if chartjs_source == "cdn":
        script.append(chartjs_cdn_url.split("/npm/")[0])  # the CDN's origin; SRI pins the file
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],  # ReDoc parses the schema in a worker
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = build_policy(settings.CHARTJS_SOURCE, settings.CHARTJS_CDN_URL)  # read now: tests change it
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
