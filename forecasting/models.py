from django.db import models

from .intervals import INTERVAL_CHOICES, interval_delta


class Asset(models.Model):
    """A Binance spot pair such as BTCUSDT."""

    symbol = models.CharField(max_length=20, unique=True)
    base_asset = models.CharField(max_length=12)
    quote_asset = models.CharField(max_length=12)
    tracked = models.BooleanField(default=True, help_text="Tracked assets are refreshed on a schedule.")
    interval = models.CharField(max_length=3, choices=INTERVAL_CHOICES, default="1h")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def interval_delta(self):
        return interval_delta(self.interval)


class Candle(models.Model):
    """One closed kline. Prices are exact decimals as Binance sends them; never edited by hand."""

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="candles")
    interval = models.CharField(max_length=3, choices=INTERVAL_CHOICES)
    open_time = models.DateTimeField()
    open = models.DecimalField(max_digits=28, decimal_places=8)
    high = models.DecimalField(max_digits=28, decimal_places=8)
    low = models.DecimalField(max_digits=28, decimal_places=8)
    close = models.DecimalField(max_digits=28, decimal_places=8)
    volume = models.DecimalField(max_digits=32, decimal_places=8)
    close_time = models.DateTimeField()

    class Meta:
        ordering = ["asset", "interval", "open_time"]
        constraints = [
            # Also the index for range reads: (asset, interval, open_time BETWEEN ..).
            models.UniqueConstraint(
                fields=["asset", "interval", "open_time"], name="candle_unique_asset_interval_open_time"
            ),
            models.CheckConstraint(
                condition=models.Q(low__gt=0)
                & models.Q(low__lte=models.F("high"))
                & models.Q(volume__gte=0),
                name="candle_prices_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"
