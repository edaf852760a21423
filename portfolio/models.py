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
    # Set by an exchange sync: the exchange's own id of the fill, deposit or withdrawal (and which
    # leg of it), so a second sync finds the row instead of adding another.
    external_id = models.CharField(max_length=100, blank=True, editable=False)
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
            models.UniqueConstraint(
                fields=["portfolio", "external_id"],
                condition=~models.Q(external_id=""),
                name="transaction_unique_external_id",
            ),
        ]
        indexes = [models.Index(fields=["portfolio", "executed_at"], name="transaction_portfolio_time")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} {self.asset_id} at {self.unit_price}"

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.kind in self.INBOUND else -self.quantity


class ExactDecimalField(models.TextField):
    """A Decimal kept exactly as the holdings engine computed it. The engine's divisions give up to
    28 significant digits at any scale, which a fixed-scale numeric column would round; the stored
    state must equal a replay of the history to the last digit."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else Decimal(value)

    def to_python(self, value):
        return value if value is None or isinstance(value, Decimal) else Decimal(value)

    def get_prep_value(self, value):
        return None if value is None else str(value)


class PositionState(models.Model):
    """What the holdings engine gives for one asset of a portfolio after its whole history, kept up
    to date by the services in the same database transaction as every change to that history, so
    the portfolio page reads it instead of replaying every transaction."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="position_states")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    quantity = ExactDecimalField()
    cost = ExactDecimalField()
    realized = ExactDecimalField()
    invested = ExactDecimalField()
    withdrawn = ExactDecimalField()
    rewards = ExactDecimalField()
    fees = ExactDecimalField()
    first_at = models.DateTimeField()
    transactions = models.PositiveIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["portfolio", "asset"], name="position_unique_asset")]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.asset_id}"


class DailyFlow(models.Model):
    """One asset's transactions of one day in a portfolio, summed: what value over time and the
    period returns need, without reading every transaction. A day ends at 23:59:59.999 UTC, the
    moment of the daily value point (valuation.flow_day). Rows at exactly that moment are summed
    apart (`closing`): a period starting at that point counts them, and not the day's earlier ones."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="daily_flows")
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    closing = models.BooleanField()
    quantity = ExactDecimalField()  # net change of the quantity held
    flow = ExactDecimalField()  # net money put in (valuation's flow)
    flow_time = ExactDecimalField()  # sum of flow × its time in µs since the epoch (time-weighting)
    transactions = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "asset", "day", "closing"], name="dailyflow_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.asset_id} on {self.day}"


class ExchangeConnection(models.Model):
    """A Binance account whose trades, deposits and withdrawals are imported into a portfolio,
    through a read-only API key. The key and secret are stored encrypted (portfolio.exchange.crypto);
    only the key's last four characters are ever shown."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"  # the key can trade, withdraw or transfer: no sync
        FAILING = "error", "Last sync failed"

    class SyncStatus(models.TextChoices):
        IDLE = "idle", "Idle"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="exchange_connections")
    exchange = models.CharField(max_length=20, default="binance", editable=False)
    label = models.CharField(max_length=100, blank=True)
    key_last4 = models.CharField(max_length=4, editable=False)
    # sha256 of the API key: the same key is connected once per portfolio, without storing it in clear.
    key_hash = models.CharField(max_length=64, editable=False)
    api_key_encrypted = models.TextField(editable=False)
    api_secret_encrypted = models.TextField(editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    # What the last sync said: a summary, or the error and what to do about it.
    message = models.TextField(blank=True)
    sync_status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.IDLE)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    # Refreshed as a sync progresses: a running sync whose heartbeat stopped lost its worker.
    sync_heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_note = models.CharField(max_length=200, blank=True)
    # Where each stream stopped: "trades:<SYMBOL>" the next trade id, "deposits"/"withdrawals" the
    # epoch ms to read from. Written in the transaction of the page it follows.
    cursors = models.JSONField(default=dict, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_good_sync_at = models.DateTimeField(null=True, blank=True)
    imported = models.PositiveIntegerField(default=0)  # transactions written by every sync
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "key_hash"], name="exchangeconnection_unique_key"),
        ]

    def __str__(self) -> str:
        return f"Binance …{self.key_last4}"

    @property
    def masked_key(self) -> str:
        return f"…{self.key_last4}"
