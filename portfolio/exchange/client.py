"""The signed Binance client of a connection: python-binance's real `Client` with the key and
secret, behind the market-data adapter's timeouts and retries (429/418 honouring Retry-After,
5xx, network errors), with Binance's error codes turned into what the person should do.

Nothing here logs or raises text containing the secret: it only goes into python-binance, which
uses it for the HMAC of each request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from binance.client import Client
from binance.exceptions import BinanceAPIException
from django.conf import settings

from forecasting.binance import RETRY_STATUSES, BinanceError, BinanceMarketData

log = logging.getLogger(__name__)

# Rights a key must not have: only "enableReading" (and read-only FIX) may be on.
READ_RIGHTS = {"enableReading", "enableFixReadOnly"}
HOW_TO_READ_ONLY = (
    "Create a read-only key in Binance (Profile → API Management → Create API → System generated), "
    "leave only “Enable Reading” ticked, and add that key here."
)
# Weights of the endpoints the sync calls (Binance's documentation), for the per-minute budget.
WEIGHTS = {"account": 20, "my trades": 20, "exchange info": 20, "klines": 2}


class ExchangeError(Exception):
    """A request to the exchange failed; the message says what to do. `kind` is one of key,
    signature, clock, rights, rate, down, other."""

    def __init__(self, message: str, *, kind: str = "other", code: int | None = None):
        super().__init__(message)
        self.kind, self.code = kind, code


def forbidden_rights(permissions: dict) -> list[str]:
    """The rights of a key beyond reading: every true enable*/permits* field but reading's."""
    return sorted(
        name
        for name, value in permissions.items()
        if value is True and name.startswith(("enable", "permits")) and name not in READ_RIGHTS
    )


def rights_message(rights: list[str]) -> str:
    return (
        f"This API key can do more than read ({', '.join(rights)}); Make Us Rich refuses keys that can "
        f"trade, withdraw or transfer. {HOW_TO_READ_ONLY}"
    )


class BinanceAccount(BinanceMarketData):
    """One account's signed endpoints (and the market data the sync values legs with)."""

    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        api_url: str | None = None,
        correct_clock: bool = True,
        weight_limit: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **kwargs,
    ) -> None:
        super().__init__(api_url=api_url, sleep=sleep, **kwargs)
        base = self.client.API_URL
        self.client = Client(api_key, api_secret, ping=False, requests_params={"timeout": self.timeout})
        # python-binance has no base-URL argument; API_URL and MARGIN_API_URL (sapi) are its attributes.
        self.client.API_URL = base
        self.client.MARGIN_API_URL = base.removesuffix("/api") + "/sapi"
        self.correct_clock = correct_clock
        self.weight_limit = settings.EXCHANGE_WEIGHT_LIMIT if weight_limit is None else weight_limit
        self.requests = 0

    # -- calls -----------------------------------------------------------------------------------

    def _pace(self, what: str) -> None:
        """Wait for the next minute when this request would take the used weight past the budget."""
        response = getattr(self.client, "response", None)
        if response is None:
            return
        used = response.headers.get("X-MBX-USED-WEIGHT-1M")
        weight = WEIGHTS.get(what.split(" for ")[0], 1)
        if used is not None and used.isdigit() and int(used) + weight > self.weight_limit:
            delay = 60 - time.time() % 60 + 0.5
            log.warning(
                "Binance request weight %s of %s used this minute; waiting %.0fs", used, self.weight_limit, delay
            )
            self._sleep(delay)

    def _call(self, what: str, fn: Callable, **params):
        self.requests += 1  # calls made (klines for prices included), for the sync's report
        return super()._call(what, fn, **params)

    def signed(self, what: str, fn: Callable, **params):
        """A request with Binance's errors as ExchangeError; a clock Binance finds off is measured
        against its server time and the request tried once more."""
        self._pace(what)
        for attempt in (0, 1):
            try:
                return self._call(what, fn, **params)
            except BinanceError as exc:
                cause = exc.__cause__
                code = cause.code if isinstance(cause, BinanceAPIException) else None
                if code == -1021 and attempt == 0 and self.correct_clock:
                    self._correct_clock()
                    continue
                raise _explain(exc, cause, code, what) from None

    def _correct_clock(self) -> None:
        before = time.time() * 1000
        server = self.server_time_ms()
        offset = int(server - (before + time.time() * 1000) / 2)
        self.client.timestamp_offset = offset
        log.warning(
            "This server's clock differs from Binance's by %d ms; signing with Binance's time "
            "(keep the clock in sync with NTP)",
            offset,
        )

    # -- endpoints ---------------------------------------------------------------------------------

    def permissions(self) -> dict:
        return self.signed("key permissions", self.client.get_account_api_permissions)

    def account(self) -> dict:
        return self.signed("account", self.client.get_account)

    def exchange_symbols(self) -> dict[str, tuple[str, str]]:
        """Every pair Binance lists: symbol -> (base, quote)."""
        info = self.signed("exchange info", self.client.get_exchange_info)
        return {s["symbol"]: (s["baseAsset"], s["quoteAsset"]) for s in info.get("symbols", [])}

    def my_trades(self, symbol: str, *, from_id: int, limit: int = 1000) -> list[dict]:
        return self.signed(
            f"my trades for {symbol}", self.client.get_my_trades, symbol=symbol, fromId=from_id, limit=limit
        )

    def deposits(self, *, start_ms: int, end_ms: int, offset: int = 0, limit: int = 1000) -> list[dict]:
        return self.signed(
            "deposit history",
            self.client.get_deposit_history,
            startTime=start_ms,
            endTime=end_ms,
            offset=offset,
            limit=limit,
        )

    def withdrawals(self, *, start_ms: int, end_ms: int, offset: int = 0, limit: int = 1000) -> list[dict]:
        return self.signed(
            "withdrawal history",
            self.client.get_withdraw_history,
            startTime=start_ms,
            endTime=end_ms,
            offset=offset,
            limit=limit,
        )


def _explain(exc: BinanceError, cause, code: int | None, what: str) -> ExchangeError:
    status = cause.status_code if isinstance(cause, BinanceAPIException) else None
    if code in (-2014, -2015):
        return ExchangeError(
            f"Binance refused the API key (code {code}): it is mistyped, was deleted in Binance, or its IP "
            f"restriction does not include this server. Check the key in Binance → API Management; if it is "
            f"gone, delete this connection and add a new read-only key. {HOW_TO_READ_ONLY}",
            kind="key",
        )
    if code == -1022:
        return ExchangeError(
            "Binance says the request's signature is not valid (code -1022): the secret does not belong to "
            "this API key. Delete this connection and add the key again with its own secret.",
            kind="signature",
        )
    if code == -1021:
        return ExchangeError(
            "Binance refused the request's timestamp (code -1021: outside recvWindow): this server's clock is "
            "too far from Binance's. The administrator should sync the server clock (NTP); the next sync "
            "tries again.",
            kind="clock",
        )
    if status in RETRY_STATUSES:
        return ExchangeError(
            f"Binance is limiting requests (HTTP {status}) and kept doing so after waiting as it asked "
            f"(Retry-After). Nothing half-done was kept; the next sync continues where this one stopped.",
            kind="rate",
        )
    if status is None or status >= 500:
        return ExchangeError(
            f"Binance did not answer {what} ({exc}). It may be down or unreachable; nothing half-done was kept "
            f"and the next sync continues where this one stopped.",
            kind="down",
        )
    return ExchangeError(f"Binance refused {what}: {exc}", kind="other", code=code)
