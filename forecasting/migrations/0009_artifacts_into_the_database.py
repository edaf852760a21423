"""Artifacts written as files before the database became their default home are copied in, so an
upgraded deployment keeps serving its champions. The files are left where they are."""

from pathlib import Path

from django.conf import settings
from django.db import migrations


def copy_artifact_files(apps, schema_editor):
    if getattr(settings, "ARTIFACT_STORAGE", "database") != "database":
        return
    ModelVersion = apps.get_model("forecasting", "ModelVersion")
    StoredFile = apps.get_model("forecasting", "StoredFile")
    root = Path(settings.MEDIA_ROOT)
    stored = set(StoredFile.objects.values_list("name", flat=True))
    for name in ModelVersion.objects.exclude(artifact="").values_list("artifact", flat=True).distinct():
        path = root / name
        if name in stored or not path.is_file():
            continue  # already in, or gone (loading it flags the version, as before)
        data = path.read_bytes()
        StoredFile.objects.create(name=name, data=data, size=len(data))


class Migration(migrations.Migration):
    dependencies = [("forecasting", "0008_stored_file")]

    operations = [migrations.RunPython(copy_artifact_files, migrations.RunPython.noop)]
