"""The REST API's URLs: every app's endpoints under /api/v1/."""

from django.urls import include, path, re_path
from rest_framework.routers import DefaultRouter

from accounts.apis import ApiTokenViewSet, PingApi
from core.api.views import NotFoundApi
from forecasting.apis import (
    AssetCandleViewSet,
    AssetForecastViewSet,
    AssetModelVersionViewSet,
    AssetTrainingRunViewSet,
    AssetViewSet,
    ModelVersionViewSet,
    TrainingRunViewSet,
)
from forecasting.models import SYMBOL_URL_REGEX
from portfolio.apis import ExchangeConnectionViewSet, PortfolioViewSet, TransactionViewSet

router = DefaultRouter()
router.register("assets", AssetViewSet, basename="asset")
SYMBOL = rf"assets/(?P<symbol>{SYMBOL_URL_REGEX})"
router.register(SYMBOL + "/candles", AssetCandleViewSet, basename="asset-candle")
router.register(SYMBOL + "/forecasts", AssetForecastViewSet, basename="asset-forecast")
router.register(SYMBOL + "/model-versions", AssetModelVersionViewSet, basename="asset-model-version")
router.register(SYMBOL + "/training-runs", AssetTrainingRunViewSet, basename="asset-training-run")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("portfolios", PortfolioViewSet, basename="portfolio")
router.register(r"portfolios/(?P<portfolio_pk>\d+)/transactions", TransactionViewSet, basename="transaction")
router.register(
    r"portfolios/(?P<portfolio_pk>\d+)/connections", ExchangeConnectionViewSet, basename="exchange-connection"
)
router.register("tokens", ApiTokenViewSet, basename="token")

app_name = "api"
urlpatterns = [
    path("ping/", PingApi.as_view(), name="ping"),
    path("", include(router.urls)),
    re_path(r"", NotFoundApi.as_view(), name="not-found"),  # last: unknown paths get the error body too
]
