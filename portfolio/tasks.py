"""Thin Celery tasks: take ids, call services."""

import logging

from celery import shared_task

log = logging.getLogger(__name__)


# acks_late: a worker lost mid-sync hands the message back; the next run takes over once the
# lost one's heartbeat is stale, after the pages it had written.
@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def exchange_sync_task(connection_id: int) -> dict | None:
    from .exchange.sync import exchange_sync

    report = exchange_sync(connection_id=connection_id)
    if report is None:
        return None
    return {"connection_id": connection_id, "created": report.created, "duplicates": report.duplicates}
