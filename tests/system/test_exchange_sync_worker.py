"""An exchange sync on a real Celery worker, killed (SIGKILL) between two pages, then taken over:
whole pages only were kept, and the sync that takes over finishes without a duplicate."""

from __future__ import annotations

import os
import signal

import pytest

from forecasting.models import Asset
from portfolio.exchange.sync import STALE_AFTER, exchange_sync
from portfolio.models import ExchangeConnection, PositionState, Transaction
from tests import factories
from tests.fakes.binance_account import generate_account
from tests.support.processes import clean_env, database_url_for_subprocess, start_worker, stop, wait_for

pytestmark = pytest.mark.services

PAIRS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "ETHBTC", "BNBBTC"]


@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_mid_way_on_a_worker_resumes_without_duplicates(
    on_postgres, redis_url, fake_binance, settings, tmp_path
):
    account = generate_account(fake_binance, pairs=PAIRS, trades=2500, seed=11)
    fake_binance.add_account(account)
    for coin in ("BTC", "ETH", "BNB"):
        Asset.objects.create(symbol=f"{coin}USDT", base_asset=coin, quote_asset="USDT")
    connection = factories.ExchangeConnectionFactory(api_key=account.api_key, api_secret=account.api_secret)
    # Slow price pages spread the pages out in time: each page fetches the candles it values with.
    fake_binance.fail_next("slow", count=None, path="klines", delay=0.4)
    log = tmp_path / "worker.log"
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.test",
        DATABASE_URL=database_url_for_subprocess(),
        REDIS_URL=redis_url,
        MUR_BINANCE_API_URL=fake_binance.api_url,
        MUR_EXCHANGE_HISTORY_START="2020-10-01",
    )
    worker = start_worker(env, "ingest", "exchange-test", log)
    try:
        from portfolio.tasks import exchange_sync_task

        exchange_sync_task.delay(connection.id)

        def first_page_written():
            c = ExchangeConnection.objects.get(id=connection.id)
            return c.progress_total and 0 < c.progress_done < c.progress_total

        wait_for(first_page_written, 120, "the first page written", log, interval=0.05)
        os.kill(worker.pid, signal.SIGKILL)  # no handler runs: what a lost machine leaves
        worker.wait(timeout=30)
    finally:
        stop(worker)
    connection.refresh_from_db()
    assert connection.sync_status == "running"
    kept = Transaction.objects.count()
    assert 0 < kept == connection.imported  # whole pages: every row counted with its page's cursors
    assert connection.cursors

    fake_binance.reset()
    fake_binance.add_account(account)
    # Nobody takes over while the lost worker's heartbeat is fresh; once stale, the next sync does.
    assert exchange_sync(connection_id=connection.id) is None
    ExchangeConnection.objects.filter(id=connection.id).update(
        sync_heartbeat_at=connection.sync_heartbeat_at - STALE_AFTER * 2
    )
    report = exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active", connection.message
    assert report.created == Transaction.objects.count() - kept
    ids = list(Transaction.objects.values_list("external_id", flat=True))
    assert len(ids) == len(set(ids))
    held = {
        p.asset.base_asset: p.quantity
        for p in PositionState.objects.filter(portfolio=connection.portfolio).select_related("asset")
        if p.quantity != 0
    }
    assert held == account.holdings()
