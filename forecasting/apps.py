from django.apps import AppConfig


class ForecastingConfig(AppConfig):
    name = "forecasting"
    verbose_name = "Market data and forecasts"

    def ready(self):
        from core import health

        from .health import candles_check

        health.register("candles", candles_check)
