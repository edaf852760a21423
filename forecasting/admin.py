from django.contrib import admin

from .models import Asset, Candle


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "base_asset", "quote_asset", "interval", "tracked", "created_at")
    list_filter = ("tracked", "interval", "quote_asset")
    search_fields = ("symbol", "base_asset")
    readonly_fields = ("created_at",)


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    """Candles come only from Binance or kline files: listed and filtered, never edited by hand."""

    list_display = ("asset", "interval", "open_time", "open", "high", "low", "close", "volume")
    list_filter = ("asset", "interval")
    date_hierarchy = "open_time"
    list_select_related = ("asset",)
    show_full_result_count = False  # avoids a COUNT(*) over every candle on each page
    ordering = ("-open_time",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
