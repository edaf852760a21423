"""Staff admin for training runs, model versions and forecasts: live progress, the version
lifecycle actions (promote, roll back, retire), and that nothing here is editable by hand."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from forecasting.models import Forecast, ModelVersion, TrainingRun
from forecasting.services.schedules import asset_schedules, asset_schedules_ensure
from tests.factories import ModelVersionFactory
from tests.support.pages import admin_confirmation_data

pytestmark = pytest.mark.django_db

DATA_START = datetime(2022, 1, 1, tzinfo=UTC)
DATA_END = datetime(2022, 6, 30, 23, tzinfo=UTC)

MODEL_METRICS = {
    "mae": 277.8,
    "mae_h1": 81.25,
    "mase": 1.02,
    "directional_accuracy": 0.523,
    "pinball": 98.5,
    "coverage": 0.812,
    "width": 912.0,
    "band": 0.8,
}
BASELINES = {
    "seasonal_band": {
        "mae": 279.5,
        "mae_h1": 80.0,
        "mase": 1.03,
        "directional_accuracy": None,
        "pinball": 100.0,
        "coverage": 0.805,
        "width": 925.0,
        "band": 0.8,
    },
    "naive": {
        "mae": 279.5,
        "mae_h1": 80.0,
        "mase": 1.03,
        "directional_accuracy": None,
        "pinball": None,
        "coverage": None,
        "width": None,
    },
    "drift": {
        "mae": 281.0,
        "mae_h1": 80.5,
        "mase": 1.04,
        "directional_accuracy": 0.49,
        "pinball": None,
        "coverage": None,
        "width": None,
    },
    "naive_band": {
        "mae": 279.5,
        "mae_h1": 80.0,
        "mase": 1.03,
        "directional_accuracy": None,
        "pinball": 104.25,
        "coverage": 0.79,
        "width": 950.0,
    },
    "champion": {
        "mae": 280.125,
        "mae_h1": 82.0,
        "mase": 1.05,
        "directional_accuracy": 0.51,
        "pinball": 101.0,
        "coverage": 0.8,
        "width": 930.0,
        "version": 1,
    },
}


@pytest.fixture
def delays():
    """Record what would be sent to the broker instead of sending it (REDIS_URL may point at a real one)."""
    with (
        mock.patch("forecasting.tasks.training_run_task.delay") as train,
        mock.patch("forecasting.tasks.forecast_task.delay") as forecast,
    ):
        yield {"train": train, "forecast": forecast}


def make_version(
    asset,
    version,
    status=ModelVersion.Status.CANDIDATE,
    *,
    promoted_days_ago=None,
    broken="",
    replaced=None,
    withdrawn=False,
    baselines=BASELINES,
):
    now = timezone.now()
    return ModelVersionFactory(
        asset=asset,
        version=version,
        status=status,
        data_start=DATA_START,
        data_end=DATA_END,
        data_candles=4000,
        data_digest="d" * 64,
        metrics=MODEL_METRICS,
        baseline_metrics=baselines,
        backtest={"origins": 336, "horizon": 24, "first_origin_time": 1655251200000, "last_origin_time": 1656457200000},
        decision="Promoted: pinball loss 98.5 is 1.5% below the statistical band's 100; MAE 277.8 is within 0.5% "
        "of the naive forecast's 279.5.",
        artifact_size=123_456,
        artifact_broken=broken,
        replaced=replaced,
        withdrawn=withdrawn,
        promoted_at=None if promoted_days_ago is None else now - timedelta(days=promoted_days_ago),
        retired_at=now - timedelta(days=1) if status == ModelVersion.Status.RETIRED else None,
    )


class Messages(list):
    """(level, text without markup) of each message, and the page that showed them."""

    response = None


def run_action(client, model_name, action, objects, *, confirm=True, **extra):
    """Choose the action for `objects`; if it asks for confirmation, answer "Yes" (unless not `confirm`)."""
    url = reverse(f"admin:forecasting_{model_name}_changelist")
    data = {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    confirmation = admin_confirmation_data(response.content.decode())
    if confirm and confirmation is not None:
        response = client.post(url, confirmation, follow=True)
        assert response.status_code == 200
    msgs = Messages((m.level_tag, html.unescape(strip_tags(str(m)))) for m in response.context["messages"])
    msgs.response = response
    return msgs


def statuses(asset):
    return dict(ModelVersion.objects.filter(asset=asset).values_list("version", "status"))


# --- retrain now ----------------------------------------------------------------------------------


def test_retrain_now_queues_one_run_and_a_second_click_no_duplicate(
    admin_client, btc, delays, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        msgs = run_action(admin_client, "asset", "retrain_now", [btc])
    run = TrainingRun.objects.get(asset=btc)
    assert run.status == TrainingRun.Status.QUEUED and run.triggered_by == "admin:admin"
    delays["train"].assert_called_once_with(run.id)
    assert [lvl for lvl, _ in msgs] == ["success"]
    assert msgs[0][1] == f"Queued training for BTCUSDT (run {run.id})."
    # The message links to the run, rendered as a link rather than escaped markup.
    run_url = reverse("admin:forecasting_trainingrun_change", args=[run.id])
    assert f'<a href="{run_url}">BTCUSDT (run {run.id})</a>' in msgs.response.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        msgs = run_action(admin_client, "asset", "retrain_now", [btc])
    assert TrainingRun.objects.filter(asset=btc).count() == 1
    delays["train"].assert_called_once()  # nothing new was sent
    assert [lvl for lvl, _ in msgs] == ["warning"]
    assert f"Already queued or running, not queued again: BTCUSDT (run {run.id}, queued" in msgs[0][1]


def test_retrain_now_reports_queued_and_running_assets_apart(
    admin_client, btc, eth, delays, django_capture_on_commit_callbacks
):
    busy = TrainingRun.objects.create(
        asset=btc,
        triggered_by="schedule",
        status=TrainingRun.Status.RUNNING,
        started_at=timezone.now(),
        epoch=13,
        max_epochs=40,
    )
    with django_capture_on_commit_callbacks(execute=True):
        msgs = dict(run_action(admin_client, "asset", "retrain_now", [btc, eth]))
    new = TrainingRun.objects.get(asset=eth)
    assert TrainingRun.objects.filter(asset=btc).count() == 1
    delays["train"].assert_called_once_with(new.id)
    assert f"Queued training for ETHUSDT (run {new.id})" in msgs["success"]
    assert f"BTCUSDT (run {busy.id}, running, epoch 13 of 40)" in msgs["warning"]
    assert "BTCUSDT" not in msgs["success"]


# --- promote --------------------------------------------------------------------------------------


def test_promote_makes_the_version_champion_and_retires_the_old_one(
    admin_client, btc, delays, django_capture_on_commit_callbacks
):
    old = make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=3)
    new = make_version(btc, 2, ModelVersion.Status.REJECTED)
    with django_capture_on_commit_callbacks(execute=True):
        msgs = run_action(admin_client, "modelversion", "promote", [new])
    assert msgs == [("success", "Now champion: BTCUSDT v2 (v1 retired).")]
    assert statuses(btc) == {1: "retired", 2: "champion"}
    assert ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).count() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.retired_at is not None and new.promoted_at is not None
    delays["forecast"].assert_called_with(btc.id)  # the new champion forecasts right away


def test_promote_refuses_a_broken_artifact_and_changes_nothing(
    admin_client, btc, eth, delays, django_capture_on_commit_callbacks
):
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=3)
    broken = make_version(btc, 2, broken="artifact checksum mismatch")
    fine = make_version(eth, 1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        msgs = run_action(admin_client, "modelversion", "promote", [broken, fine])
    assert [lvl for lvl, _ in msgs] == ["error"]
    assert "broken artifact" in msgs[0][1] and "BTCUSDT v2" in msgs[0][1] and "Nothing was changed" in msgs[0][1]
    # All or nothing: the good version of the other asset was not promoted either.
    assert statuses(btc) == {1: "champion", 2: "candidate"}
    assert statuses(eth) == {1: "candidate"}
    assert callbacks == [] and not delays["forecast"].called


def test_promote_refuses_two_versions_of_one_asset(admin_client, btc, delays):
    v1, v2 = make_version(btc, 1), make_version(btc, 2)
    msgs = run_action(admin_client, "modelversion", "promote", [v1, v2])
    assert msgs == [
        ("error", "Select one version per asset to promote; several were selected for BTCUSDT. Nothing was changed.")
    ]
    assert statuses(btc) == {1: "candidate", 2: "candidate"}


def test_promote_rereads_versions_and_never_half_applies(
    admin_client, btc, eth, delays, django_capture_on_commit_callbacks
):
    """ETHUSDT v1 is flagged broken after the selection was made: the action re-reads each version
    under the asset lock, refuses, and undoes the BTCUSDT promotion it had already made."""
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=3)
    btc_v2, eth_v1 = make_version(btc, 2), make_version(eth, 1)
    real_refresh = ModelVersion.refresh_from_db

    def flagged_meanwhile(self, *args, **kwargs):
        ModelVersion.objects.filter(id=eth_v1.id).update(artifact_broken="artifact cannot be read")
        return real_refresh(self, *args, **kwargs)

    with (
        mock.patch.object(ModelVersion, "refresh_from_db", flagged_meanwhile),
        django_capture_on_commit_callbacks(execute=True),
    ):
        msgs = run_action(admin_client, "modelversion", "promote", [btc_v2, eth_v1])
    assert [lvl for lvl, _ in msgs] == ["error"]
    assert "ETHUSDT v1" in msgs[0][1] and "Nothing was changed" in msgs[0][1]
    assert statuses(btc) == {1: "champion", 2: "candidate"}
    assert statuses(eth) == {1: "candidate"}
    assert not delays["forecast"].called


# --- roll back and retire -------------------------------------------------------------------------


def test_rollback_restores_the_previous_champion(admin_client, btc, delays, django_capture_on_commit_callbacks):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    v2 = make_version(
        btc, 2, ModelVersion.Status.RETIRED, promoted_days_ago=5, broken="artifact checksum mismatch", replaced=v1
    )
    current = make_version(btc, 3, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v2)
    with django_capture_on_commit_callbacks(execute=True):
        msgs = run_action(admin_client, "modelversion", "rollback_champion", [current])
    # v3 replaced v2, but v2's artifact is broken, so the one v2 replaced (v1) comes back.
    assert statuses(btc) == {1: "champion", 2: "retired", 3: "retired"}
    assert msgs == [("success", "Rolled back BTCUSDT: v3 retired, v1 is champion again.")]
    delays["forecast"].assert_called_with(btc.id)


def test_asset_rollback_without_a_champion_is_an_error_and_changes_nothing(admin_client, btc, eth, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    make_version(eth, 1)
    msgs = run_action(admin_client, "asset", "rollback_champion", [btc, eth])
    assert msgs == [("error", "ETHUSDT has no champion to roll back. Nothing was changed.")]
    assert statuses(btc) == {1: "retired", 2: "champion"}

    msgs = run_action(admin_client, "asset", "rollback_champion", [btc])
    assert msgs == [("success", "Rolled back BTCUSDT: v2 retired, v1 is champion again.")]
    assert statuses(btc) == {1: "champion", 2: "retired"}


def test_retire_a_candidate_and_a_champion(admin_client, btc, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    champion = make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    candidate = make_version(btc, 3)
    msgs = run_action(admin_client, "modelversion", "retire", [candidate])
    assert msgs == [("success", "Retired BTCUSDT v3.")]
    assert statuses(btc) == {1: "retired", 2: "champion", 3: "retired"}
    assert ModelVersion.objects.get(id=candidate.id).retired_at is not None

    # Retiring the champion brings back the one it replaced; the already retired one is left alone.
    msgs = run_action(admin_client, "modelversion", "retire", [champion, candidate])
    assert statuses(btc) == {1: "champion", 2: "retired", 3: "retired"}
    assert msgs == [
        ("success", "Retired BTCUSDT v2."),
        ("info", "Champion now: BTCUSDT v1."),
        ("info", "Already retired: BTCUSDT v3."),
    ]


def test_retire_withdraws_every_selected_version_so_none_comes_back(admin_client, btc, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    v2 = make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    msgs = run_action(admin_client, "modelversion", "retire", [v1, v2])
    # v1 is withdrawn before the champion goes, so the statistical baseline serves rather than v1.
    assert statuses(btc) == {1: "retired", 2: "retired"}
    assert ("info", "Champion now: BTCUSDT: none, the statistical baseline band serves.") in msgs
    assert all(ModelVersion.objects.filter(asset=btc).values_list("withdrawn", flat=True))


def test_retire_the_only_champion_leaves_the_baseline_serving(admin_client, btc, eth, delays):
    make_version(btc, 1, ModelVersion.Status.REJECTED)
    make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1)
    make_version(eth, 1)
    # The rejected v1 was never promoted, so nothing comes back; ETHUSDT is unaffected by BTCUSDT.
    msgs = run_action(admin_client, "modelversion", "retire", list(ModelVersion.objects.filter(asset=btc)))
    assert statuses(btc) == {1: "retired", 2: "retired"} and statuses(eth) == {1: "candidate"}
    assert msgs == [
        ("success", "Retired BTCUSDT v1, BTCUSDT v2."),
        ("info", "Champion now: BTCUSDT: none, the statistical baseline band serves."),
    ]


def words(response) -> str:
    return " ".join(html.unescape(strip_tags(response.content.decode())).split())


def ask(client, model_name, action, objects):
    """Choose the action and stop at its confirmation page."""
    url = reverse(f"admin:forecasting_{model_name}_changelist")
    return client.post(url, {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [o.pk for o in objects]})


def test_rollback_asks_first_and_names_what_serves_next(admin_client, btc, eth, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    make_version(eth, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=1)
    page = ask(admin_client, "asset", "rollback_champion", [btc, eth])
    assert page.status_code == 200
    text = words(page)
    assert "Roll back to the previous champion?" in text
    assert "BTCUSDT: v2 stops serving; v1 serves again." in text
    assert (
        "ETHUSDT: v1 stops serving; no earlier version can serve, so the statistical baseline band serves "
        "until a model is promoted."
    ) in text
    assert "Yes, roll back" in page.content.decode() and "No, take me back" in text
    # Asking changed nothing.
    assert statuses(btc) == {1: "retired", 2: "champion"} and statuses(eth) == {1: "champion"}
    assert not delays["forecast"].called

    msgs = run_action(admin_client, "asset", "rollback_champion", [btc, eth])
    assert msgs == [
        (
            "success",
            "Rolled back BTCUSDT: v2 retired, v1 is champion again; "
            "ETHUSDT: v1 retired, the statistical baseline band serves.",
        )
    ]
    assert statuses(btc) == {1: "champion", 2: "retired"} and statuses(eth) == {1: "retired"}


def test_the_version_list_rollback_asks_per_asset_too(admin_client, btc, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    v2 = make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    text = words(ask(admin_client, "modelversion", "rollback_champion", [v1, v2]))
    assert text.count("BTCUSDT: v2 stops serving; v1 serves again.") == 1
    assert statuses(btc) == {1: "retired", 2: "champion"}


def test_yes_without_the_confirmation_page_never_retires_the_only_model(admin_client, btc, delays):
    """A "Yes" that did not come from the page (no handover it showed) changes nothing."""
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=1)
    msgs = run_action(admin_client, "asset", "rollback_champion", [btc], confirm=False, post="yes")
    assert msgs == [
        (
            "error",
            "BTCUSDT: v1 stops serving; no earlier version can serve, so the statistical baseline band serves. "
            "Confirm this change first. Nothing was changed.",
        )
    ]
    assert statuses(btc) == {1: "champion"}
    assert not delays["forecast"].called


def test_a_champion_changed_after_the_confirmation_page_is_refused(admin_client, btc, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    confirmation = admin_confirmation_data(ask(admin_client, "asset", "rollback_champion", [btc]).content.decode())
    # Meanwhile v1's artifact failed its checksum: confirming now would leave the baseline serving,
    # which the page did not say.
    ModelVersion.objects.filter(id=v1.id).update(artifact_broken="artifact checksum mismatch")
    response = admin_client.post(reverse("admin:forecasting_asset_changelist"), confirmation, follow=True)
    msgs = [html.unescape(strip_tags(str(m))) for m in response.context["messages"]]
    assert msgs == [
        "BTCUSDT changed since the confirmation page: now v2 stops serving; no earlier version can serve, so "
        "the statistical baseline band serves. Review the change and confirm again. Nothing was changed."
    ]
    assert statuses(btc) == {1: "retired", 2: "champion"}


def test_retire_asks_first_and_says_when_the_baseline_takes_over(admin_client, btc, delays):
    v1 = make_version(btc, 1, ModelVersion.Status.RETIRED, promoted_days_ago=10)
    v2 = make_version(btc, 2, ModelVersion.Status.CHAMPION, promoted_days_ago=1, replaced=v1)
    v3 = make_version(btc, 3)
    text = words(ask(admin_client, "modelversion", "retire", [v2, v3]))
    assert "Retire these model versions?" in text
    assert "BTCUSDT: v2 stops serving; v1 serves again." in text
    assert "BTCUSDT v3 (a candidate awaiting the promotion gate)" in text
    assert "statistical baseline" not in text

    # With v1 retired too, nothing earlier can serve: the page says so before anything happens.
    text = words(ask(admin_client, "modelversion", "retire", [v1, v2]))
    assert (
        "BTCUSDT: v2 stops serving; no earlier version can serve, so the statistical baseline band serves "
        "until a model is promoted."
    ) in text
    assert statuses(btc) == {1: "retired", 2: "champion", 3: "candidate"}
    assert not ModelVersion.objects.filter(withdrawn=True).exists()


def test_version_page_states_the_status_and_rounds_its_numbers(admin_client, btc):
    """The gate passed v1 once; staff retired it since: the page says retired and when."""
    version = make_version(btc, 1, ModelVersion.Status.RETIRED, withdrawn=True)
    ModelVersion.objects.filter(id=version.id).update(train_seconds=4.092147618000013)
    version.refresh_from_db()
    text = words(admin_client.get(reverse("admin:forecasting_modelversion_change", args=[version.id])))
    assert f"Status: retired (since {version.retired_at:%Y-%m-%d %H:%M} UTC, withdrawn by staff)" in text
    assert "Promotion gate: passed: pinball loss 98.5 is 1.5% below" in text
    assert "Training time: 4.1 s" in text and "4.0921" not in text


def test_finished_runs_show_finished_and_failed_runs_failed(admin_client, btc):
    for status, epoch in ((TrainingRun.Status.SUCCEEDED, 13), (TrainingRun.Status.FAILED, 5)):
        TrainingRun.objects.create(asset=btc, triggered_by="schedule", status=status, epoch=epoch, max_epochs=40)
    page = admin_client.get(reverse("admin:forecasting_trainingrun_changelist")).content.decode()
    # Early stopping ended the good run at epoch 13: its bar is full, not a third full.
    assert '<progress value="1" max="1"' in page and '<progress value="13"' not in page
    assert "finished after 13 of 40 epochs (stopped early)" in page
    assert "failed at epoch 5 of 40" in page and '<progress value="5"' not in page


def test_lifecycle_actions_need_the_change_permission(client, django_user_model, btc, delays):
    viewer = django_user_model.objects.create_user(username="viewer", password="x", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_modelversion", "view_asset", "view_trainingrun"])
    )
    client.force_login(viewer)
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=3)
    v2 = make_version(btc, 2)
    listing = client.get(reverse("admin:forecasting_modelversion_changelist"))
    assert listing.status_code == 200
    assert 'value="promote"' not in listing.content.decode()
    run_action(client, "modelversion", "promote", [v2])
    run_action(client, "asset", "retrain_now", [btc])
    assert statuses(btc) == {1: "champion", 2: "candidate"}
    assert not TrainingRun.objects.exists()


# --- lists and read-only pages --------------------------------------------------------------------


def test_run_list_shows_live_progress_and_refreshes_only_while_training(admin_client, btc):
    now = timezone.now()
    run = TrainingRun.objects.create(
        asset=btc,
        triggered_by="admin:alice",
        status=TrainingRun.Status.RUNNING,
        started_at=now - timedelta(minutes=3),
        heartbeat_at=now,
        epoch=13,
        max_epochs=40,
    )
    url = reverse("admin:forecasting_trainingrun_changelist")
    page = admin_client.get(url).content.decode()
    assert "epoch 13 of 40" in page
    assert '<progress value="13" max="40"' in page
    assert "admin:alice" in page and "so far" in page
    assert '<meta http-equiv="refresh" content="5">' in page

    TrainingRun.objects.filter(id=run.id).update(
        status=TrainingRun.Status.FAILED, finished_at=now, error="The worker was lost: no heartbeat for 600 s."
    )
    page = admin_client.get(url).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert "The worker was lost" in page and "3 min 00 s" in page
    filtered = admin_client.get(url + f"?status__exact=running&asset__id__exact={btc.id}").content.decode()
    assert "epoch 13 of 40" not in filtered
    # A training shorter than a second reads in tenths, not "0 s".
    TrainingRun.objects.filter(id=run.id).update(finished_at=run.started_at + timedelta(milliseconds=800))
    page = admin_client.get(reverse("admin:forecasting_trainingrun_change", args=[run.id])).content.decode()
    assert "0.8 s" in page and ">0 s<" not in page


def test_run_list_flags_a_silent_worker(admin_client, btc, settings):
    settings.TRAINING_HEARTBEAT_TIMEOUT = 60
    now = timezone.now()
    TrainingRun.objects.create(
        asset=btc,
        triggered_by="schedule",
        status=TrainingRun.Status.RUNNING,
        started_at=now - timedelta(minutes=20),
        heartbeat_at=now - timedelta(minutes=15),
        epoch=2,
        max_epochs=40,
    )
    page = admin_client.get(reverse("admin:forecasting_trainingrun_changelist")).content.decode()
    assert "no heartbeat for 15 min" in page


def test_run_pages_are_read_only(admin_client, btc):
    run = TrainingRun.objects.create(
        asset=btc, triggered_by="schedule", status=TrainingRun.Status.SUCCEEDED, epoch=40, max_epochs=40
    )
    version = make_version(btc, 1)
    ModelVersion.objects.filter(id=version.id).update(training_run=run)
    url = reverse("admin:forecasting_trainingrun_change", args=[run.id])
    page = admin_client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert (
        "finished after 40 epochs" in body
        and reverse("admin:forecasting_modelversion_change", args=[version.id]) in body
    )
    assert 'name="_save"' not in body and 'http-equiv="refresh"' not in body
    # The run is named by its asset's symbol (not the asset's database id), here and where it links.
    assert f"BTCUSDT run {run.id} (succeeded)" in body
    version_page = admin_client.get(reverse("admin:forecasting_modelversion_change", args=[version.id]))
    assert f"BTCUSDT run {run.id} (succeeded)" in version_page.content.decode()
    assert admin_client.post(url, {"status": "failed", "triggered_by": "x"}).status_code == 403
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED
    assert admin_client.get(reverse("admin:forecasting_trainingrun_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:forecasting_trainingrun_delete", args=[run.id]), {"post": "yes"}).status_code
        == 403
    )
    assert TrainingRun.objects.filter(id=run.id).exists()


def test_version_list_compares_with_the_baselines(admin_client, btc):
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=1)
    make_version(btc, 2, broken="artifact checksum mismatch")
    # Backtested before the seasonal band was: its pinball is set against the naive band instead.
    make_version(btc, 3, baselines={k: v for k, v in BASELINES.items() if k != "seasonal_band"})
    page = html.unescape(admin_client.get(reverse("admin:forecasting_modelversion_changelist")).content.decode())
    assert "277.8 (\u22120.6%)" in page
    assert page.count("98.5 (\u22121.5%)<") == 2
    assert page.count("98.5 (\u22125.5%) naive band") == 1
    assert 'title="aim 80%">81.2%<' in page
    assert page.count(">passed<") == 3 and 'title="pinball loss 98.5 is 1.5% below' in page
    assert "artifact broken" in page


def test_version_page_is_read_only_and_shows_metrics_and_artifact(admin_client, btc):
    version = make_version(btc, 2, broken="artifact checksum mismatch: expected 000…, found abc…")
    url = reverse("admin:forecasting_modelversion_change", args=[version.id])
    response = admin_client.get(url)
    assert response.status_code == 200
    body = html.unescape(response.content.decode())
    for text in (
        "model v2",
        "statistical baseline (seasonal band)",
        "80.5%",
        "naive band",
        "drift",
        "previous champion v1",
        "277.8",
        "104.2",
        "81.2%",
        "MAE 1h",
        "models/BTCUSDT/v2.pt",
        "120.6\xa0KB (123,456 bytes)",
        f"{2:064x}",
        "artifact checksum mismatch: expected 000…",
        "336 origins, 24 steps ahead",
    ):
        assert text in body, text
    assert 'name="_save"' not in body
    assert admin_client.post(url, {"status": "champion", "decision": "hand-made"}).status_code == 403
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE and version.decision.startswith("Promoted:")
    assert admin_client.get(reverse("admin:forecasting_modelversion_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:forecasting_modelversion_delete", args=[version.id]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_forecast_list_is_read_only(admin_client, btc):
    forecast = Forecast.objects.create(
        asset=btc,
        kind=Forecast.Kind.BASELINE,
        source="baseline",
        origin_time=DATA_END,
        last_close="20000.00000000",
        quantiles=[0.1, 0.5, 0.9],
        steps=[],
        stale=False,
    )
    page = admin_client.get(reverse("admin:forecasting_forecast_changelist"))
    assert page.status_code == 200 and "statistical baseline (seasonal band)" in page.content.decode()
    url = reverse("admin:forecasting_forecast_change", args=[forecast.id])
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"stale": "on"}).status_code == 403
    assert admin_client.get(reverse("admin:forecasting_forecast_add")).status_code == 403


def test_asset_page_links_schedules_runs_and_versions(admin_client, btc):
    asset_schedules_ensure(asset=btc)
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=1)
    TrainingRun.objects.create(asset=btc, triggered_by="schedule", status=TrainingRun.Status.SUCCEEDED)
    body = html.unescape(admin_client.get(reverse("admin:forecasting_asset_change", args=[btc.id])).content.decode())
    tasks = list(asset_schedules(btc))
    assert len(tasks) == 3
    for task in tasks:
        assert reverse("admin:django_celery_beat_periodictask_change", args=[task.id]) in body
        assert task.name in body and task.crontab.human_readable in body
    assert reverse("admin:forecasting_trainingrun_changelist") + f"?asset__id__exact={btc.id}" in body
    assert reverse("admin:forecasting_modelversion_changelist") + f"?asset__id__exact={btc.id}" in body
    assert "1 training run" in body and "1 model version" in body and "champion: " in body
    # The add page has no asset yet and still renders.
    assert admin_client.get(reverse("admin:forecasting_asset_add")).status_code == 200


@pytest.mark.parametrize(
    "name", ["trainingrun_changelist", "modelversion_changelist", "forecast_changelist", "asset_changelist"]
)
def test_non_staff_user_is_sent_to_the_admin_login(client, user, name):
    client.force_login(user)
    response = client.get(reverse(f"admin:forecasting_{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_non_staff_user_cannot_run_actions(client, user, btc, delays):
    make_version(btc, 1, ModelVersion.Status.CHAMPION, promoted_days_ago=3)
    v2 = make_version(btc, 2)
    client.force_login(user)
    url = reverse("admin:forecasting_modelversion_changelist")
    response = client.post(url, {"action": "promote", "index": 0, ACTION_CHECKBOX_NAME: [v2.id]})
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert statuses(btc) == {1: "champion", 2: "candidate"}


def _table_rows(page: str, start: str) -> list[list[str]]:
    """The text of each body row (heading cell first) of the first table after `start`."""
    import re

    table = page[page.index(start) :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [
        [html.unescape(strip_tags(cell)).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_admin_the_asset_page_and_the_command_show_one_backtest_table(admin_client, btc):
    """One definition of the backtest table: admin, the asset page and train_asset agree row for row."""
    from forecasting.management.commands.train_asset import backtest_table

    version = make_version(btc, 2, status=ModelVersion.Status.CHAMPION)
    admin_page = admin_client.get(reverse("admin:forecasting_modelversion_change", args=[version.id])).content.decode()
    asset_page = admin_client.get(reverse("forecasting:asset-detail", args=["BTCUSDT"])).content.decode()
    in_admin = _table_rows(admin_page, "Metrics vs baselines")
    on_page = _table_rows(asset_page, 'id="metrics-table"')
    assert in_admin == on_page
    assert [row[0] for row in on_page] == [
        "model v2",
        "statistical baseline (seasonal band)",
        "naive (last price)",
        "drift",
        "naive band",
        "previous champion v1",
    ]
    assert on_page[0][1:] == ["277.8", "81.25", "1.02", "52.3%", "98.5", "81.2%", "912"]
    printed = [line.split() for line in backtest_table(version).splitlines()[1:]]
    assert [line[-7:] for line in printed] == [row[1:] for row in on_page]
