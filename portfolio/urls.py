from django.urls import path

from . import views

app_name = "portfolio"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("price-at/", views.price_at, name="price-at"),
    path("<int:pk>/", views.portfolio_detail, name="detail"),
    path("<int:pk>/edit/", views.portfolio_edit, name="edit"),
    path("<int:pk>/delete/", views.portfolio_delete, name="delete"),
    path("<int:pk>/transactions/add/", views.transaction_add, name="transaction-add"),
    path("<int:pk>/transactions/<int:tx_id>/edit/", views.transaction_edit, name="transaction-edit"),
    path("<int:pk>/transactions/<int:tx_id>/delete/", views.transaction_delete, name="transaction-delete"),
    path("<int:pk>/import/", views.transactions_import, name="import"),
    path("<int:pk>/export.csv", views.transactions_export, name="export"),
    path("<int:pk>/connections/add/", views.connection_add, name="connection-add"),
    path("<int:pk>/connections/<int:connection_id>/sync/", views.connection_sync, name="connection-sync"),
    path("<int:pk>/connections/<int:connection_id>/delete/", views.connection_delete, name="connection-delete"),
]
