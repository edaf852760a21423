"""A fake Binance spot REST server over the real kline CSV files, for tests and benchmarks.

Serves `/api/v3/{ping,time,exchangeInfo,klines,ticker/price}` from `<SYMBOL>-<interval>.csv` files
with Binance's parameter semantics, a clock that can be frozen inside the data, switchable faults
(429/418 with Retry-After, 500, slow answers, malformed rows) and a log of the requests it received.

Accounts added with `add_account` (tests/fakes/binance_account.py) are served through the signed
endpoints a sync uses: `/sapi/v1/account/apiRestrictions`, `/api/v3/account`, `/api/v3/myTrades`,
`/sapi/v1/capital/deposit/hisrec` and `/sapi/v1/capital/withdraw/history`, each checking the
X-MBX-APIKEY header, the timestamp against recvWindow and the HMAC-SHA256 signature of the query
string and body as Binance documents (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type),
answering errors with Binance's codes. `clock_offset_ms` moves the server's clock for those checks.

    server = FakeBinanceServer(data_dir).start()
    client = BinanceMarketData(api_url=server.api_url)
    server.fail_next("500", count=2, path="klines")
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import hmac
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

INTERVALS = {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
TICKER_INTERVALS = ("1m", "5m", "15m", "1h", "4h", "1d")
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
FAULT_KINDS = {"429", "418", "500", "slow", "malformed"}
# Request weights of the endpoints (Binance's own; the sapi ones count against the sapi IP limit).
WEIGHTS = {"account": 20, "myTrades": 20, "exchangeInfo": 20, "klines": 2}
SIGNED = {
    "account",
    "myTrades",
    "sapi/v1/account/apiRestrictions",
    "sapi/v1/capital/deposit/hisrec",
    "sapi/v1/capital/withdraw/history",
}
NINETY_DAYS_MS = 90 * 24 * 3_600_000
# A "malformed" fault with this value removes the field from the row instead of replacing it.
MISSING = object()
_FIELD_INDEX = {"open_time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5, "close_time": 6}


@dataclass
class Recorded:
    path: str  # after /api/v3/, e.g. "klines"
    params: dict[str, str]
    status: int | None = None  # None until answered
    # time.monotonic() on arrival: how long a client waited between requests (e.g. Retry-After).
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    kind: str
    count: int | None  # None: until reset()
    path: str | None
    skip: int  # matching requests let through before the fault starts
    opts: dict = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        return self.path is None or self.path == path


class _Series:
    """One CSV file: rows as Binance sends them (times int, numbers the CSV's strings)."""

    def __init__(self, path: Path):
        with open(path, newline="") as fh:
            reader = csv.reader(fh)
            next(reader)  # header
            self.rows = [[int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6])] for r in reader if r]
        self.open_times = [r[0] for r in self.rows]


class FakeBinanceServer:
    def __init__(self, data_dir: Path | str, host: str = "127.0.0.1", port: int = 0):
        self.data_dir = Path(data_dir)
        # None: the real clock. Set it (epoch ms) to freeze the server's "now" inside the data.
        self.now_ms: int | None = None
        self.requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._series: dict[tuple[str, str], _Series | None] = {}
        self.accounts: dict = {}  # API key: FakeAccount
        # Added to the real clock for the signed endpoints' timestamp check (a skewed server).
        self.clock_offset_ms = 0
        # Pairs still in exchangeInfo whose trades Binance no longer answers for (-1121).
        self.delisted: set[str] = set()
        self._weight_minute, self._weight_used = 0, 0
        self._lock = threading.Lock()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.fake = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/api"

    def start(self) -> FakeBinanceServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-binance", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset(self) -> None:
        """Back to a healthy server on the real clock with an empty request log."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()
            self.now_ms = None
            self.accounts.clear()
            self.clock_offset_ms = 0
            self.delisted.clear()
            self._weight_minute, self._weight_used = 0, 0

    # -- faults and request log ----------------------------------------------------------------

    def fail_next(self, kind: str, count: int | None = 1, *, path: str | None = None, after: int = 0, **opts) -> None:
        """Answer the next `count` requests (None: all, until reset) to `path` (e.g. "klines"; None:
        any path) with a fault, after letting `after` of them through.

        kinds and their options:
          "429" / "418": retry_after=1 (seconds, sent as Retry-After; None: no header)
          "500": json=False (a JSON error body instead of plain text)
          "slow": delay=2.5 (seconds before the normal answer; exceed the client's timeout)
          "malformed" (klines only): row=None (index in the page; None: the middle row),
                      field="high", value="abc" (MISSING removes the field)
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if kind == "malformed" and path not in (None, "klines"):
            raise ValueError("malformed rows only exist in klines answers")
        with self._lock:
            self._faults.append(_Fault(kind, count, "klines" if kind == "malformed" else path, after, opts))

    def calls(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if not fault.matches(path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # -- data ----------------------------------------------------------------------------------

    def clock_ms(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def series(self, symbol: str, interval: str) -> _Series | None:
        key = (symbol, interval)
        with self._lock:
            if key not in self._series:
                path = self.data_dir / f"{symbol}-{interval}.csv"
                self._series[key] = _Series(path) if path.is_file() else None
            return self._series[key]

    def symbols(self) -> list[str]:
        return sorted({p.name.split("-", 1)[0] for p in self.data_dir.glob("*-*.csv")})

    # -- accounts ------------------------------------------------------------------------------

    def add_account(self, account) -> None:
        with self._lock:
            self.accounts[account.api_key] = account

    def remove_account(self, api_key: str) -> None:
        """The key deleted in Binance: requests with it are refused from now on."""
        with self._lock:
            self.accounts.pop(api_key, None)

    def signed_clock_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    def used_weight(self, path: str) -> int:
        """This minute's request weight, with the request's own."""
        with self._lock:
            minute = int(time.time() // 60)
            if minute != self._weight_minute:
                self._weight_minute, self._weight_used = minute, 0
            self._weight_used += WEIGHTS.get(path, 1)
            return self._weight_used


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol, ""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that timed out and closed its socket is part of the "slow" fault, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str):
        self.status, self.code, self.msg = status, code, msg


def _invalid_symbol() -> _ApiError:
    return _ApiError(400, -1121, "Invalid symbol.")


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, like the real API: python-binance reuses one session for every page.
    protocol_version = "HTTP/1.1"
    server_version = "FakeBinance/1.0"

    @property
    def fake(self) -> FakeBinanceServer:
        return self.server.fake

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query))
        prefix = "/api/v3/"
        path = url.path[len(prefix) :] if url.path.startswith(prefix) else url.path.lstrip("/")
        record = Recorded(path, params)
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(length).decode() if length else ""
        with self.fake._lock:
            self.fake.requests.append(record)
        fault = self.fake._take_fault(path)
        try:
            if fault and fault.kind in ("429", "418"):
                retry_after = fault.opts.get("retry_after", 1)
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                msg = "Too many requests; current limit is 1200 request weight per 1 MINUTE."
                if fault.kind == "418":
                    msg = "Way too many requests; IP banned until further notice."
                return self._send(record, int(fault.kind), {"code": -1003, "msg": msg}, headers)
            if fault and fault.kind == "500":
                if fault.opts.get("json"):
                    body = {"code": -1001, "msg": "Internal error; unable to process your request."}
                    return self._send(record, 500, body)
                return self._send(record, 500, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            if fault and fault.kind == "slow":
                time.sleep(fault.opts.get("delay", 2.5))
            account = self._authenticate(path, url.query, payload) if path in SIGNED else None
            body = self._route(path, params) if account is None else self._route_signed(path, params, account)
            if fault and fault.kind == "malformed" and isinstance(body, list) and body:
                body = _corrupt(body, **fault.opts)
            weight = self.fake.used_weight(path)
            header = "X-SAPI-USED-IP-WEIGHT-1M" if path.startswith("sapi/") else "X-MBX-USED-WEIGHT-1M"
            self._send(record, 200, body, {header: str(weight)})
        except _ApiError as exc:
            self._send(record, exc.status, {"code": exc.code, "msg": exc.msg})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered

    def _send(
        self, record: Recorded, status: int, body, headers: dict | None = None, content_type: str = "application/json"
    ) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        record.status = status

    # -- endpoints -----------------------------------------------------------------------------

    def _route(self, path: str, params: dict):
        if path == "ping":
            return {}
        if path == "time":
            return {"serverTime": self.fake.now_ms if self.fake.now_ms is not None else self.fake.signed_clock_ms()}
        if path == "exchangeInfo":
            return self._exchange_info(params)
        if path == "klines":
            return self._klines(params)
        if path == "ticker/price":
            return self._ticker_price(params)
        raise _ApiError(404, -1000, f"Unknown endpoint {path}")

    def _exchange_info(self, params: dict) -> dict:
        known = sorted(set(self.fake.symbols()) | {p for a in list(self.fake.accounts.values()) for p in a.pairs})
        symbol = params.get("symbol")
        if symbol is not None and symbol not in known:
            raise _invalid_symbol()
        symbols = []
        for name in [symbol] if symbol else known:
            base, quote = split_symbol(name)
            symbols.append(
                {
                    "symbol": name,
                    "status": "TRADING",
                    "baseAsset": base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "isSpotTradingAllowed": True,
                    "filters": [],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": self.fake.clock_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": symbols,
        }

    def _series(self, params: dict, interval: str) -> _Series | None:
        symbol = params.get("symbol")
        if not symbol:
            raise _ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if symbol not in self.fake.symbols():
            raise _invalid_symbol()
        return self.fake.series(symbol, interval)

    def _klines(self, params: dict) -> list:
        interval = params.get("interval", "")
        if interval not in INTERVALS:
            raise _ApiError(400, -1120, "Invalid interval.")
        series = self._series(params, interval)
        try:
            limit = int(params.get("limit", 500))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            raise _ApiError(400, -1100, "Illegal characters found in a parameter.") from None
        if not 1 <= limit <= 1000:
            raise _ApiError(400, -1130, "Invalid data sent for a parameter: limit.")
        if start is not None and end is not None and start > end:
            raise _ApiError(400, -1023, "Start time is greater than end time.")
        if series is None:
            return []
        # Candles opening after "now" do not exist yet; the one open at "now" is returned (unfinished).
        now = self.fake.clock_ms()
        end = now if end is None else min(end, now)
        hi = bisect.bisect_right(series.open_times, end)
        if start is None:
            # Binance: without startTime, the newest `limit` candles up to endTime.
            lo = max(0, hi - limit)
        else:
            lo = bisect.bisect_left(series.open_times, start)
            hi = min(hi, lo + limit)
        return series.rows[lo:hi] if lo < hi else []

    def _ticker_price(self, params: dict) -> dict:
        # The finest interval on file gives the latest price.
        for interval in TICKER_INTERVALS:
            series = self._series(params, interval)
            if series is not None:
                break
        else:
            raise _invalid_symbol()
        i = bisect.bisect_right(series.open_times, self.fake.clock_ms()) - 1
        if i < 0:
            raise _invalid_symbol()
        return {"symbol": params["symbol"], "price": series.rows[i][4]}

    # -- signed endpoints ----------------------------------------------------------------------

    def _authenticate(self, path: str, query: str, body: str):
        """Binance's checks of a SIGNED request, in its order: the key, the timestamp within
        recvWindow, then the HMAC-SHA256 of totalParams (query string then body, signature left out)."""
        key = self.headers.get("X-MBX-APIKEY")
        if not key:
            raise _ApiError(401, -2014, "API-key format invalid.")
        account = self.fake.accounts.get(key)
        if account is None:
            raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        parts = [p for p in query.split("&") if p] + [p for p in body.split("&") if p]
        values = dict(parse_qsl("&".join(parts)))
        if "timestamp" not in values:
            raise _ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        try:
            timestamp = int(values["timestamp"])
            recv_window = int(values.get("recvWindow", 5000))
        except ValueError:
            raise _ApiError(400, -1100, "Illegal characters found in parameter 'timestamp'.") from None
        if recv_window > 60000:
            raise _ApiError(400, -1131, "recvWindow must be less than 60000")
        now = self.fake.signed_clock_ms()
        if timestamp >= now + 1000:
            raise _ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - timestamp > recv_window:
            raise _ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        signature = values.get("signature")
        if not signature:
            raise _ApiError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        query_part = "&".join(p for p in query.split("&") if p and not p.startswith("signature="))
        body_part = "&".join(p for p in body.split("&") if p and not p.startswith("signature="))
        expected = hmac.new(account.api_secret.encode(), (query_part + body_part).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise _ApiError(400, -1022, "Signature for this request is not valid.")
        return account

    def _route_signed(self, path: str, params: dict, account):
        if path == "sapi/v1/account/apiRestrictions":
            return dict(account.permissions)
        if path == "account":
            return {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "accountType": "SPOT",
                "balances": [
                    {"asset": coin, "free": f"{q:.8f}", "locked": "0.00000000"}
                    for coin, q in sorted(account.balances.items())
                ],
                "permissions": ["SPOT"],
            }
        if path == "myTrades":
            return self._my_trades(params, account)
        if path == "sapi/v1/capital/deposit/hisrec":
            return self._history(params, account.deposits, lambda r: r["insertTime"])
        if path == "sapi/v1/capital/withdraw/history":
            return self._history(params, account.withdrawals, _apply_ms)
        raise _ApiError(404, -1000, f"Unknown endpoint {path}")

    def _my_trades(self, params: dict, account) -> list:
        symbol = params.get("symbol")
        if not symbol:
            raise _ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        known = set(self.fake.symbols()) | set(account.pairs)
        if symbol not in known or symbol in self.fake.delisted:
            raise _invalid_symbol()
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1000:
            raise _ApiError(400, -1130, "Invalid data sent for a parameter: limit.")
        trades = account.trades.get(symbol, [])
        if "fromId" in params:
            from_id = int(params["fromId"])
            return [t for t in trades if t["id"] >= from_id][:limit]
        return trades[-limit:]

    def _history(self, params: dict, rows: list, when) -> list:
        """Capital history: at most 90 days between startTime and endTime (endTime defaults to now,
        startTime to 90 days before endTime), newest first, paged by offset and limit (max 1000)."""
        now = self.fake.signed_clock_ms()
        end = int(params["endTime"]) if "endTime" in params else now
        start = int(params["startTime"]) if "startTime" in params else end - NINETY_DAYS_MS
        if end - start > NINETY_DAYS_MS:
            raise _ApiError(400, -1127, "More than 90 days between startTime and endTime.")
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 1000))
        if not 1 <= limit <= 1000:
            raise _ApiError(400, -1130, "Invalid data sent for a parameter: limit.")
        picked = [r for r in rows if start <= when(r) <= end]
        picked.sort(key=when, reverse=True)
        return picked[offset : offset + limit]


def _apply_ms(row: dict) -> int:
    from datetime import UTC, datetime

    return int(datetime.strptime(row["applyTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)


def _corrupt(rows: list, *, row: int | None = None, field: str = "high", value="abc") -> list:
    """A copy of the page with one row damaged (the cached rows stay intact)."""
    rows = list(rows)
    i = len(rows) // 2 if row is None else row
    damaged = list(rows[i])
    if value is MISSING:
        del damaged[_FIELD_INDEX[field]]
    else:
        damaged[_FIELD_INDEX[field]] = value
    rows[i] = damaged
    return rows
