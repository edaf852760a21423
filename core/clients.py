"""Who a request comes from, one rule for every limit: the connection's address, or the one our
trusted proxies saw (REST_FRAMEWORK["NUM_PROXIES"], from MUR_TRUSTED_PROXIES)."""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle


def client_address(request) -> str:
    # DRF's own rule, so the API's throttles and the site's limits agree on who a client is.
    return BaseThrottle().get_ident(request)
