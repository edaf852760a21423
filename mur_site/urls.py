from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.forms import AdminSignInForm
from accounts.views import home
from core.api.views import redoc_bundle
from core.health import healthz
from core.views import favicon

# The admin's sign-in counts failures with the site's: one limit, whichever form is used.
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", favicon),
    path("accounts/", include("accounts.urls")),
    path("assets/", include("forecasting.urls")),
    path("portfolios/", include("portfolio.urls")),
    path("admin/", admin.site.urls),
    # The REST API and its OpenAPI schema (Swagger UI and ReDoc load from our own static files).
    path("api/v1/", include("mur_site.api_router", namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up code as a script file: no inline script, so the
    # page works under the Content-Security-Policy.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/redoc-dist/bundles/redoc.standalone.js", redoc_bundle, name="api-redoc-bundle"),
]
