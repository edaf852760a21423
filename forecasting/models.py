import re

from django.conf import settings
from django.db import models

from .intervals import INTERVAL_CHOICES, interval_delta

# A Binance symbol: 2 to 20 upper-case letters and digits. URLs take either case (upper-cased
# before the lookup); anything else in a URL is no asset, before any query.
SYMBOL_RE = re.compile(r"[A-Z0-9]{2,20}")
SYMBOL_URL_REGEX = "[A-Za-z0-9]{2,20}"


class Asset(models.Model):
    """A Binance spot pair such as BTCUSDT."""

    symbol = models.CharField(max_length=20, unique=True)
    base_asset = models.CharField(max_length=12)
    quote_asset = models.CharField(max_length=12)
    tracked = models.BooleanField(default=True, help_text="Tracked assets are refreshed on a schedule.")
    interval = models.CharField(max_length=3, choices=INTERVAL_CHOICES, default="1h")
    # The signed-in person whose transaction started the tracking (none: staff, a command, setup):
    # what counts against MAX_TRACKED_PER_USER.
    tracked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
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
                condition=models.Q(low__gt=0) & models.Q(low__lte=models.F("high")) & models.Q(volume__gte=0),
                name="candle_prices_sane",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset.symbol} {self.interval} {self.open_time:%Y-%m-%d %H:%M}"


class TrainingRun(models.Model):
    """One attempt to train a model for an asset, with live progress."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="training_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    triggered_by = models.CharField(max_length=100, help_text='"schedule", "command", or who asked for it.')
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Updated while training; a stale one means the worker died."
    )
    epoch = models.PositiveIntegerField(default=0)
    max_epochs = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The database itself refuses a second running training of the same asset.
            models.UniqueConstraint(
                fields=["asset"], condition=models.Q(status="running"), name="training_run_one_running_per_asset"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.asset.symbol} run {self.pk} ({self.status})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def progress_label(self) -> str:
        """Progress in words. Early stopping ends a good run before max_epochs: it says finished."""
        of = f"{self.epoch} of {self.max_epochs}"
        if self.status == self.Status.SUCCEEDED:
            if self.max_epochs and self.epoch < self.max_epochs:
                return f"finished after {of} epochs (stopped early)"
            return f"finished after {self.max_epochs} epochs" if self.max_epochs else "finished"
        if self.status == self.Status.FAILED:
            return f"failed at epoch {of}" if self.max_epochs else "failed"
        return f"epoch {of}" if self.max_epochs else "waiting"

    def triggered_by_for(self, viewer) -> str:
        """Who started the run, as `viewer` may see it: staff see the record ("admin:alice"),
        everyone else "schedule", "you" or "staff", never a staff member's username."""
        if viewer is not None and viewer.is_staff:
            return self.triggered_by
        if ":" not in self.triggered_by:  # a source, not a person: "schedule", "first candles", "command"
            return self.triggered_by
        _, _, who = self.triggered_by.partition(":")
        if viewer is not None and who and who == viewer.get_username():
            return "you"
        return "staff"


def artifact_path(instance, filename):
    return f"models/{instance.asset.symbol}/{filename}"


class ModelVersion(models.Model):
    """A trained model of an asset, with its backtest against the baselines and its artifact."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        CHAMPION = "champion"
        REJECTED = "rejected"
        RETIRED = "retired"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="model_versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE, db_index=True)
    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_version"
    )
    hyperparameters = models.JSONField(default=dict)
    data_start = models.DateTimeField(help_text="Open time of the first candle trained on.")
    data_end = models.DateTimeField(help_text="Open time of the last candle read (backtest included).")
    data_candles = models.PositiveIntegerField(default=0)
    data_digest = models.CharField(max_length=64, help_text="sha256 of the candles used.")
    metrics = models.JSONField(default=dict, help_text="Backtest metrics of this model.")
    baseline_metrics = models.JSONField(
        default=dict,
        help_text="seasonal_band (the statistical baseline), naive, drift and naive_band on the same "
        "origins; older versions lack seasonal_band.",
    )
    backtest = models.JSONField(default=dict, help_text="Backtest window and origins.")
    decision = models.TextField(blank=True, help_text="Why the promotion gate promoted or rejected it.")
    artifact = models.FileField(upload_to=artifact_path, max_length=300)
    artifact_size = models.PositiveBigIntegerField(default=0)
    artifact_sha256 = models.CharField(max_length=64)
    artifact_broken = models.TextField(blank=True, help_text="Set when the artifact failed its checksum.")
    replaced = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The champion this version replaced; a roll-back restores it.",
    )
    withdrawn = models.BooleanField(default=False, help_text="Retired by staff: never restored automatically.")
    train_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asset", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "version"], name="model_version_unique_per_asset"),
            models.UniqueConstraint(
                fields=["asset"], condition=models.Q(status="champion"), name="model_version_one_champion_per_asset"
            ),
        ]

    # The promotion gate's decision starts with its verdict. Staff may promote, roll back or retire
    # a version afterwards, so the verdict is history and never stands in for the status.
    GATE_PASSED = "Promoted: "
    GATE_REJECTED = "Rejected: "

    def __str__(self) -> str:
        return f"{self.asset.symbol} v{self.version} ({self.status})"

    @property
    def gate_verdict(self) -> str:
        """The gate's verdict: "passed", "rejected", or "" when it has not judged the version."""
        if self.decision.startswith(self.GATE_PASSED):
            return "passed"
        if self.decision.startswith(self.GATE_REJECTED):
            return "rejected"
        return ""

    @property
    def gate_reasons(self) -> str:
        """The decision without its verdict: the gate's reasons."""
        for prefix in (self.GATE_PASSED, self.GATE_REJECTED):
            if self.decision.startswith(prefix):
                return self.decision[len(prefix) :]
        return self.decision

    @property
    def status_text(self) -> str:
        """The current status in words, with since when (UTC), to follow "is"."""
        if self.status == self.Status.CHAMPION:
            return f"champion since {self.promoted_at:%Y-%m-%d %H:%M} UTC" if self.promoted_at else "champion"
        if self.status == self.Status.RETIRED:
            details = [f"since {self.retired_at:%Y-%m-%d %H:%M} UTC"] if self.retired_at else []
            if self.withdrawn:
                details.append("withdrawn by staff")
            if self.artifact_broken:
                details.append("its artifact is broken")
            return "retired" + (f" ({', '.join(details)})" if details else "")
        if self.status == self.Status.REJECTED:
            return "rejected by the promotion gate"
        return "a candidate awaiting the promotion gate"


class Forecast(models.Model):
    """A forecast from the newest candle: per step, the target time and the quantile prices.

    `kind` says whether a model version made it or the statistical baseline (no champion yet).
    """

    class Kind(models.TextChoices):
        MODEL = "model"
        BASELINE = "baseline", "statistical baseline (seasonal band)"

    # Sources of baseline forecasts: the seasonal band, or the naive band while the history is too
    # short to fit it.
    SEASONAL_SOURCE = "baseline"
    NAIVE_SOURCE = "naive-band"

    asset = models.ForeignKey(Asset, on_delete=models.CASCADE, related_name="forecasts")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="forecasts"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    source = models.CharField(
        max_length=40,
        help_text='"baseline" (the seasonal band), "naive-band" (too little '
        'history for it) or "v<version>"; unique per origin.',
    )
    origin_time = models.DateTimeField(help_text="Open time of the newest candle the forecast saw.")
    last_close = models.DecimalField(max_digits=28, decimal_places=8)
    quantiles = models.JSONField(help_text="Quantile levels, e.g. [0.1, 0.5, 0.9].")
    steps = models.JSONField(help_text='[{"target_time": ISO time, "values": [price per quantile]}, ...]')
    made_at = models.DateTimeField(auto_now_add=True)
    stale = models.BooleanField(default=False, help_text="Made by a model older than the allowed maximum age.")

    class Meta:
        ordering = ["asset", "-origin_time"]
        constraints = [
            models.UniqueConstraint(fields=["asset", "origin_time", "source"], name="forecast_unique_per_origin"),
        ]
        indexes = [models.Index(fields=["asset", "-origin_time"], name="forecast_asset_latest")]

    def __str__(self) -> str:
        return f"{self.asset.symbol} {self.source} from {self.origin_time:%Y-%m-%d %H:%M}"


class BacktestTrack(models.Model):
    """Per backtest origin of a version, the band 1, 6 and 24 steps ahead of the model and of the
    statistical baseline, and the close that followed: the asset page's past forecasts until live
    ones have resolved. Tens of KB, so kept out of ModelVersion, whose rows every list reads."""

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="backtest_track")
    data = models.JSONField()

    def __str__(self) -> str:
        return f"backtest track of {self.version_id}"


class StoredFile(models.Model):
    """A file kept in the database (model artifacts, by default): every process of a deployment
    reaches PostgreSQL already, so a trainer on one machine hands its models to forecast workers on
    others with no shared disk. Artifacts are tens to hundreds of KB."""

    name = models.CharField(max_length=300, unique=True)
    data = models.BinaryField()
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
