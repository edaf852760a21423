"""A task goes through Redis to a real Celery worker process and its effect lands in PostgreSQL."""

from decimal import Decimal

import pytest

from forecasting.models import Asset, Candle
from forecasting.services.market_data import asset_track, read_klines_csv
from tests.support.processes import clean_env, database_url_for_subprocess, start_worker, stop, wait_for, write_klines

pytestmark = pytest.mark.services


@pytest.mark.django_db(transaction=True)
def test_refresh_task_runs_on_a_real_worker_through_redis(on_postgres, redis_url, data_dir, tmp_path):
    klines_dir = tmp_path / "klines"
    klines_dir.mkdir()
    write_klines(klines_dir / "BTCUSDT-1h.csv", data_dir / "BTCUSDT-1h.csv", rows=200)
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    log = tmp_path / "worker.log"
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.test",
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=redis_url,
        MUR_KLINES_DIR=str(klines_dir),
    )
    worker = start_worker(env, "ingest", "ingest-test", log)
    try:
        from forecasting.tasks import candles_refresh_task

        # Sent from this process through Redis; only the worker process can act on it.
        candles_refresh_task.delay(asset.id)
        wait_for(lambda: Candle.objects.filter(asset=asset).count() == 200, 90, "200 candles in PostgreSQL", log)
    finally:
        stop(worker)
    assert "candles_refresh_task" in log.read_text()
    expected = read_klines_csv(klines_dir / "BTCUSDT-1h.csv", interval="1h")
    stored = list(Candle.objects.filter(asset=asset).order_by("open_time").values_list("open_time", "close"))
    assert [(k.open_dt, k.close) for k in expected] == stored
    assert stored[0][1] == Decimal("4308.83")
    assert Asset.objects.count() == 1
