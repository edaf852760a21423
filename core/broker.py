"""Is the task queue (the Celery broker) reachable? Used by /healthz and by actions that enqueue."""

from __future__ import annotations

import os

from django.conf import settings


class QueueUnavailableError(Exception):
    """The task queue cannot be reached, so nothing was queued."""


def check_broker(timeout: float = 1.0) -> dict:
    # The project's Celery app is the current one once Django has loaded its configuration package.
    from celery import current_app as app

    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            # No sleep between attempts: a check answers fast or says "down".
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            transport = conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_name
            if transport == "filesystem":
                # Connecting to the filesystem transport always succeeds; publishing needs the folders.
                options = conn.transport_options
                for key in ("data_folder_in", "data_folder_out"):
                    folder = options.get(key)
                    if not folder or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
                        return {"ok": False, "error": f"broker folder {key}={folder!r} is missing or read-only"}
        return {"ok": True, "transport": str(transport)}
    except Exception as exc:
        return {"ok": False, "error": str(exc)[:200]}


def broker_require() -> None:
    """Raise QueueUnavailableError unless a task could be queued now (always true when eager)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    state = check_broker()
    if not state["ok"]:
        raise QueueUnavailableError(
            f"The task queue is unavailable ({state['error']}); nothing was queued. Try again once it is back."
        )
