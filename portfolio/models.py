from decimal import Decimal

from django.conf import settings
from django.db import models

from forecasting.models import Asset


class Portfolio(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portfolios")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="portfolio_unique_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Transaction(models.Model):
    """One movement of an asset in a portfolio. Prices and fees are in the asset's quote currency."""

    class Kind(models.TextChoices):
        BUY = "buy", "Buy"
        SELL = "sell", "Sell"
        REWARD = "reward", "Staking or interest reward"
        TRANSFER_IN = "transfer_in", "Transfer in"
        TRANSFER_OUT = "transfer_out", "Transfer out"
        FEE = "fee", "Fee paid in the asset"

    INBOUND = (Kind.BUY, Kind.REWARD, Kind.TRANSFER_IN)
    OUTBOUND = (Kind.SELL, Kind.TRANSFER_OUT, Kind.FEE)

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="transactions")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    quantity = models.DecimalField(max_digits=28, decimal_places=8)
    unit_price = models.DecimalField(
        max_digits=28,
        decimal_places=8,
        default=Decimal("0"),
        help_text="Price of one unit in the quote currency (e.g. USDT).",
    )
    fee = models.DecimalField(
        max_digits=28, decimal_places=8, default=Decimal("0"), help_text="Fee in the quote currency."
    )
    executed_at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True)
    # Set by the add form (a key per form shown): a second submission of the same form, from a
    # double click or a browser retry, finds this row instead of adding another.
    submission_key = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-executed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(quantity__gt=0), name="transaction_quantity_positive"),
            models.CheckConstraint(condition=models.Q(unit_price__gte=0), name="transaction_price_not_negative"),
            models.CheckConstraint(condition=models.Q(fee__gte=0), name="transaction_fee_not_negative"),
            models.UniqueConstraint(
                fields=["portfolio", "submission_key"],
                condition=~models.Q(submission_key=""),
                name="transaction_unique_submission",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "executed_at"], name="transaction_portfolio_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} {self.asset_id} at {self.unit_price}"

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.kind in self.INBOUND else -self.quantity
