import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.local")

app = Celery("mur_site")
# Every CELERY_* Django setting configures Celery.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
