"""Exchange connections through the API: owner only, read-only keys only, the secret never answered
and never stored in clear."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from portfolio.exchange import crypto
from portfolio.exchange.services import connection_keys_rotate, schedule_name
from portfolio.models import ExchangeConnection
from tests import factories

pytestmark = pytest.mark.django_db


def url(portfolio, connection=None, action=""):
    base = f"/api/v1/portfolios/{portfolio.id}/connections/"
    return base + (f"{connection.id}/" if connection else "") + (f"{action}/" if action else "")


@pytest.fixture
def owner_client(db):
    portfolio = factories.PortfolioFactory()
    client = APIClient()
    client.force_authenticate(portfolio.owner)
    return client, portfolio


def test_a_read_only_key_is_connected_and_its_secret_never_answered(owner_client, binance_account):
    client, portfolio = owner_client
    body = {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret, "label": "main"}
    response = client.post(url(portfolio), body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["key_last4"] == binance_account.api_key[-4:]
    assert data["sync_status"] == "queued"
    text = response.content.decode() + client.get(url(portfolio)).content.decode()
    assert binance_account.api_secret not in text and binance_account.api_key not in text
    # At rest: neither the secret nor the key in clear anywhere in the row.
    with db.cursor() as cursor:
        cursor.execute("SELECT * FROM portfolio_exchangeconnection")
        row = " ".join(str(v) for v in cursor.fetchone())
    assert binance_account.api_secret not in row and binance_account.api_key not in row
    saved = ExchangeConnection.objects.get()
    assert crypto.decrypt(saved.api_secret_encrypted) == binance_account.api_secret
    # Its hourly schedule on the ingest queue takes the connection's id only.
    task = PeriodicTask.objects.get(name=schedule_name(saved.id))
    assert task.queue == "ingest" and json.loads(task.kwargs) == {"connection_id": saved.id}
    assert task.args == "[]"


@pytest.mark.parametrize(
    "right", ["enableSpotAndMarginTrading", "enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer"]
)
def test_a_key_that_can_trade_withdraw_or_transfer_is_refused(owner_client, binance_account, right):
    client, portfolio = owner_client
    binance_account.permissions[right] = True
    body = {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret}
    response = client.post(url(portfolio), body, format="json")
    assert response.status_code == 400
    message = response.json()["error"]["fields"]["api_key"][0]
    assert right in message and "Enable Reading" in message
    assert binance_account.api_secret not in response.content.decode()
    assert not ExchangeConnection.objects.exists()


def test_a_wrong_secret_is_refused_with_what_to_do(owner_client, binance_account):
    client, portfolio = owner_client
    body = {"api_key": binance_account.api_key, "api_secret": "0" * 64}
    response = client.post(url(portfolio), body, format="json")
    assert response.status_code == 400
    assert "signature is not valid" in response.json()["error"]["fields"]["api_key"][0]


def test_the_same_key_twice_is_refused(owner_client, binance_account):
    client, portfolio = owner_client
    body = {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret}
    assert client.post(url(portfolio), body, format="json").status_code == 201
    again = client.post(url(portfolio), body, format="json")
    assert again.status_code == 400
    assert "already connected" in again.json()["error"]["fields"]["api_key"][0]


def test_another_user_can_neither_see_nor_use_a_connection(owner_client):
    client, portfolio = owner_client
    connection = factories.ExchangeConnectionFactory(portfolio=portfolio)
    stranger = APIClient()
    stranger.force_authenticate(factories.UserFactory(is_staff=True))
    assert stranger.get(url(portfolio)).status_code == 404
    assert stranger.get(url(portfolio, connection)).status_code == 404
    assert stranger.post(url(portfolio, connection, "sync")).status_code == 404
    assert stranger.delete(url(portfolio, connection)).status_code == 404
    # Nor through a portfolio of their own.
    theirs = factories.PortfolioFactory(owner=stranger.handler._force_user)
    assert stranger.get(url(theirs, connection)).status_code == 404
    assert ExchangeConnection.objects.filter(id=connection.id, sync_status="idle").exists()


def test_sync_now_queues_once(owner_client):
    client, portfolio = owner_client
    connection = factories.ExchangeConnectionFactory(portfolio=portfolio)
    first = client.post(url(portfolio, connection, "sync"))
    assert first.status_code == 202 and first.json()["sync_status"] == "queued"
    assert client.post(url(portfolio, connection, "sync")).status_code == 409


def test_deleting_a_connection_deletes_its_secret_and_schedule(owner_client, binance_account):
    client, portfolio = owner_client
    body = {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret}
    connection_id = client.post(url(portfolio), body, format="json").json()["id"]
    connection = ExchangeConnection.objects.get(id=connection_id)
    assert client.delete(url(portfolio, connection)).status_code == 204
    assert not ExchangeConnection.objects.exists()
    assert not PeriodicTask.objects.filter(name=schedule_name(connection_id)).exists()


def test_a_rotated_key_still_decrypts_and_rotation_reencrypts(settings):
    from cryptography.fernet import Fernet

    connection = factories.ExchangeConnectionFactory(api_secret="rotation0secret")
    old = list(settings.FERNET_KEYS)
    settings.FERNET_KEYS = [Fernet.generate_key().decode(), *old]
    assert crypto.decrypt(connection.api_secret_encrypted) == "rotation0secret"
    assert connection_keys_rotate() == 1
    settings.FERNET_KEYS = settings.FERNET_KEYS[:1]  # the old key gone
    connection.refresh_from_db()
    assert crypto.decrypt(connection.api_secret_encrypted) == "rotation0secret"
    settings.FERNET_KEYS = old
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(connection.api_secret_encrypted)


def test_binance_down_while_adding_says_so_quickly(owner_client, binance_account, fake_binance):
    client, portfolio = owner_client
    fake_binance.fail_next("500", count=None, path="sapi/v1/account/apiRestrictions")
    body = {"api_key": binance_account.api_key, "api_secret": binance_account.api_secret}
    response = client.post(url(portfolio), body, format="json")
    assert response.status_code == 400
    assert "did not answer" in response.json()["error"]["fields"]["api_key"][0]
    assert len(fake_binance.calls("sapi/v1/account/apiRestrictions")) == 2  # one retry, then the answer
    assert not ExchangeConnection.objects.exists()
