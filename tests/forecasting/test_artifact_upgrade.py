"""An upgraded deployment keeps its models: artifacts written as files before the database became
their home are copied in by a migration."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from forecasting.models import StoredFile
from tests.factories import ModelVersionFactory

copy_artifact_files = importlib.import_module(
    "forecasting.migrations.0009_artifacts_into_the_database"
).copy_artifact_files


@pytest.mark.django_db
def test_artifact_files_are_copied_into_the_database_once(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    kept = ModelVersionFactory(artifact="models/BTCUSDT/old.pt")
    gone = ModelVersionFactory(version=2, artifact="models/BTCUSDT/missing.pt")
    (tmp_path / "models" / "BTCUSDT").mkdir(parents=True)
    (tmp_path / "models" / "BTCUSDT" / "old.pt").write_bytes(b"weights")

    copy_artifact_files(apps, None)
    copy_artifact_files(apps, None)  # again: nothing twice

    assert list(StoredFile.objects.values_list("name", "data", "size")) == [(kept.artifact.name, b"weights", 7)]
    assert not StoredFile.objects.filter(name=gone.artifact.name).exists()
    assert (tmp_path / "models" / "BTCUSDT" / "old.pt").exists()  # the file stays where it was


@pytest.mark.django_db
def test_nothing_is_copied_when_artifacts_stay_files(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.ARTIFACT_STORAGE = "files"
    ModelVersionFactory(artifact="models/BTCUSDT/old.pt")
    (tmp_path / "models" / "BTCUSDT").mkdir(parents=True)
    (tmp_path / "models" / "BTCUSDT" / "old.pt").write_bytes(b"weights")
    copy_artifact_files(apps, None)
    assert not StoredFile.objects.exists()
