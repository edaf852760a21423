from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect

from . import services
from .exchange.services import connection_delete, connection_sync_request
from .models import ExchangeConnection, Portfolio, Transaction


class WrittenByServices(admin.ModelAdmin):
    """Rows only the project's services write: no add or change form, and no bulk delete (it would
    skip the service; a single deletion goes through `delete_model`)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "owner__username"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]


@admin.register(Transaction)
class TransactionAdmin(WrittenByServices):
    """Read-only, and a deletion goes through the service: every change must keep the history
    valid (no sell of more than was held), or the portfolio could no longer be computed.
    Deleting a whole portfolio or user still takes its transactions with it."""

    list_display = ["executed_at", "portfolio", "asset", "kind", "quantity", "unit_price", "fee"]
    list_filter = ["kind", "asset"]
    search_fields = ["portfolio__name", "portfolio__owner__username", "asset__symbol", "note"]
    list_select_related = ["portfolio", "asset"]
    date_hierarchy = "executed_at"

    def delete_model(self, request, obj):
        services.transaction_delete(tx=obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return redirect("admin:portfolio_transaction_change", object_id)


@admin.register(ExchangeConnection)
class ExchangeConnectionAdmin(WrittenByServices):
    """State and progress only: the encrypted key and secret are never among the fields, and a
    connection is added by its owner (Binance checks the key first), never here."""

    list_display = ["__str__", "portfolio", "state", "sync_status", "last_good_sync_at", "imported"]
    list_filter = ["state", "sync_status"]
    search_fields = ["portfolio__name", "portfolio__owner__username", "key_last4", "label"]
    list_select_related = ["portfolio"]
    fields = [
        "portfolio",
        "label",
        "key_last4",
        "state",
        "message",
        "sync_status",
        "progress_note",
        "progress_done",
        "progress_total",
        "last_sync_at",
        "last_good_sync_at",
        "imported",
        "cursors",
        "created_at",
    ]
    readonly_fields = fields
    actions = ["sync_now"]

    def delete_model(self, request, obj):
        connection_delete(connection=obj)

    @admin.action(description="Sync now", permissions=["view"])
    def sync_now(self, request, queryset):
        queued = sum(connection_sync_request(connection=c) for c in queryset)
        self.message_user(request, f"{queued} sync(s) queued; the others were queued or running already.")
