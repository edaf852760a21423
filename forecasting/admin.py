from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ObjectDoesNotExist
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince

from core.formatting import percent_text, significant
from core.times import ms_to_datetime

from .metrics import metric_headings, metric_rows
from .models import Asset, Candle, Forecast, ModelVersion, TrainingRun
from .permissions import can_change_champion, can_retrain
from .services.model_versions import (
    Handover,
    ModelVersionError,
    assets_rollback,
    assets_rollback_plan,
    model_versions_promote,
    model_versions_retire,
    model_versions_retire_plan,
)
from .services.schedules import asset_schedules, asset_schedules_ensure
from .services.training_runs import ACTIVE as ACTIVE_RUN_STATUSES
from .services.training_runs import training_runs_request

AUTO_REFRESH_SECONDS = 5


# --- formatting -----------------------------------------------------------------------------------


def _signed_pct(value: float) -> str:
    # Admin's metric comparisons: one decimal, "+" or a typographic minus.
    return percent_text(value, signed=True, places=1).replace("-", "\u2212")


def _vs(value, reference) -> str:
    """A metric and how far it is from its reference, e.g. "277.8 (−0.6%)"."""
    if value is None:
        return "—"
    if not reference:
        return significant(value)
    return f"{significant(value)} ({_signed_pct((value / reference - 1) * 100)})"


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    return _duration(timedelta(seconds=value))


def _duration(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"


def _changelist_url(model, **filters) -> str:
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{query}" if query else url


def _change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _link(obj, text=None):
    return format_html('<a href="{}">{}</a>', _change_url(obj), text or obj)


def _join(items) -> str:
    return format_html_join(", ", "{}", ((item,) for item in items))


# --- assets ---------------------------------------------------------------------------------------


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ("symbol", "base_asset", "quote_asset", "interval", "tracked", "created_at")
    list_filter = ("tracked", "interval", "quote_asset")
    search_fields = ("symbol", "base_asset")
    readonly_fields = ("created_at", "schedules", "training")
    actions = ("retrain_now", "rollback_champion")

    def get_readonly_fields(self, request, obj=None):
        # Candles, schedules and models belong to one interval: it is chosen when tracking starts.
        extra = ("symbol", "interval") if obj is not None else ()
        return extra + tuple(super().get_readonly_fields(request, obj))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # The schedules' enabled flag follows the tracked flag.
        asset_schedules_ensure(asset=obj)

    def has_retrain_permission(self, request):
        return can_retrain(request.user)

    def has_rollback_permission(self, request):
        return can_change_champion(request.user)

    @admin.display(description="schedules")
    def schedules(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        tasks = list(asset_schedules(obj).select_related("crontab", "interval", "solar", "clocked").order_by("name"))
        if not tasks:
            return "No schedules: tracking the asset (track_asset) creates them."
        rows = []
        for task in tasks:
            # Staff may have swapped the crontab for another kind of schedule.
            schedule = task.crontab or task.interval or task.solar or task.clocked
            when = task.crontab.human_readable if task.crontab else str(schedule or "no schedule")
            state = "enabled" if task.enabled else "disabled"
            last = f"last run {timesince(task.last_run_at)} ago" if task.last_run_at else "never run"
            rows.append((_change_url(task), task.name, when, task.queue or "default queue", state, last))
        return format_html(
            '<ul style="margin:0;padding-left:1.2em">{}</ul>',
            format_html_join("", '<li><a href="{}">{}</a>: {} · {} · {} · {}</li>', rows),
        )

    @admin.display(description="training")
    def training(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        runs = obj.training_runs.count()
        latest = obj.training_runs.order_by("-created_at").first()
        versions = obj.model_versions.count()
        champion = obj.model_versions.filter(status=ModelVersion.Status.CHAMPION).first()
        parts = [
            format_html(
                '<a href="{}">{} training run{}</a>{}',
                _changelist_url(TrainingRun, asset__id__exact=obj.pk),
                runs,
                "" if runs == 1 else "s",
                format_html(" (latest: {})", _link(latest, latest.status)) if latest else "",
            ),
            format_html(
                '<a href="{}">{} model version{}</a>',
                _changelist_url(ModelVersion, asset__id__exact=obj.pk),
                versions,
                "" if versions == 1 else "s",
            ),
            format_html("champion: {}", _link(champion, f"v{champion.version}"))
            if champion
            else "no champion: the statistical baseline serves",
        ]
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts))

    @admin.action(description="Retrain now", permissions=["retrain"])
    def retrain_now(self, request, queryset):
        done = training_runs_request(assets=queryset.order_by("symbol"), triggered_by=f"admin:{request.user.username}")
        if done.queued:
            queued = (_link(run, f"{run.asset.symbol} (run {run.id})") for run in done.queued)
            self.message_user(request, format_html("Queued training for {}.", _join(queued)), messages.SUCCESS)
        if done.busy:
            busy = (
                _link(run, f"{run.asset.symbol} (run {run.id}, {run.status}, {run.progress_label})")
                for run in done.busy
            )
            self.message_user(
                request, format_html("Already queued or running, not queued again: {}.", _join(busy)), messages.WARNING
            )
        if done.refused is not None:
            self.message_user(request, str(done.refused), messages.ERROR)

    @admin.action(description="Roll back to previous champion", permissions=["rollback"])
    def rollback_champion(self, request, queryset):
        return _rollback(self, request, queryset, list(queryset.order_by("symbol")))


# --- roll back and retire: ask first --------------------------------------------------------------


def _confirmed(request) -> bool:
    return request.POST.get("post") == "yes"


def _confirmation(
    model_admin, request, queryset, *, action: str, title: str, confirm_label: str, handovers, retiring=()
):
    """The page between choosing the action and doing it, like Django's delete confirmation."""
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": opts,
        "queryset": queryset,
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "handovers": handovers,
        "retiring": retiring,
        "any_to_baseline": any(h.serves is None for h in handovers),
        "confirm_label": confirm_label,
        "cancel_url": request.get_full_path(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/forecasting/champion_change_confirmation.html", context)


def _handover_done(h: Handover):
    if h.serves is None:
        return format_html("{}: v{} retired, the statistical baseline band serves", h.asset.symbol, h.stops.version)
    again = _link(h.serves, f"v{h.serves.version}")
    return format_html("{}: v{} retired, {} is champion again", h.asset.symbol, h.stops.version, again)


def _rollback(model_admin, request, queryset, assets: list[Asset]):
    try:
        plan = assets_rollback_plan(assets=assets)
    except ModelVersionError as exc:
        model_admin.message_user(request, f"{exc} Nothing was changed.", messages.ERROR)
        return None
    if not _confirmed(request):
        return _confirmation(
            model_admin,
            request,
            queryset,
            action="rollback_champion",
            title="Roll back to the previous champion?",
            confirm_label="Yes, roll back",
            handovers=plan,
        )
    try:
        done = assets_rollback(assets=assets, confirmed=request.POST.getlist("handover"))
    except ModelVersionError as exc:
        model_admin.message_user(request, f"{exc} Nothing was changed.", messages.ERROR)
        return None
    summary = format_html_join("; ", "{}", ((_handover_done(h),) for h in done))
    model_admin.message_user(request, format_html("Rolled back {}.", summary), messages.SUCCESS)
    return None


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the system (imports, training, forecasting): staff look, and act through actions."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Candle)
class CandleAdmin(ReadOnlyAdmin):
    """Candles come only from Binance or kline files: listed and filtered, never edited by hand."""

    list_display = ("asset", "interval", "open_time", "open", "high", "low", "close", "volume")
    list_filter = ("asset", "interval")
    date_hierarchy = "open_time"
    list_select_related = ("asset",)
    show_full_result_count = False  # avoids a COUNT(*) over every candle on each page
    ordering = ("-open_time",)


# --- training runs --------------------------------------------------------------------------------


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    # The progress column says the status too (finished, failed, running, queued), which keeps the
    # error column on a 1280 px screen beside the filters.
    list_display = ("id", "asset", "triggered_by", "progress", "started", "run_duration", "error_snippet")
    list_display_links = ("id", "asset")
    list_filter = ("status", "asset")
    list_select_related = ("asset",)
    search_fields = ("asset__symbol", "triggered_by", "error")
    change_list_template = "admin/forecasting/trainingrun/change_list.html"
    change_form_template = "admin/forecasting/trainingrun/change_form.html"
    fieldsets = (
        (None, {"fields": ("asset", "status", "triggered_by", "progress", "model_version_link")}),
        ("Timing", {"fields": ("created_at", "started_at", "finished_at", "run_duration", "heartbeat_at", "worker")}),
        ("Error", {"fields": ("error_text",)}),
    )

    @admin.display(description="progress", ordering="status")
    def progress(self, obj):
        if obj.status == TrainingRun.Status.FAILED:
            return format_html('<strong style="color:var(--error-fg)">{}</strong>', obj.progress_label)
        if obj.status == TrainingRun.Status.QUEUED:
            return "queued"
        label = obj.progress_label
        if obj.status == TrainingRun.Status.SUCCEEDED:
            # A full bar: early stopping ends a good run before max_epochs.
            value, top = 1, 1
        elif obj.max_epochs:
            value, top, label = obj.epoch, obj.max_epochs, f"running: {label}"
        else:
            return "running: starting"
        bar = format_html(
            '<progress value="{}" max="{}" style="width:6em;vertical-align:middle"></progress> {}',
            value,
            top,
            label,
        )
        silent = self._silent_for(obj)
        if silent:
            return format_html('{} <strong style="color:var(--error-fg)">no heartbeat for {}</strong>', bar, silent)
        return bar

    @staticmethod
    def _silent_for(obj):
        """How long a running run has been silent, once that is past the reaper's timeout."""
        if obj.status != TrainingRun.Status.RUNNING or obj.heartbeat_at is None:
            return ""
        silence = timezone.now() - obj.heartbeat_at
        return _duration(silence) if silence.total_seconds() > settings.TRAINING_HEARTBEAT_TIMEOUT else ""

    @admin.display(description="started", ordering="started_at")
    def started(self, obj):
        return f"{obj.started_at:%Y-%m-%d %H:%M}" if obj.started_at else "—"

    @admin.display(description="duration")
    def run_duration(self, obj):
        if obj.duration is not None:
            # Tenths under a minute: a short training read "0 s".
            return _seconds(obj.duration.total_seconds())
        if obj.status == TrainingRun.Status.RUNNING and obj.started_at:
            return f"{_duration(timezone.now() - obj.started_at)} so far"
        return "—"

    @admin.display(description="error")
    def error_snippet(self, obj):
        if not obj.error:
            return ""
        return format_html('<span title="{}">{}</span>', obj.error, Truncator(obj.error).chars(40))

    @admin.display(description="error")
    def error_text(self, obj):
        return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', obj.error) if obj.error else "—"

    @admin.display(description="model version")
    def model_version_link(self, obj):
        try:
            version = obj.model_version
        except ObjectDoesNotExist:
            return "—"
        return _link(version)

    def changelist_view(self, request, extra_context=None):
        # Reload while anything trains so the progress column is live.
        active = TrainingRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).exists()
        extra = {"auto_refresh_seconds": AUTO_REFRESH_SECONDS if active else None}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        active = (
            TrainingRun.objects.filter(pk=object_id, status__in=ACTIVE_RUN_STATUSES).exists()
            if str(object_id).isdigit()
            else False
        )
        extra = {"auto_refresh_seconds": AUTO_REFRESH_SECONDS if active else None}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})


# --- model versions -------------------------------------------------------------------------------


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    # Six short columns beside the filters fit a 1280 px screen: each number reads against its
    # baseline in one cell; when it was trained, the full status and the gate's reasons are tooltips.
    list_display = ("model_label", "status_label", "mae_vs_naive", "pinball_vs_band", "coverage", "gate")
    list_display_links = ("model_label",)
    list_filter = ("status", "asset")
    list_select_related = ("asset",)
    search_fields = ("asset__symbol", "decision")
    actions = ("promote", "rollback_champion", "retire")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "asset",
                    "version",
                    "status_detail",
                    "training_run",
                    "created_at",
                    "promoted_at",
                    "retired_at",
                    "gate_decision",
                )
            },
        ),
        ("Backtest", {"fields": ("backtest_summary", "metrics_table")}),
        ("Data", {"fields": ("data_start", "data_end", "data_candles", "data_digest")}),
        (
            "Artifact",
            {
                "fields": (
                    "artifact_path",
                    "artifact_size_display",
                    "artifact_sha256",
                    "artifact_broken",
                    "train_time",
                )
            },
        ),
        ("Raw", {"classes": ("collapse",), "fields": ("hyperparameters", "metrics", "baseline_metrics", "backtest")}),
    )

    def has_lifecycle_permission(self, request):
        return can_change_champion(request.user)

    @admin.display(description="version", ordering="version")
    def model_label(self, obj):
        trained = f"trained {obj.created_at:%Y-%m-%d %H:%M} UTC"
        return format_html('<span title="{}">{} v{}</span>', trained, obj.asset.symbol, obj.version)

    @admin.display(description="status", ordering="status")
    def status_label(self, obj):
        label = format_html('<span title="{}">{}</span>', obj.status_text, obj.status)
        if obj.artifact_broken:
            return format_html(
                '{} <strong style="color:var(--error-fg)" title="{}">· artifact broken</strong>',
                label,
                obj.artifact_broken,
            )
        return label

    @admin.display(description="status")
    def status_detail(self, obj):
        return obj.status_text

    @admin.display(description="MAE vs naive")
    def mae_vs_naive(self, obj):
        return _vs(obj.metrics.get("mae"), obj.baseline_metrics.get("naive", {}).get("mae"))

    @admin.display(description="pinball vs band")
    def pinball_vs_band(self, obj):
        # Against the band the gate compares with; versions backtested before it have the naive band only.
        for key, name in (("seasonal_band", "the statistical band"), ("naive_band", "the naive band")):
            reference = (obj.baseline_metrics.get(key) or {}).get("pinball")
            if reference:
                text = _vs(obj.metrics.get("pinball"), reference)
                if key == "naive_band":
                    text += " naive band"
                return format_html('<span title="against {}\'s {}">{}</span>', name, significant(reference), text)
        return _vs(obj.metrics.get("pinball"), None)

    @admin.display(description="coverage")
    def coverage(self, obj):
        value = obj.metrics.get("coverage")
        if value is None:
            return "—"
        band = obj.metrics.get("band")
        return format_html('<span title="{}">{}</span>', f"aim {band:.0%}" if band else "", f"{value:.1%}")

    @admin.display(description="gate")
    def gate(self, obj):
        if not obj.gate_verdict:
            return "—"
        return format_html('<span title="{}">{}</span>', obj.gate_reasons, obj.gate_verdict)

    @admin.display(description="promotion gate")
    def gate_decision(self, obj):
        if not obj.gate_verdict:
            return obj.decision or "—"
        return f"{obj.gate_verdict}: {obj.gate_reasons}"

    @admin.display(description="training time")
    def train_time(self, obj):
        return _seconds(obj.train_seconds)

    @admin.display(description="backtest")
    def backtest_summary(self, obj):
        b = obj.backtest or {}
        if not b.get("origins"):
            return "—"
        parts = [f"{b['origins']} origins, {b.get('horizon', '?')} steps ahead"]
        if b.get("first_origin_time") and b.get("last_origin_time"):
            first, last = ms_to_datetime(b["first_origin_time"]), ms_to_datetime(b["last_origin_time"])
            parts.append(f"origins {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC")
        return "; ".join(parts)

    @admin.display(description="metrics vs baselines")
    def metrics_table(self, obj):
        """The asset page's backtest table: this version first, then each baseline on the same origins."""
        head = format_html_join(
            "",
            '<th scope="col" style="text-align:right">{}</th>',
            ((title,) for title in metric_headings(obj.asset.interval)),
        )
        body = []
        for row in metric_rows(obj):
            cells = format_html_join("", '<td style="text-align:right">{}</td>', ((c["text"],) for c in row["cells"]))
            body.append(
                format_html(
                    '<tr><th scope="row">{}</th>{}</tr>',
                    format_html("<strong>{}</strong>", row["label"]) if row["ours"] else row["label"],
                    cells,
                )
            )
        return format_html(
            "<table><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>",
            head,
            format_html_join("", "{}", ((b,) for b in body)),
        )

    @admin.display(description="artifact path")
    def artifact_path(self, obj):
        return obj.artifact.name or "—"

    @admin.display(description="artifact size")
    def artifact_size_display(self, obj):
        return f"{filesizeformat(obj.artifact_size)} ({obj.artifact_size:,} bytes)"

    @admin.action(description="Promote to champion", permissions=["lifecycle"])
    def promote(self, request, queryset):
        try:
            done, already = model_versions_promote(versions=list(queryset.select_related("asset")))
        except ModelVersionError as exc:
            self.message_user(request, f"{exc} Nothing was changed.", messages.ERROR)
            return
        if done:
            self.message_user(
                request,
                format_html(
                    "Now champion: {}.",
                    _join(
                        format_html(
                            "{}{}",
                            _link(v, f"{v.asset.symbol} v{v.version}"),
                            f" (v{previous.version} retired)" if previous else "",
                        )
                        for v, previous in done
                    ),
                ),
                messages.SUCCESS,
            )
        if already:
            self.message_user(
                request,
                format_html(
                    "Already champion: {}.", _join(_link(v, f"{v.asset.symbol} v{v.version}") for v in already)
                ),
                messages.INFO,
            )

    @admin.action(description="Roll back to previous champion", permissions=["lifecycle"])
    def rollback_champion(self, request, queryset):
        ids = queryset.values_list("asset_id", flat=True).distinct()
        return _rollback(self, request, queryset, list(Asset.objects.filter(id__in=ids).order_by("symbol")))

    @admin.action(description="Retire", permissions=["lifecycle"])
    def retire(self, request, queryset):
        versions = list(queryset.select_related("asset").order_by("asset__symbol", "-version"))
        if not _confirmed(request):
            return _confirmation(
                self,
                request,
                queryset,
                action="retire",
                title="Retire these model versions?",
                confirm_label="Yes, retire",
                handovers=model_versions_retire_plan(versions=versions),
                retiring=versions,
            )
        try:
            done, already, handovers = model_versions_retire(
                versions=versions, confirmed=request.POST.getlist("handover")
            )
        except ModelVersionError as exc:
            self.message_user(request, f"{exc} Nothing was changed.", messages.ERROR)
            return None
        label = lambda v: _link(v, f"{v.asset.symbol} v{v.version}")  # noqa: E731
        if done:
            self.message_user(request, format_html("Retired {}.", _join(label(v) for v in done)), messages.SUCCESS)
        if handovers:
            self.message_user(
                request,
                format_html(
                    "Champion now: {}.",
                    _join(
                        _link(h.serves, f"{h.asset.symbol} v{h.serves.version}")
                        if h.serves
                        else f"{h.asset.symbol}: none, the statistical baseline band serves"
                        for h in handovers
                    ),
                ),
                messages.INFO,
            )
        if already:
            self.message_user(
                request, format_html("Already retired: {}.", _join(label(v) for v in already)), messages.INFO
            )


# --- forecasts ------------------------------------------------------------------------------------


@admin.register(Forecast)
class ForecastAdmin(ReadOnlyAdmin):
    list_display = ("asset", "source", "kind", "origin_time", "made_at", "stale")
    list_filter = ("kind", "stale", "asset")
    list_select_related = ("asset",)
    date_hierarchy = "origin_time"
    show_full_result_count = False  # one row per asset per candle adds up
