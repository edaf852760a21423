"""Writing exchange connections: add (after Binance confirms the key is read-only), remove,
ask for a sync now, and the hourly schedule each connection has in django-celery-beat."""

from __future__ import annotations

import hashlib
import json
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from ..models import ExchangeConnection, Portfolio
from . import crypto
from .client import BinanceAccount, ExchangeError, forbidden_rights, rights_message

log = logging.getLogger(__name__)

SYNC_TASK = "portfolio.tasks.exchange_sync_task"


def schedule_name(connection_id: int) -> str:
    return f"Sync exchange connection {connection_id}"


def key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def credentials(connection: ExchangeConnection) -> tuple[str, str]:
    """The key and secret in clear, for the client only (crypto.SecretUnreadable without the key)."""
    return crypto.decrypt(connection.api_key_encrypted), crypto.decrypt(connection.api_secret_encrypted)


def account_client(connection: ExchangeConnection, **kwargs) -> BinanceAccount:
    api_key, api_secret = credentials(connection)
    return BinanceAccount(api_key=api_key, api_secret=api_secret, **kwargs)


def connection_key_errors(*, portfolio: Portfolio, api_key: str, api_secret: str) -> dict[str, str]:
    """The rules a new key meets before anyone asks Binance about it."""
    errors = {}
    for name, value in (("api_key", api_key), ("api_secret", api_secret)):
        if not value:
            errors[name] = "This field is required."
        elif len(value) > 128 or not value.isascii() or not value.isalnum():
            errors[name] = "A Binance API key or secret is up to 128 letters and digits; copy it again from Binance."
    if "api_key" not in errors and portfolio.exchange_connections.filter(key_hash=key_hash(api_key)).exists():
        errors["api_key"] = "This API key is already connected to this portfolio."
    return errors


def connection_create(
    *, portfolio: Portfolio, api_key: str, api_secret: str, label: str = "", client: BinanceAccount | None = None
) -> ExchangeConnection:
    """A new connection, after Binance confirms the key works and can only read (ValidationError
    otherwise, saying why and how to make a read-only key). Its hourly sync is scheduled and a
    first sync queued once the transaction commits."""
    api_key, api_secret, label = api_key.strip(), api_secret.strip(), label.strip()
    errors = connection_key_errors(portfolio=portfolio, api_key=api_key, api_secret=api_secret)
    if errors:
        raise ValidationError(errors)
    # A person is waiting for the answer: one retry, not the worker's patient backoff.
    client = client or BinanceAccount(api_key=api_key, api_secret=api_secret, max_retries=1)
    try:
        permissions = client.permissions()
    except ExchangeError as exc:
        raise ValidationError({"api_key": str(exc)}) from None
    rights = forbidden_rights(permissions)
    if rights:
        raise ValidationError({"api_key": rights_message(rights)})
    if not permissions.get("enableReading"):
        raise ValidationError(
            {"api_key": "This API key cannot read the account; tick “Enable Reading” for it in Binance."}
        )
    with transaction.atomic():
        connection = ExchangeConnection(
            portfolio=portfolio,
            label=label[:100],
            key_last4=api_key[-4:],
            key_hash=key_hash(api_key),
            api_key_encrypted=crypto.encrypt(api_key),
            api_secret_encrypted=crypto.encrypt(api_secret),
            sync_status=ExchangeConnection.SyncStatus.QUEUED,
            progress_note="First sync queued",
        )
        connection.full_clean()
        connection.save()
        _schedule_create(connection)
        _enqueue(connection.id)
    log.info("Exchange connection %s added to portfolio %s", connection.id, portfolio.id)
    return connection


def _schedule_create(connection: ExchangeConnection) -> None:
    fields = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}
    fields.update(settings.EXCHANGE_SYNC_CRON)
    crontab, _ = CrontabSchedule.objects.get_or_create(timezone="UTC", **fields)
    PeriodicTask.objects.update_or_create(
        name=schedule_name(connection.id),
        defaults={
            "task": SYNC_TASK,
            "crontab": crontab,
            "kwargs": json.dumps({"connection_id": connection.id}),
            "queue": "ingest",
            "enabled": True,
        },
    )


def _enqueue(connection_id: int) -> None:
    from ..tasks import exchange_sync_task

    # robust: with the queue down, the hourly schedule syncs instead.
    transaction.on_commit(lambda: exchange_sync_task.delay(connection_id), robust=True)


@transaction.atomic
def connection_delete(*, connection: ExchangeConnection) -> None:
    """The connection, its encrypted key and secret and its schedule; imported transactions stay."""
    PeriodicTask.objects.filter(name=schedule_name(connection.id)).delete()
    connection.delete()


@transaction.atomic
def connection_sync_request(*, connection: ExchangeConnection) -> bool:
    """Queue a sync now (the owner's or staff's button); False when one is queued or running."""
    updated = ExchangeConnection.objects.filter(
        id=connection.id, sync_status=ExchangeConnection.SyncStatus.IDLE
    ).update(sync_status=ExchangeConnection.SyncStatus.QUEUED, progress_note="Sync queued")
    if updated:
        connection.sync_status = ExchangeConnection.SyncStatus.QUEUED
        _enqueue(connection.id)
    return bool(updated)


def connection_keys_rotate() -> int:
    """Every stored key and secret re-encrypted with the first of MUR_FERNET_KEYS."""
    count = 0
    for connection in ExchangeConnection.objects.only("id", "api_key_encrypted", "api_secret_encrypted"):
        ExchangeConnection.objects.filter(id=connection.id).update(
            api_key_encrypted=crypto.rotate(connection.api_key_encrypted),
            api_secret_encrypted=crypto.rotate(connection.api_secret_encrypted),
        )
        count += 1
    return count
