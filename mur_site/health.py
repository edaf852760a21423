"""GET /healthz: database, broker and candle freshness in one JSON answer."""

from __future__ import annotations

from django.conf import settings
from django.db import connection, transaction
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from forecasting.intervals import interval_ms

from .broker import check_broker


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
    from forecasting.selectors.market_data import newest_candle_ages

    database = check_database()
    broker = check_broker()
    candles = []
    fresh = True
    if database["ok"]:
        limit = settings.HEALTH_MAX_CANDLE_AGE_INTERVALS
        for row in newest_candle_ages():
            asset = row["asset"]
            if limit:
                # An asset without any candle counts as stale: its backfill never ran.
                max_age = limit * interval_ms(asset.interval) / 1000
                stale = row["age_seconds"] is None or row["age_seconds"] > max_age
            else:
                stale = False
            fresh = fresh and not stale
            candles.append({
                "symbol": asset.symbol,
                "interval": asset.interval,
                "newest_close": row["newest_close"].isoformat() if row["newest_close"] else None,
                "age_seconds": round(row["age_seconds"], 1) if row["age_seconds"] is not None else None,
                "stale": stale,
            })
    healthy = database["ok"] and broker["ok"] and fresh
    body = {"status": "ok" if healthy else "unhealthy", "database": database, "broker": broker, "candles": candles}
    return JsonResponse(body, status=200 if healthy else 503)
