"""Importing a Binance account (the fake server's, with python-binance unchanged) into a portfolio."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from portfolio.exchange import sync
from portfolio.exchange.sync import exchange_sync
from portfolio.models import ExchangeConnection, PositionState, Transaction
from portfolio.services import portfolio_state_rebuild

pytestmark = pytest.mark.django_db


def holdings(portfolio) -> dict[str, Decimal]:
    return {
        p.asset.base_asset: p.quantity
        for p in PositionState.objects.filter(portfolio=portfolio).select_related("asset")
        if p.quantity != 0
    }


def test_a_first_sync_gives_the_holdings_of_the_accounts_own_records(connection, binance_account):
    report = exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active", connection.message
    assert connection.sync_status == "idle"
    assert connection.last_good_sync_at is not None
    assert report.trades == binance_account.trade_count
    assert holdings(connection.portfolio) == binance_account.holdings()
    # The stored state is what a replay of the whole history gives.
    before = list(PositionState.objects.filter(portfolio=connection.portfolio).order_by("asset_id").values())
    portfolio_state_rebuild(portfolio=connection.portfolio)
    after = list(PositionState.objects.filter(portfolio=connection.portfolio).order_by("asset_id").values())
    assert [{k: v for k, v in r.items() if k != "id"} for r in before] == [
        {k: v for k, v in r.items() if k != "id"} for r in after
    ]


def test_a_second_sync_writes_nothing_and_reads_only_what_is_new(connection, binance_account, fake_binance):
    exchange_sync(connection_id=connection.id)
    count = Transaction.objects.count()
    fake_binance.requests.clear()
    report = exchange_sync(connection_id=connection.id)
    assert Transaction.objects.count() == count
    assert report.created == 0
    # Each pair asked once, from after its last trade; capital history from a week back only.
    trade_calls = fake_binance.calls("myTrades")
    assert len(trade_calls) == len(binance_account.pairs)
    for call in trade_calls:
        last = binance_account.trades[call.params["symbol"]][-1]["id"]
        assert int(call.params["fromId"]) == last + 1
    assert len(fake_binance.calls("sapi/v1/capital/deposit/hisrec")) == 1


def test_new_trades_arrive_at_the_next_sync(connection, binance_account):
    exchange_sync(connection_id=connection.id)
    trades = binance_account.trades["ETHBTC"]
    later = dict(trades[-1], id=trades[-1]["id"] + 10, time=trades[-1]["time"] + 3_600_000, isBuyer=True)
    binance_account.balances["ETH"] += Decimal(later["qty"]) - Decimal(later["commission"])
    binance_account.balances["BTC"] -= Decimal(later["quoteQty"])
    trades.append(later)
    report = exchange_sync(connection_id=connection.id)
    assert report.trades == 1 and report.created == 3  # ETH bought, BTC sold, ETH commission
    assert holdings(connection.portfolio) == binance_account.holdings()


def test_a_sync_stopped_mid_way_resumes_without_duplicates(connection, binance_account, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 50)
    real_write, written = sync.write_page, []

    def dying_write(*args, **kwargs):
        if len(written) == 3:
            raise KeyboardInterrupt  # what a killed worker leaves: no error handling runs
        real_write(*args, **kwargs)
        written.append(1)

    monkeypatch.setattr(sync, "write_page", dying_write)
    with pytest.raises(KeyboardInterrupt):
        exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.sync_status == "running"
    partial = Transaction.objects.count()
    assert 0 < partial
    # While the lost worker's heartbeat is fresh nobody takes over; once stale, the next one does.
    monkeypatch.setattr(sync, "write_page", real_write)
    assert exchange_sync(connection_id=connection.id) is None
    ExchangeConnection.objects.filter(id=connection.id).update(
        sync_heartbeat_at=connection.sync_heartbeat_at - sync.STALE_AFTER * 2
    )
    report = exchange_sync(connection_id=connection.id)
    assert report.created == Transaction.objects.count() - partial
    ids = list(Transaction.objects.values_list("external_id", flat=True))
    assert len(ids) == len(set(ids))
    assert holdings(connection.portfolio) == binance_account.holdings()


def test_a_page_that_fails_is_not_kept(connection, binance_account, monkeypatch):
    monkeypatch.setattr(sync, "PAGE_SIZE", 100)
    real_state_write, calls = sync.state_write, []

    def failing_state_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        real_state_write(*args, **kwargs)

    monkeypatch.setattr(sync, "state_write", failing_state_write)
    with pytest.raises(RuntimeError):
        exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "error" and connection.sync_status == "idle"
    # Exactly the first page: its transactions and its cursors, nothing of the second.
    assert Transaction.objects.count() == connection.imported
    assert 0 < connection.imported
    assert connection.cursors
    monkeypatch.setattr(sync, "state_write", real_state_write)
    exchange_sync(connection_id=connection.id)
    assert holdings(connection.portfolio) == binance_account.holdings()


def test_fills_already_imported_from_csv_are_reported_not_doubled(connection, binance_account):
    from portfolio.transactions_csv import transactions_import_csv

    def when(ms: int) -> str:
        return f"{datetime.fromtimestamp(ms // 1000, tz=UTC):%Y-%m-%dT%H:%M:%SZ}"

    deposit = next(d for d in binance_account.deposits if d["coin"] == "BTC")
    trade = binance_account.trades["BTCUSDT"][0]
    kind = "buy" if trade["isBuyer"] else "sell"
    transactions_import_csv(
        portfolio=connection.portfolio,
        text="executed_at,kind,symbol,quantity,unit_price,fee,note\n"
        f"{when(deposit['insertTime'])},transfer_in,BTCUSDT,{deposit['amount']},1,0,\n"
        f"{when(trade['time'])},{kind},BTCUSDT,{trade['qty']},{trade['price']},0,typed earlier\n",
    )
    report = exchange_sync(connection_id=connection.id)
    # The trade only: the deposit's price differs (the sync values it by its candle), so it is new.
    assert report.duplicates == 1
    assert not Transaction.objects.filter(external_id=f"binance:trade:BTCUSDT:{trade['id']}").exists()
    assert Transaction.objects.filter(external_id=f"binance:deposit:{deposit['id']}").exists()
    connection.refresh_from_db()
    assert "1 already in the portfolio" in connection.message


def test_a_key_that_gained_rights_suspends_the_connection(connection, binance_account, fake_binance):
    binance_account.permissions["enableSpotAndMarginTrading"] = True
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "suspended"
    assert "enableSpotAndMarginTrading" in connection.message and "Enable Reading" in connection.message
    assert not Transaction.objects.exists()
    # The schedule reads nothing from a suspended connection ...
    fake_binance.requests.clear()
    assert exchange_sync(connection_id=connection.id) is None
    assert fake_binance.calls() == []
    # ... until "sync now" finds the key read-only again.
    from portfolio.exchange.services import connection_sync_request

    binance_account.permissions["enableSpotAndMarginTrading"] = False
    ExchangeConnection.objects.filter(id=connection.id).update(sync_status="queued")
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active"
    assert connection_sync_request is not None


@pytest.mark.parametrize(
    ("breakage", "says"),
    [
        ("removed", "refused the API key"),
        ("secret", "signature is not valid"),
    ],
)
def test_key_errors_say_what_to_do(connection, binance_account, fake_binance, breakage, says):
    if breakage == "removed":
        fake_binance.remove_account(binance_account.api_key)
    else:
        binance_account.api_secret = "another-secret"
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "error"
    assert says in connection.message
    assert connection.last_good_sync_at is None
    assert connection.sync_status == "idle"


def test_a_skewed_clock_is_corrected_against_binances_time(connection, binance_account, fake_binance, caplog):
    fake_binance.clock_offset_ms = -20_000  # Binance 20 s behind us: every timestamp "ahead"
    with caplog.at_level(logging.WARNING):
        exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active", connection.message
    assert "clock differs from Binance's" in caplog.text


def test_clock_skew_without_correction_says_what_to_do(connection, binance_account, fake_binance):
    from tests.support.exchange import account_client

    fake_binance.clock_offset_ms = 70_000  # beyond any recvWindow
    client = account_client(binance_account, fake_binance, correct_clock=False)
    exchange_sync(connection_id=connection.id, client=client)
    connection.refresh_from_db()
    assert connection.state == "error"
    assert "-1021" in connection.message and "NTP" in connection.message


def test_rate_limits_are_waited_out_as_binance_asks(connection, binance_account, fake_binance):
    fake_binance.fail_next("429", count=2, path="myTrades", retry_after=0)
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active"
    statuses = [c.status for c in fake_binance.calls("myTrades")]
    assert statuses[:3] == [429, 429, 200]


def test_binance_down_keeps_the_last_good_sync(connection, binance_account, fake_binance):
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    good = connection.last_good_sync_at
    fake_binance.fail_next("500", count=None, path="account")
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "error" and "did not answer" in connection.message
    assert connection.last_good_sync_at == good


def test_the_secret_never_reaches_a_log(connection, binance_account, fake_binance, caplog):
    fake_binance.fail_next("429", count=1, path="myTrades", retry_after=0)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger().setLevel(logging.DEBUG)
        exchange_sync(connection_id=connection.id)
        binance_account.api_secret = "changed"  # a failing sync too
        ExchangeConnection.objects.filter(id=connection.id).update(cursors={})
        exchange_sync(connection_id=connection.id)
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert len(caplog.records) > 5  # the capture saw the sync (urllib3's requests among them)
    secret = connection.portfolio.exchange_connections.get().api_secret_encrypted
    from tests.support.exchange import secret_of

    assert secret_of(connection) not in text
    assert binance_account.api_key not in text
    assert secret not in text


def test_coins_without_a_tracked_asset_start_tracking(binance_account, fake_binance, db):
    from forecasting.models import Asset
    from tests import factories

    Asset.objects.filter(symbol="BNBUSDT").update(tracked=False)
    conn = factories.ExchangeConnectionFactory(api_key=binance_account.api_key, api_secret=binance_account.api_secret)
    exchange_sync(connection_id=conn.id)
    conn.refresh_from_db()
    assert conn.state == "active", conn.message
    bnb = Asset.objects.get(symbol="BNBUSDT")
    assert bnb.tracked and bnb.tracked_by == conn.portfolio.owner


def test_a_cross_pair_records_both_legs_valued_through_usdt(connection, binance_account):
    exchange_sync(connection_id=connection.id)
    trade = binance_account.trades["ETHBTC"][0]
    ext = f"binance:trade:ETHBTC:{trade['id']}"
    base = Transaction.objects.select_related("asset").get(external_id=ext)
    quote = Transaction.objects.select_related("asset").get(external_id=f"{ext}:quote")
    assert (base.asset.symbol, quote.asset.symbol) == ("ETHUSDT", "BTCUSDT")
    assert {base.kind, quote.kind} == {"buy", "sell"}
    assert base.quantity == Decimal(trade["qty"]) and quote.quantity == Decimal(trade["quoteQty"])
    # The ETH leg's value is the BTC leg's: price in BTC times BTC's USDT candle close.
    assert base.unit_price == (Decimal(trade["price"]) * quote.unit_price).quantize(Decimal("1e-8"))
    fee = Transaction.objects.get(external_id=f"{ext}:fee")
    assert fee.kind == "fee" and fee.quantity == Decimal(trade["commission"])
    # A USDT commission (a sell on a USDT pair) is the trade's own fee.
    sold = next(t for t in binance_account.trades["BTCUSDT"] if not t["isBuyer"] and t["commissionAsset"] == "USDT")
    row = Transaction.objects.get(external_id=f"binance:trade:BTCUSDT:{sold['id']}")
    assert row.fee == Decimal(sold["commission"])
    assert not Transaction.objects.filter(external_id=f"binance:trade:BTCUSDT:{sold['id']}:fee").exists()


def test_the_sync_waits_for_the_next_minute_near_the_weight_budget(connection, binance_account, fake_binance):
    from tests.support.exchange import account_client

    waits = []
    client = account_client(binance_account, fake_binance, weight_limit=60, sleep=waits.append)
    exchange_sync(connection_id=connection.id, client=client)
    assert waits and all(0 < w <= 61 for w in waits)


def test_the_task_takes_the_connection_id_only(connection, binance_account, settings):
    from portfolio.tasks import exchange_sync_task

    settings.CELERY_TASK_ALWAYS_EAGER = True
    result = exchange_sync_task.delay(connection.id).get()
    assert result["connection_id"] == connection.id and result["created"] > 0
    assert exchange_sync_task.delay(10**9).get() is None  # gone: nothing to do


def test_a_connection_deleted_with_its_portfolio_takes_its_schedule_at_the_next_run(binance_account, db):
    from django_celery_beat.models import PeriodicTask

    from portfolio.exchange.services import connection_create, schedule_name
    from tests import factories

    portfolio = factories.PortfolioFactory()
    conn = connection_create(
        portfolio=portfolio, api_key=binance_account.api_key, api_secret=binance_account.api_secret
    )
    portfolio.delete()
    assert PeriodicTask.objects.filter(name=schedule_name(conn.id)).exists()
    assert exchange_sync(connection_id=conn.id) is None
    assert not PeriodicTask.objects.filter(name=schedule_name(conn.id)).exists()


def test_a_pair_binance_no_longer_answers_for_is_reported_and_skipped(connection, binance_account, fake_binance):
    binance_account.pairs["BTCBNB"] = ("BTC", "BNB")  # listed, no trades, refused by myTrades
    fake_binance.delisted.add("BTCBNB")
    exchange_sync(connection_id=connection.id)
    connection.refresh_from_db()
    assert connection.state == "active", connection.message
    assert "no longer answers for (BTCBNB)" in connection.message
    assert holdings(connection.portfolio) == binance_account.holdings()
