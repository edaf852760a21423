"""The market-data adapter around python-binance's real `Client`.

Adds what the client lacks: a configurable base URL, timeouts, retries with backoff on
429/418/5xx (honouring Retry-After) and on network errors, and validation of every row.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from django.conf import settings

from .klines import Kline, KlineError, describe_time, parse_kline

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000
RETRY_STATUSES = {418, 429}


class BinanceError(Exception):
    """Binance could not give us what we asked for (after retries, or a permanent error)."""


class UnknownSymbolError(BinanceError):
    pass


class BinanceMarketData:
    def __init__(
        self,
        *,
        api_url: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        backoff_base: float | None = None,
        backoff_max: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = settings.BINANCE_TIMEOUT if timeout is None else timeout
        self.max_retries = settings.BINANCE_MAX_RETRIES if max_retries is None else max_retries
        self.backoff_base = settings.BINANCE_BACKOFF_BASE if backoff_base is None else backoff_base
        self.backoff_max = settings.BINANCE_BACKOFF_MAX if backoff_max is None else backoff_max
        self._sleep = sleep
        # ping=False: the constructor would otherwise call the default (live) host.
        self.client = Client(ping=False, requests_params={"timeout": self.timeout})
        # python-binance has no base-URL argument; API_URL is the documented attribute.
        self.client.API_URL = (api_url or settings.BINANCE_API_URL).rstrip("/")

    # -- retries -----------------------------------------------------------------------------

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_max)
            except ValueError:
                pass
        delay = self.backoff_base * (2**attempt)
        return min(delay * (0.5 + random.random() / 2), self.backoff_max)

    def _call(self, what: str, fn: Callable, **params):
        attempt = 0
        while True:
            try:
                return fn(**params)
            except BinanceAPIException as exc:
                status = exc.status_code
                transient = status in RETRY_STATUSES or status >= 500
                if not transient or attempt >= self.max_retries:
                    raise BinanceError(
                        f"Binance answered HTTP {status} to {what}: {exc.message}"
                        + (f" (after {attempt + 1} attempts)" if transient else "")
                    ) from exc
                retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
                delay = self._retry_delay(attempt, retry_after)
                log.warning("Binance HTTP %s on %s; retrying in %.2fs", status, what, delay)
            except (requests.Timeout, requests.ConnectionError, BinanceRequestException) as exc:
                if attempt >= self.max_retries:
                    raise BinanceError(f"Binance did not answer {what} after {attempt + 1} attempts: {exc}") from exc
                delay = self._retry_delay(attempt, None)
                log.warning("Binance %s on %s; retrying in %.2fs", type(exc).__name__, what, delay)
            attempt += 1
            self._sleep(delay)

    # -- endpoints ---------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        return int(self._call("server time", self.client.get_server_time)["serverTime"])

    def symbol_info(self, symbol: str) -> dict:
        """Exchange info of one pair; UnknownSymbolError if Binance does not list it."""
        symbol = symbol.upper()
        try:
            data = self._call(
                f"exchange info for {symbol}", self.client._get, path="exchangeInfo", data={"symbol": symbol}
            )
        except BinanceError as exc:
            cause = exc.__cause__
            if isinstance(cause, BinanceAPIException) and cause.status_code == 400:
                raise UnknownSymbolError(f"Binance does not list the symbol {symbol}.") from exc
            raise
        for item in data.get("symbols", []):
            if item.get("symbol") == symbol:
                return item
        raise UnknownSymbolError(f"Binance does not list the symbol {symbol}.")

    def klines(
        self, symbol: str, interval: str, *, start_ms: int, end_ms: int | None = None, limit: int = PAGE_LIMIT
    ) -> list[Kline]:
        """One page of candles, every row validated (the whole page is refused if one row is bad)."""
        params = {"symbol": symbol, "interval": interval, "startTime": start_ms, "limit": limit}
        if end_ms is not None:
            params["endTime"] = end_ms
        raw = self._call(f"klines {symbol} {interval} from {describe_time(start_ms)}", self.client.get_klines, **params)
        if not isinstance(raw, list):
            raise BinanceError(f"Binance sent klines for {symbol} that are not a list: {str(raw)[:200]}")
        rows = []
        for fields in raw:
            try:
                rows.append(parse_kline(fields, interval=interval))
            except KlineError as exc:
                open_ms = fields[0] if isinstance(fields, list) and fields and isinstance(fields[0], int) else None
                raise KlineError(f"{symbol} {interval} candle at {describe_time(open_ms)}: {exc}") from None
        return rows

    def first_open_ms(self, symbol: str, interval: str) -> int | None:
        """Open time of the pair's first candle (as python-binance does it: startTime=0, limit=1)."""
        page = self.klines(symbol, interval, start_ms=0, limit=1)
        return page[0].open_time if page else None
