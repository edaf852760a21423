"""Importing a Binance account (the fake server's, with python-binance unchanged) into a portfolio."""

from __future__ import annotations

from decimal import Decimal

import pytest

from portfolio.exchange.sync import exchange_sync
from portfolio.models import PositionState
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
