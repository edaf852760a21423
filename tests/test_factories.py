"""Every model of the project has a factory, and each builds a row the model's own checks accept."""

from pathlib import Path

import pytest
from django.apps import apps

from tests import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def project_apps() -> list:
    """The installed apps whose code is this repository's (a new app is included without listing it)."""
    return [c for c in apps.get_app_configs() if (ROOT / c.name.split(".")[0] / "apps.py").is_file()]


def all_factories():
    return {
        f._meta.model: f
        for f in vars(factories).values()
        if isinstance(f, type)
        and issubclass(f, factories.factory.django.DjangoModelFactory)
        and f._meta.model is not None
    }


def test_every_project_model_has_a_factory():
    assert {c.label for c in project_apps()} >= {"accounts", "forecasting", "portfolio"}
    models = {m for config in project_apps() for m in config.get_models()}
    assert models - set(all_factories()) == set()


@pytest.mark.parametrize("model", sorted(all_factories(), key=lambda m: m._meta.label), ids=lambda m: m._meta.label)
def test_each_factory_makes_a_valid_row(model):
    row = all_factories()[model]()
    row.full_clean(validate_unique=False)
    assert model.objects.filter(pk=row.pk).exists()


def test_candles_are_consecutive_and_end_at_newest():
    asset = factories.AssetFactory(symbol="ETHUSDT")
    rows = factories.candles(asset, [101, 102, 103])
    assert [c.close for c in rows] == [101, 102, 103]
    assert rows[-1].open_time == factories.NEWEST and rows[0].open_time == factories.NEWEST - 2 * factories.HOUR
