from django.urls import path

from . import views

app_name = "forecasting"
urlpatterns = [
    path("", views.asset_list, name="asset-list"),
    path("<str:symbol>/", views.asset_detail, name="asset-detail"),
    path("<str:symbol>/prices.json", views.asset_prices_json, name="asset-prices"),
    path("<str:symbol>/training.json", views.asset_training_json, name="asset-training"),
]
