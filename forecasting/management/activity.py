"""What `runall` tells the person at the terminal while the site runs: trainings starting, their
progress, the gate's verdict and new forecasts, one short line each, instead of worker logs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from ..models import Forecast, ModelVersion, TrainingRun

# At most one progress line per run this often: enough to see it move, not a wall of epochs.
PROGRESS_EVERY = timedelta(seconds=10)


class ActivityFeed:
    """Polls the database; `lines()` returns what happened since the previous call."""

    def __init__(self, since: datetime | None = None):
        self.since = since or timezone.now()
        self.runs: dict[int, tuple[str, int]] = {}  # id -> (status, epoch) last told
        self.progress_told: dict[int, datetime] = {}
        self.versions_told: set[int] = set()
        self.forecasts_after = self.since

    def lines(self, now: datetime | None = None) -> list[str]:
        now = now or timezone.now()
        out = []
        runs = TrainingRun.objects.filter(created_at__gte=self.since) | TrainingRun.objects.filter(
            status__in=(TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
        )
        for run in runs.select_related("asset").order_by("created_at", "id"):
            told = self.runs.get(run.id)
            symbol = run.asset.symbol
            if told is None and run.status == TrainingRun.Status.QUEUED:
                out.append(f"{symbol}: training queued ({run.triggered_by}).")
            elif run.status == TrainingRun.Status.RUNNING:
                if told is None or told[0] != TrainingRun.Status.RUNNING:
                    out.append(f"{symbol}: training started.")
                    self.progress_told[run.id] = now
                elif run.epoch != told[1] and now - self.progress_told.get(run.id, now) >= PROGRESS_EVERY:
                    out.append(f"{symbol}: training, {run.progress_label}.")
                    self.progress_told[run.id] = now
            elif run.status == TrainingRun.Status.FAILED and (told is None or told[0] != run.status):
                out.append(f"{symbol}: training failed: {run.error[:200]}")
            self.runs[run.id] = (run.status, run.epoch)
        versions = ModelVersion.objects.filter(created_at__gte=self.since).exclude(id__in=self.versions_told)
        for version in versions.select_related("asset").order_by("id"):
            self.versions_told.add(version.id)
            verdict = (
                "promoted, it serves the forecasts now"
                if version.status == ModelVersion.Status.CHAMPION
                else "not promoted, the statistical band keeps serving"
            )
            out.append(
                f"{version.asset.symbol}: model v{version.version} trained in {version.train_seconds:.1f} s: {verdict}."
            )
        forecasts = Forecast.objects.filter(made_at__gt=self.forecasts_after).select_related("asset")
        for forecast in forecasts.order_by("made_at", "id"):
            self.forecasts_after = max(self.forecasts_after, forecast.made_at)
            out.append(
                f"{forecast.asset.symbol}: new forecast by {forecast.source} from the "
                f"{forecast.origin_time:%Y-%m-%d %H:%M} UTC candle."
            )
        return out
