import json

import pytest
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from forecasting.models import Asset, Candle
from forecasting.services.market_data import asset_track
from forecasting.services.schedules import refresh_task_name
from mur_site.celery_app import app

pytestmark = pytest.mark.django_db


def test_tracking_creates_one_refresh_schedule_on_the_ingest_queue():
    asset = asset_track(symbol="btcusdt", interval="1h", base_asset="BTC", quote_asset="USDT")
    task = PeriodicTask.objects.get(name=refresh_task_name(asset))
    assert task.task == "forecasting.tasks.candles_refresh_task"
    app.loader.import_default_modules()
    assert task.task in app.tasks  # the name points at a real task
    assert json.loads(task.kwargs) == {"asset_id": asset.id}
    assert task.queue == "ingest" and task.enabled
    # Just after each hourly candle closes.
    assert (task.crontab.minute, task.crontab.hour) == ("1", "*")

    # Tracking again keeps the one schedule and leaves a staff edit alone.
    task.crontab.minute = "5"
    task.crontab.save()
    asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    assert PeriodicTask.objects.filter(task="forecasting.tasks.candles_refresh_task").count() == 1
    assert PeriodicTask.objects.get(name=refresh_task_name(asset)).crontab.minute == "5"


def test_refresh_task_is_routed_to_ingest():
    route = app.amqp.router.route({}, "forecasting.tasks.candles_refresh_task")
    assert route["queue"].name == "ingest"
    assert {q.name for q in app.conf.task_queues} == {"ingest", "forecast", "train"}
    # Each queue has its own routing key, so a message lands in one queue only.
    assert len({q.routing_key for q in app.conf.task_queues}) == 3


def test_refresh_task_skips_untracked_asset(settings):
    from forecasting.tasks import candles_refresh_task

    asset = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tracked=False)
    assert candles_refresh_task.run(asset.id) is None
    assert candles_refresh_task.run(asset.id + 999) is None


def test_admin_lists_candles_but_never_edits_them(admin_client, data_dir):
    from forecasting.services.market_data import candles_import_file
    from tests.support.processes import write_klines

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "BTCUSDT-1h.csv"
        write_klines(path, data_dir / "BTCUSDT-1h.csv", rows=30)
        candles_import_file(asset=asset, path=path)
    candle = Candle.objects.filter(asset=asset).first()
    listing = admin_client.get(reverse("admin:forecasting_candle_changelist") + f"?asset__id__exact={asset.id}")
    assert listing.status_code == 200
    assert "30 candles" in listing.content.decode() or "30 results" in listing.content.decode()
    assert admin_client.get(reverse("admin:forecasting_candle_add")).status_code == 403
    # The detail page is view-only: posting a change is refused and nothing changes.
    url = reverse("admin:forecasting_candle_change", args=[candle.id])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"close": "1"})
    assert response.status_code == 403
    candle.refresh_from_db()
    assert str(candle.close) != "1"
    assert admin_client.get(reverse("admin:forecasting_candle_delete", args=[candle.id])).status_code == 403
    # Assets are editable by staff.
    assert admin_client.get(reverse("admin:forecasting_asset_change", args=[asset.id])).status_code == 200


def test_tracking_creates_daily_retraining_and_a_forecast_each_interval():
    from forecasting.services.schedules import asset_schedules, forecast_task_name, retrain_task_name

    asset = asset_track(symbol="ETHUSDT", interval="1h", base_asset="ETH", quote_asset="USDT")
    app.loader.import_default_modules()
    by_name = {t.name: t for t in asset_schedules(asset)}
    assert len(by_name) == 3
    retrain = by_name[retrain_task_name(asset)]
    assert retrain.task == "forecasting.tasks.asset_retrain_task" and retrain.task in app.tasks
    assert (retrain.crontab.minute, retrain.crontab.hour, retrain.crontab.day_of_week) == ("30", "2", "*")
    forecast = by_name[forecast_task_name(asset)]
    assert forecast.task == "forecasting.tasks.forecast_task" and forecast.queue == "forecast"
    assert (forecast.crontab.minute, forecast.crontab.hour) == ("3", "*")  # hourly, after the refresh
    assert all(json.loads(t.kwargs) == {"asset_id": asset.id} for t in by_name.values())
    # Training itself runs on the train queue; the beat task only queues a run.
    assert app.amqp.router.route({}, "forecasting.tasks.training_run_task")["queue"].name == "train"
    # Untracking disables every schedule of the asset.
    asset.tracked = False
    asset.save()
    from forecasting.services.schedules import asset_schedules_ensure

    asset_schedules_ensure(asset=asset)
    assert not any(t.enabled for t in asset_schedules(asset))


def test_reaper_schedule_exists():
    task = PeriodicTask.objects.get(task="forecasting.tasks.training_runs_reap_task")
    assert task.enabled and task.interval.every == 5 and task.interval.period == "minutes"
