"""The pages of exchange connections: add, state on the portfolio page, sync now, remove; admin."""

from __future__ import annotations

import re

import pytest

from portfolio.exchange.sync import exchange_sync
from portfolio.models import ExchangeConnection
from tests import factories

pytestmark = pytest.mark.django_db


def test_adding_a_read_only_key_shows_the_connection_on_the_portfolio_page(client, binance_account):
    portfolio = factories.PortfolioFactory()
    client.force_login(portfolio.owner)
    response = client.post(
        f"/portfolios/{portfolio.id}/connections/add/",
        {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret, "label": "Main"},
    )
    assert response.status_code == 302
    page = client.get(f"/portfolios/{portfolio.id}/").content.decode()
    assert f"Binance …{binance_account.api_key[-4:]}" in page
    assert "Sync queued" in page and "none yet" in page
    assert binance_account.api_secret not in page and binance_account.api_key not in page


def test_a_trading_key_is_refused_on_the_form_without_echoing_the_secret(client, binance_account):
    portfolio = factories.PortfolioFactory()
    client.force_login(portfolio.owner)
    binance_account.permissions["enableWithdrawals"] = True
    response = client.post(
        f"/portfolios/{portfolio.id}/connections/add/",
        {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "enableWithdrawals" in page and "Enable Reading" in page
    assert binance_account.api_secret not in page
    assert not ExchangeConnection.objects.exists()


def test_the_page_shows_the_last_good_sync_and_what_to_do_after_an_error(client, connection, binance_account):
    exchange_sync(connection_id=connection.id)
    binance_account.api_secret = "changed"
    exchange_sync(connection_id=connection.id)
    client.force_login(connection.portfolio.owner)
    page = client.get(f"/portfolios/{connection.portfolio.id}/").content.decode()
    assert "Last sync failed" in page
    assert "add the key again with its own secret" in page
    assert re.search(r"Last good sync:\s*<time", page)


def test_sync_now_and_remove_are_the_owners_only(client, connection):
    portfolio = connection.portfolio
    client.force_login(factories.UserFactory(is_staff=True))
    assert client.post(f"/portfolios/{portfolio.id}/connections/{connection.id}/sync/").status_code == 404
    assert client.post(f"/portfolios/{portfolio.id}/connections/{connection.id}/delete/").status_code == 404
    assert client.get(f"/portfolios/{portfolio.id}/connections/add/").status_code == 404
    client.force_login(portfolio.owner)
    assert client.post(f"/portfolios/{portfolio.id}/connections/{connection.id}/sync/").status_code == 302
    connection.refresh_from_db()
    assert connection.sync_status == "queued"
    assert client.post(f"/portfolios/{portfolio.id}/connections/{connection.id}/delete/").status_code == 302
    assert not ExchangeConnection.objects.exists()


def test_admin_never_shows_the_key_or_secret(admin_client, connection, binance_account):
    pages = [
        admin_client.get("/admin/portfolio/exchangeconnection/"),
        admin_client.get(f"/admin/portfolio/exchangeconnection/{connection.id}/change/"),
    ]
    for response in pages:
        assert response.status_code == 200
        text = response.content.decode()
        assert binance_account.api_secret not in text and binance_account.api_key not in text
        assert connection.api_secret_encrypted not in text and connection.api_key_encrypted not in text


def test_staff_can_sync_any_connection_from_admin(admin_client, connection):
    response = admin_client.post(
        "/admin/portfolio/exchangeconnection/",
        {"action": "sync_now", "_selected_action": [connection.id]},
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.sync_status == "queued"


def test_a_running_sync_shows_its_progress_and_the_page_follows_it(client, connection):
    ExchangeConnection.objects.filter(id=connection.id).update(
        sync_status="running", progress_done=2000, progress_total=5000, progress_note="Imported 2000 of 5000 records"
    )
    client.force_login(connection.portfolio.owner)
    page = client.get(f"/portfolios/{connection.portfolio.id}/").content.decode()
    assert "Syncing: Imported 2000 of 5000 records" in page
    assert '<progress max="5000" value="2000">' in page
    assert '<meta http-equiv="refresh" content="15">' in page
    ExchangeConnection.objects.filter(id=connection.id).update(sync_status="queued")
    page = client.get(f"/portfolios/{connection.portfolio.id}/").content.decode()
    assert "Sync queued" in page and "http-equiv" not in page
