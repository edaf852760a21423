"""Importing a Binance account into its portfolio.

A sync claims the connection (a conditional UPDATE, so two workers never sync one connection at
once), checks that the key is still read-only (a key that gained rights suspends the connection),
reads what is new since each stream's cursor (spot trades per pair with fromId paging, deposits and
withdrawals in windows of at most 90 days), turns each record into portfolio transactions, and
writes them in time order, page by page: each page is one database transaction under the
portfolio's lock, with the history check and stored state of portfolio.services and the cursors
of the records it holds. A sync stopped at any point (an error, a killed worker) leaves whole pages
only, and the next one continues after the last of them.

Valuation: every transaction is in a `<COIN>USDT` asset, USDT being the portfolio's currency (USDT
itself is not a holding: USDT legs, deposits and withdrawals are not recorded). A pair quoted in
another coin records both legs, priced through the close of the quote coin's hourly USDT candle
that holds the trade's time. A commission becomes a `fee` transaction in the coin it was charged
in, priced the same way, except one charged in USDT, which goes into the trade's own fee field
(fees there are in USDT already, and the cost basis or proceeds include it)."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from core.times import datetime_to_ms, ms_to_datetime
from forecasting.binance import BinanceError
from forecasting.models import Asset, Candle
from forecasting.services.market_data import MarketDataError, asset_track

from ..models import ExchangeConnection, Transaction
from ..services import check_history, lock, state_write
from . import crypto
from .client import BinanceAccount, ExchangeError, forbidden_rights, rights_message
from .services import account_client, schedule_name

log = logging.getLogger(__name__)

PAGE_SIZE = 1000  # records written per database transaction
TRADES_LIMIT = 1000  # Binance's largest myTrades page
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WINDOW_MS = 90 * DAY_MS  # the longest startTime-endTime span capital history accepts
# Deposits are read again this far back at each sync: one pending at the last sync is imported
# once Binance marks it successful (ids make the overlap harmless).
LOOKBACK_MS = 7 * DAY_MS
KLINE_BLOCK_MS = 1000 * HOUR_MS  # one klines page of hourly candles
PRICE_GAP_HOURS = 24  # a missing candle is replaced by the last one at most this far back
# A running sync whose heartbeat is older than this lost its worker; another may take over.
STALE_AFTER = timedelta(minutes=15)
DEPOSIT_SUCCESS, WITHDRAWAL_COMPLETED = 1, 6
INVALID_SYMBOL = -1121
Q8 = Decimal("0.00000001")
STREAM_ORDER = {"deposits": 0, "trades": 1, "withdrawals": 2}


class SyncError(Exception):
    """The sync cannot go on; the message says what to do."""


class Suspended(SyncError):
    pass


@dataclass
class Record:
    ms: int
    stream: str  # "trades:<SYMBOL>", "deposits" or "withdrawals"
    cursor: int  # the stream's cursor once this record is written
    sort_id: int
    raw: dict
    txs: list[Transaction] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        return (self.ms, STREAM_ORDER[self.stream.split(":")[0]], self.stream, self.sort_id)


@dataclass
class SyncReport:
    trades: int = 0
    deposits: int = 0
    withdrawals: int = 0
    created: int = 0  # transactions written
    already: int = 0  # transactions a sync had written before
    duplicates: int = 0  # records already in the portfolio from a CSV import or by hand
    skipped: Counter = field(default_factory=Counter)  # reason: records
    pages: int = 0
    requests: int = 0

    def summary(self) -> str:
        parts = [
            f"{self.created} new transaction{'s' if self.created != 1 else ''} from {self.trades} trades, "
            f"{self.deposits} deposits and {self.withdrawals} withdrawals read"
        ]
        if self.duplicates:
            parts.append(f"{self.duplicates} already in the portfolio (a CSV import or typed by hand), not added again")
        for reason, count in sorted(self.skipped.items()):
            parts.append(f"{count} {reason}")
        return "; ".join(parts) + "."


def _q8(value: Decimal) -> Decimal:
    return value.quantize(Q8, rounding=ROUND_HALF_EVEN)


def _second(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(microsecond=0)


# --- claim and finish ---------------------------------------------------------------------------


def _claim(connection_id: int) -> ExchangeConnection | None:
    """The connection, now marked running; None when it is gone, already running, or suspended
    without anyone asking (a suspended key is checked again only on "sync now")."""
    now = timezone.now()
    S = ExchangeConnection.SyncStatus
    free = Q(sync_status=S.QUEUED) | Q(sync_status=S.IDLE, state__in=["active", "error"])
    lost = Q(sync_status=S.RUNNING, sync_heartbeat_at__lt=now - STALE_AFTER)
    claimed = (
        ExchangeConnection.objects.filter(id=connection_id)
        .filter(free | lost)
        .update(
            sync_status=S.RUNNING,
            sync_started_at=now,
            sync_heartbeat_at=now,
            progress_done=0,
            progress_total=0,
            progress_note="Checking the key",
        )
    )
    if not claimed:
        return None
    return ExchangeConnection.objects.select_related("portfolio__owner").get(id=connection_id)


def _progress(connection: ExchangeConnection, note: str, done: int | None = None, total: int | None = None) -> None:
    fields = {"progress_note": note[:200], "sync_heartbeat_at": timezone.now()}
    if done is not None:
        fields["progress_done"] = done
    if total is not None:
        fields["progress_total"] = total
    ExchangeConnection.objects.filter(id=connection.id).update(**fields)


def _finish(connection: ExchangeConnection, *, state: str, message: str, good: bool = False, cursors=None) -> None:
    now = timezone.now()
    fields = {
        "state": state,
        "message": message,
        "sync_status": ExchangeConnection.SyncStatus.IDLE,
        "sync_heartbeat_at": now,
        "last_sync_at": now,
        "progress_note": "",
    }
    if good:
        fields["last_good_sync_at"] = now
    if cursors is not None:
        fields["cursors"] = cursors
    ExchangeConnection.objects.filter(id=connection.id).update(**fields)


# --- the sync -----------------------------------------------------------------------------------


def exchange_sync(*, connection_id: int, client: BinanceAccount | None = None) -> SyncReport | None:
    """Sync one connection (see the module's docstring); None when it was not claimed."""
    connection = _claim(connection_id)
    if connection is None:
        if not ExchangeConnection.objects.filter(id=connection_id).exists():
            # Deleted with its portfolio or owner: its schedule goes too.
            PeriodicTask.objects.filter(name=schedule_name(connection_id)).delete()
        log.info("Exchange connection %s is gone, suspended or already syncing", connection_id)
        return None
    report = SyncReport()
    try:
        client = client or account_client(connection)
        _check_rights(connection, client)
        records, symbols = _fetch(connection, client, report)
        _write(connection, client, records, symbols, report)
    except Suspended as exc:
        log.warning("Exchange connection %s suspended: its key can do more than read", connection.id)
        _finish(connection, state=ExchangeConnection.State.SUSPENDED, message=str(exc))
    except (SyncError, ExchangeError, crypto.SecretUnreadable, BinanceError, MarketDataError) as exc:
        log.warning("Sync of exchange connection %s stopped: %s", connection.id, exc)
        _finish(connection, state=ExchangeConnection.State.FAILING, message=str(exc))
    except Exception:
        log.exception("Sync of exchange connection %s failed", connection.id)
        _finish(
            connection,
            state=ExchangeConnection.State.FAILING,
            message="The sync stopped on an unexpected error (logged for the administrator). Whole pages "
            "only were kept; the next sync continues after them.",
        )
        raise
    else:
        cursors = dict(connection.cursors)
        floor = datetime_to_ms(timezone.now()) - LOOKBACK_MS
        for stream in ("deposits", "withdrawals"):
            cursors[stream] = max(cursors.get(stream, 0), floor)
        _finish(connection, state=ExchangeConnection.State.ACTIVE, message=report.summary(), good=True, cursors=cursors)
        log.info(
            "Synced exchange connection %s: %s transactions written in %s pages",
            connection.id,
            report.created,
            report.pages,
        )
    finally:
        if client is not None:
            report.requests = client.requests
    return report


def _check_rights(connection: ExchangeConnection, client: BinanceAccount) -> None:
    rights = forbidden_rights(client.permissions())
    if rights:
        raise Suspended(
            rights_message(rights) + " This connection is suspended and reads nothing until its key is "
            "read-only again (then press “Sync now”), or until you delete it and add a read-only key."
        )


# --- read ---------------------------------------------------------------------------------------


def _fetch(connection: ExchangeConnection, client: BinanceAccount, report: SyncReport):
    """Everything new since the cursors, as records sorted by time; and Binance's pairs."""
    _progress(connection, "Reading the account")
    account = client.account()
    symbols = client.exchange_symbols()
    coins = {b["asset"] for b in account.get("balances", []) if Decimal(b["free"]) + Decimal(b["locked"]) > 0}
    # Pairs the portfolio holds assets of, and every pair read before, count too: a coin sold to
    # nothing still has its trades.
    coins |= set(
        Asset.objects.filter(transactions__portfolio_id=connection.portfolio_id)
        .values_list("base_asset", flat=True)
        .distinct()
    )
    coins.add("USDT")
    pairs = {s for s, (base, quote) in symbols.items() if base in coins and quote in coins}
    pairs |= {k.split(":", 1)[1] for k in connection.cursors if k.startswith("trades:")} & set(symbols)
    records: list[Record] = []
    for i, symbol in enumerate(sorted(pairs), start=1):
        _progress(connection, f"Reading trades of {symbol} ({i} of {len(pairs)} pairs)")
        from_id = int(connection.cursors.get(f"trades:{symbol}", 0))
        while True:
            try:
                page = client.my_trades(symbol, from_id=from_id, limit=TRADES_LIMIT)
            except ExchangeError as exc:
                if exc.code != INVALID_SYMBOL:
                    raise
                # Listed but not tradeable through this endpoint any more (delisted, halted).
                report.skipped[f"pairs Binance no longer answers for ({symbol})"] += 1
                break
            for t in page:
                records.append(Record(int(t["time"]), f"trades:{symbol}", int(t["id"]) + 1, int(t["id"]), t))
            report.trades += len(page)
            if len(page) < TRADES_LIMIT:
                break
            from_id = int(page[-1]["id"]) + 1
    start = datetime_to_ms(datetime.fromisoformat(settings.EXCHANGE_HISTORY_START).replace(tzinfo=UTC))
    now_ms = datetime_to_ms(timezone.now())
    for stream, read, when, done in (
        ("deposits", client.deposits, lambda r: int(r["insertTime"]), DEPOSIT_SUCCESS),
        ("withdrawals", client.withdrawals, _apply_ms, WITHDRAWAL_COMPLETED),
    ):
        _progress(connection, f"Reading {stream}")
        for row in _history(read, int(connection.cursors.get(stream, start)), now_ms):
            if int(row.get("status", -1)) != done:
                report.skipped[f"{stream} not completed yet (read again at the next sync)"] += 1
                continue
            ms = when(row)
            records.append(Record(ms, stream, ms, 0, row))
            setattr(report, stream, getattr(report, stream) + 1)
    records.sort(key=lambda r: r.key)
    return records, symbols


def _history(read, start_ms: int, end_ms: int):
    """Every row between the times, in windows of at most 90 days, each paged by offset."""
    window_start = start_ms
    while window_start <= end_ms:
        window_end = min(window_start + WINDOW_MS - 1, end_ms)
        offset = 0
        while True:
            page = read(start_ms=window_start, end_ms=window_end, offset=offset, limit=1000)
            yield from page
            if len(page) < 1000:
                break
            offset += len(page)
        window_start = window_end + 1


def _apply_ms(row: dict) -> int:
    # Withdrawal times are "2019-10-12 11:12:02", in UTC.
    return datetime_to_ms(datetime.strptime(row["applyTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))


# --- prices -------------------------------------------------------------------------------------


class PriceBook:
    """A coin's USDT price at a time: the close of the hourly candle holding it, from the stored
    candles or, where none is stored, Binance's (a page of 1,000 hours at a time)."""

    def __init__(self, client: BinanceAccount, symbols: dict[str, tuple[str, str]]):
        self.client, self.symbols = client, symbols
        self.closes: dict[str, dict[int, Decimal]] = {}
        self.blocks: set[tuple[str, int]] = set()

    def price(self, coin: str, ms: int) -> Decimal | None:
        if coin == "USDT":
            return Decimal(1)
        symbol = f"{coin}USDT"
        if symbol not in self.symbols:
            return None
        hour = ms - ms % HOUR_MS
        closes = self.closes.setdefault(symbol, {})
        for back in range(PRICE_GAP_HOURS + 1):
            at = hour - back * HOUR_MS
            block = at - at % KLINE_BLOCK_MS
            if (symbol, block) not in self.blocks:
                self._load(symbol, block, closes)
            if at in closes:
                return closes[at]
        return None

    def _load(self, symbol: str, block: int, closes: dict[int, Decimal]) -> None:
        self.blocks.add((symbol, block))
        stored = Candle.objects.filter(
            asset__symbol=symbol,
            interval="1h",
            open_time__gte=ms_to_datetime(block),
            open_time__lt=ms_to_datetime(block + KLINE_BLOCK_MS),
        ).values_list("open_time", "close")
        for open_time, close in stored:
            closes[datetime_to_ms(open_time)] = close
        if len(stored) < 1000:
            for k in self.client.klines(symbol, "1h", start_ms=block, end_ms=block + KLINE_BLOCK_MS - 1):
                closes.setdefault(k.open_time, k.close)


# --- write --------------------------------------------------------------------------------------


def _assets(connection: ExchangeConnection, coins: set[str], symbols: dict) -> dict[str, Asset | None]:
    """Each coin's USDT asset, tracking the ones not tracked yet (as the add-transaction form
    does); None for a coin Binance has no USDT pair of."""
    found = {a.base_asset: a for a in Asset.objects.filter(symbol__in=[f"{c}USDT" for c in coins])}
    assets: dict[str, Asset | None] = {}
    for coin in sorted(coins - {"USDT"}):
        symbol = f"{coin}USDT"
        asset = found.get(coin)
        if asset is not None and (asset.tracked or symbol not in symbols):
            assets[coin] = asset
            continue
        if symbol not in symbols:
            assets[coin] = None
            continue
        try:
            with transaction.atomic():
                asset = asset_track(
                    symbol=symbol, base_asset=coin, quote_asset="USDT", requested_by=connection.portfolio.owner
                )
        except MarketDataError as exc:
            raise SyncError(f"{coin} needs {symbol} tracked, and it could not be: {exc}") from None
        from forecasting.tasks import candles_refresh_task

        transaction.on_commit(lambda asset_id=asset.id: candles_refresh_task.delay(asset_id), robust=True)
        assets[coin] = asset
    return assets


def _coins(record: Record, symbols: dict) -> set[str]:
    raw = record.raw
    if record.stream.startswith("trades:"):
        base, quote = symbols[raw["symbol"]]
        return {base, quote, raw["commissionAsset"]}
    return {raw["coin"]}


def _build(record: Record, symbols: dict, assets: dict, prices: PriceBook, report: SyncReport) -> None:
    """The record's transactions (unsaved), or a reason in the report why it has none."""
    raw, ms = record.raw, record.ms
    when = ms_to_datetime(ms)

    def tx(coin: str, kind: str, quantity: Decimal, price: Decimal, external_id: str, fee=Decimal(0)):
        return Transaction(
            asset=assets[coin],
            kind=kind,
            quantity=quantity,
            unit_price=_q8(price),
            fee=_q8(fee),
            executed_at=when,
            external_id=external_id,
        )

    if record.stream.startswith("trades:"):
        symbol = raw["symbol"]
        base, quote = symbols[symbol]
        qty, price, quote_qty = Decimal(raw["qty"]), Decimal(raw["price"]), Decimal(raw["quoteQty"])
        commission, charged_in = Decimal(raw["commission"]), raw["commissionAsset"]
        quote_usdt = prices.price(quote, ms)
        if quote_usdt is None or any(assets.get(c, 0) is None for c in (base, quote) if c != "USDT"):
            report.skipped["trades in coins without a USDT pair on Binance, not imported"] += 1
            return
        base_usdt = price * quote_usdt
        buying = bool(raw["isBuyer"])
        ext = f"binance:trade:{symbol}:{raw['id']}"
        txs = []
        if base != "USDT":
            txs.append(tx(base, "buy" if buying else "sell", qty, base_usdt, ext))
        if quote != "USDT":
            txs.append(tx(quote, "sell" if buying else "buy", quote_qty, quote_usdt, f"{ext}:quote"))
        if commission > 0 and txs:
            if charged_in == "USDT":
                txs[0].fee = _q8(commission)
            else:
                price_c = {base: base_usdt, quote: quote_usdt}.get(charged_in) or prices.price(charged_in, ms)
                if price_c is None or assets.get(charged_in) is None:
                    report.skipped[f"commissions in {charged_in} (no USDT pair on Binance), not imported"] += 1
                else:
                    txs.append(tx(charged_in, "fee", commission, price_c, f"{ext}:fee"))
        record.txs = txs
        return
    coin = raw["coin"]
    if coin == "USDT":
        report.skipped[f"USDT {record.stream} (USDT is the portfolio's currency, not a holding)"] += 1
        return
    price = prices.price(coin, ms)
    if assets.get(coin) is None or price is None:
        report.skipped[f"{record.stream} of coins without a USDT price on Binance, not imported"] += 1
        return
    if record.stream == "deposits":
        record.txs = [tx(coin, "transfer_in", Decimal(raw["amount"]), price, f"binance:deposit:{raw['id']}")]
        return
    ext = f"binance:withdraw:{raw['id']}"
    record.txs = [tx(coin, "transfer_out", Decimal(raw["amount"]), price, ext)]
    network_fee = Decimal(raw.get("transactionFee") or 0)
    if network_fee > 0:
        record.txs.append(tx(coin, "fee", network_fee, price, f"{ext}:fee"))


def _write(connection: ExchangeConnection, client: BinanceAccount, records: list[Record], symbols, report) -> None:
    coins = set().union(*(_coins(r, symbols) for r in records)) if records else set()
    assets = _assets(connection, coins, symbols)
    prices = PriceBook(client, symbols)
    total = len(records)
    _progress(connection, f"Importing {total} records", done=0, total=total)
    for start in range(0, total, PAGE_SIZE):
        page = records[start : start + PAGE_SIZE]
        for record in page:
            _build(record, symbols, assets, prices, report)
        write_page(connection, page, report, done=start + len(page), total=total)


def write_page(
    connection: ExchangeConnection, page: list[Record], report: SyncReport, *, done: int, total: int
) -> None:
    """One page, all or nothing: its new transactions (none twice: the exchange's ids, and fills
    already in the portfolio from a CSV import or typed by hand), the history check and stored state,
    the cursors past it and the progress, in one transaction under the portfolio's lock."""
    portfolio = connection.portfolio
    with transaction.atomic():
        lock(portfolio)
        ids = [t.external_id for r in page for t in r.txs]
        stored = set(portfolio.transactions.filter(external_id__in=ids).values_list("external_id", flat=True))
        fresh = [r for r in page if r.txs and r.txs[0].external_id not in stored]
        report.already += len(ids) - sum(len(r.txs) for r in fresh)
        by_hand = Counter(
            (asset_id, kind, quantity, price, _second(executed_at))
            for asset_id, kind, quantity, price, executed_at in portfolio.transactions.filter(
                external_id="", asset_id__in={r.txs[0].asset.id for r in fresh}
            ).values_list("asset_id", "kind", "quantity", "unit_price", "executed_at")
        )
        new = []
        for record in fresh:
            first = record.txs[0]
            key = (
                first.asset.id,
                first.kind,
                first.quantity,
                first.unit_price,
                first.executed_at.replace(microsecond=0),
            )
            if by_hand[key] > 0:
                by_hand[key] -= 1
                report.duplicates += 1
                continue
            new.extend(record.txs)
        if new:
            for t in new:
                t.portfolio = portfolio
            asset_ids = {t.asset.id for t in new}
            try:
                rows, ledger = check_history(portfolio, asset_ids, add=new)
            except ValidationError as exc:
                raise SyncError(
                    f"Binance's history does not add up in this portfolio: {' '.join(exc.messages)} Binance "
                    f"only gives trades, deposits and withdrawals, so coins from elsewhere (Earn, Convert, "
                    f"airdrops, small-balance conversions) are missing: add them as transactions (or a CSV "
                    f"import) dated before this one and sync again."
                ) from None
            Transaction.objects.bulk_create(new, batch_size=1000)
            state_write(portfolio.id, asset_ids, rows, ledger)
        cursors = dict(connection.cursors)
        for record in page:
            cursors[record.stream] = max(int(cursors.get(record.stream, 0)), record.cursor)
        ExchangeConnection.objects.filter(id=connection.id).update(
            cursors=cursors,
            imported=F("imported") + len(new),
            progress_done=done,
            progress_total=total,
            progress_note=f"Imported {done} of {total} records",
            sync_heartbeat_at=timezone.now(),
        )
    connection.cursors = cursors
    report.created += len(new)
    report.pages += 1
