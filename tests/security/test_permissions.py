"""One permission model: every staff action, in the API and in admin, needs the same Django model
permission (forecasting/permissions.py), and staff without it change nothing either way."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from forecasting.models import ModelVersion, TrainingRun
from tests.reliability import record
from tests.support.pages import admin_confirmation_data

PERMISSIONS = {
    "none": [],
    "retrain": ["add_trainingrun"],
    "champion": ["change_modelversion"],
    "both": ["add_trainingrun", "change_modelversion"],
}
# action -> the permission it needs
NEEDS = {"retrain": "retrain", "rollback": "champion", "promote": "champion", "retire": "champion"}


def state():
    return (TrainingRun.objects.count(), sorted(ModelVersion.objects.values_list("version", "status", "withdrawn")))


@pytest.fixture
def operator(world, django_user_model):
    def make(perms: str):
        user = django_user_model.objects.create_user(
            username=f"op-{perms}", password="x-long-password-1", is_staff=True
        )
        user.user_permissions.add(*Permission.objects.filter(codename__in=PERMISSIONS[perms]))
        # Admin pages need a view permission to open at all; it grants no action.
        user.user_permissions.add(*Permission.objects.filter(codename__in=["view_asset", "view_modelversion"]))
        return user

    return make


def allowed(action: str, perms: str) -> bool:
    return perms == "both" or perms == NEEDS[action]


API_ACTIONS = {
    "retrain": lambda w: f"/api/v1/assets/{w.btc.symbol}/retrain/",
    "rollback": lambda w: f"/api/v1/assets/{w.btc.symbol}/rollback/",
    "promote": lambda w: f"/api/v1/model-versions/{w.v1.id}/promote/",
}


@pytest.mark.parametrize("perms", PERMISSIONS)
@pytest.mark.parametrize("action", API_ACTIONS)
def test_api_staff_actions_need_the_admins_permission(world, no_broker, operator, action, perms):
    client = APIClient()
    client.force_authenticate(operator(perms))
    before = state()
    response = client.post(API_ACTIONS[action](world))
    if allowed(action, perms):
        assert response.status_code in (200, 202)
        assert state() != before
    else:
        assert response.status_code == 403
        assert "permission" in response.json()["error"]["message"]
        assert state() == before
    record("security", "API staff actions need the admin's model permission", probes=1)


ADMIN_ACTIONS = {
    "retrain": ("admin:forecasting_asset_changelist", "retrain_now", lambda w: w.btc.id),
    "rollback": ("admin:forecasting_asset_changelist", "rollback_champion", lambda w: w.btc.id),
    "promote": ("admin:forecasting_modelversion_changelist", "promote", lambda w: w.v1.id),
    "retire": ("admin:forecasting_modelversion_changelist", "retire", lambda w: w.v2.id),
}


@pytest.mark.parametrize("perms", PERMISSIONS)
@pytest.mark.parametrize("action", ADMIN_ACTIONS)
def test_admin_actions_need_the_same_permission(world, no_broker, operator, action, perms):
    from django.urls import reverse

    url_name, name, target = ADMIN_ACTIONS[action]
    client = Client()
    client.force_login(operator(perms))
    before = state()
    response = client.post(reverse(url_name), {"action": name, ACTION_CHECKBOX_NAME: [target(world)]})
    confirmation = admin_confirmation_data(response.content.decode())
    assert (confirmation is not None) == (allowed(action, perms) and action in ("rollback", "retire"))
    if confirmation is not None:
        assert state() == before  # roll back and retire only ask, until "Yes"
        client.post(reverse(url_name), confirmation)
    assert (state() != before) == allowed(action, perms)


def test_only_staff_see_who_started_a_run(world):
    for who in ("api:staff", "admin:staff", "command", "first candles", "api:owner"):
        TrainingRun.objects.create(asset=world.eth, triggered_by=who, status=TrainingRun.Status.FAILED)
    expected = {
        "api:staff": "staff",
        "admin:staff": "staff",
        # A source, not a person, is shown as it is.
        "command": "command",
        "first candles": "first candles",
        "api:owner": "you",
        "schedule": "schedule",
    }
    raw = dict(TrainingRun.objects.values_list("id", "triggered_by"))
    for role in ("owner", "other", "staff"):
        runs = world.client(role).get("/api/v1/training-runs/", {"limit": 50}).json()["results"]
        assert len(runs) == len(raw)
        for run in runs:
            seen = raw[run["id"]] if role == "staff" else expected[raw[run["id"]]]
            if role == "other" and seen == "you":
                seen = "staff"
            assert run["triggered_by"] == seen, (role, raw[run["id"]])
    record(
        "security",
        "non-staff see who started a run only as its source (schedule, command, first candles), you or staff",
        probes=3,
    )
