# The one system-wide schedule: fail training runs whose worker died. Per-asset schedules are
# created when an asset is tracked. Both live only in the database, editable in admin.
from django.db import migrations


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="Fail training runs of lost workers",
        defaults={"task": "forecasting.tasks.training_runs_reap_task", "interval": every, "queue": "forecast"},
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Fail training runs of lost workers"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("forecasting", "0002_training"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]
    operations = [migrations.RunPython(create, remove)]
