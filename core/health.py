"""GET /healthz: the database, the broker and every registered check in one JSON answer.

Apps add checks of their own (forecasting: candle freshness) with `register` in their
AppConfig.ready(), so this module needs to know no app."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .broker import check_broker

# name -> check(); a check returns (healthy, body) and runs only while the database answers.
_checks: dict[str, Callable[[], tuple[bool, object]]] = {}


def register(name: str, check: Callable[[], tuple[bool, object]]) -> None:
    _checks[name] = check


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"; the message says which
        return {"ok": False, "error": str(exc)[:200]}


# Outside ATOMIC_REQUESTS: opening the request transaction would itself fail with the database
# down, turning the 503 answer into a 500.
@transaction.non_atomic_requests
@require_safe
@never_cache
def healthz(request):
    database = check_database()
    broker = check_broker()
    healthy = database["ok"] and broker["ok"]
    body = {"status": "", "database": database, "broker": broker}
    for name, check in _checks.items():
        ok, result = check() if database["ok"] else (True, [])
        healthy = healthy and ok
        body[name] = result
    body["status"] = "ok" if healthy else "unhealthy"
    return JsonResponse(body, status=200 if healthy else 503)
