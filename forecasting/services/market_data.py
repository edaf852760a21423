"""Writing market data: tracking assets, backfill and refresh from Binance, CSV import."""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction

from core.times import datetime_to_ms, now_ms

from ..binance import PAGE_LIMIT, BinanceMarketData
from ..intervals import interval_ms
from ..klines import Kline, KlineError, parse_kline
from ..models import SYMBOL_RE, Asset, Candle

log = logging.getLogger(__name__)

# progress(done_candles, expected_total_or_None)
Progress = Callable[[int, int | None], None]


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_open: int = 0
    pages: int = 0

    def add(self, other: UpsertResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped_open += other.skipped_open
        self.pages += other.pages

    @property
    def written(self) -> int:
        return self.created + self.updated


class MarketDataError(Exception):
    """A user-facing failure of a market-data operation; the message says what to do."""


_FIELDS = ("open", "high", "low", "close", "volume")


# --- assets -------------------------------------------------------------------------------------


@transaction.atomic
def asset_track(
    *,
    symbol: str,
    interval: str = "1h",
    client: BinanceMarketData | None = None,
    base_asset: str | None = None,
    quote_asset: str | None = None,
    requested_by=None,
) -> Asset:
    """Track a pair, checking with Binance (or the offline kline folder) that it exists.

    `requested_by`: the signed-in person asking (not staff): each pair they start tracking adds
    hourly refreshes and a daily training, so they may start at most MAX_TRACKED_PER_USER."""
    symbol = symbol.strip().upper()
    interval_ms(interval)  # validates
    if not SYMBOL_RE.fullmatch(symbol):
        raise MarketDataError(f"{symbol!r} is not a Binance symbol (letters and digits, e.g. BTCUSDT).")
    if requested_by is not None and not requested_by.is_staff:
        if not Asset.objects.filter(symbol=symbol, tracked=True).exists():
            started = Asset.objects.filter(tracked_by=requested_by).count()
            if started >= settings.MAX_TRACKED_PER_USER:
                raise MarketDataError(
                    f"you have started tracking {started} pairs, the most one account may; ask staff to "
                    f"track {symbol}, or use a pair that is tracked already."
                )
    if base_asset is None or quote_asset is None:
        if settings.KLINES_DIR:
            base_asset, quote_asset = _split_symbol_offline(symbol, interval)
        else:
            info = (client or BinanceMarketData()).symbol_info(symbol)
            base_asset, quote_asset = info["baseAsset"], info["quoteAsset"]
    asset, created = Asset.objects.get_or_create(
        symbol=symbol,
        defaults={
            "base_asset": base_asset,
            "quote_asset": quote_asset,
            "interval": interval,
            "tracked": True,
            "tracked_by": requested_by if requested_by is not None and not requested_by.is_staff else None,
        },
    )
    if not created and not asset.tracked:
        asset.tracked = True
        if requested_by is not None and not requested_by.is_staff:
            asset.tracked_by = requested_by
        asset.save(update_fields=["tracked", "tracked_by"])
    from .schedules import asset_schedules_ensure

    asset_schedules_ensure(asset=asset)
    return asset


KNOWN_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


def _split_symbol_offline(symbol: str, interval: str) -> tuple[str, str]:
    path = klines_file(symbol, interval)
    if not path.exists():
        raise MarketDataError(
            f"No kline file for {symbol} {interval} in MUR_KLINES_DIR ({path}); offline mode can only "
            f"track symbols that have one."
        )
    return split_symbol(symbol)


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset from a symbol, without asking Binance (offline import)."""
    for quote in KNOWN_QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise MarketDataError(f"Cannot tell the base and quote asset of {symbol} offline; track it first.")


# --- candles ------------------------------------------------------------------------------------


def candles_upsert(*, asset: Asset, interval: str, klines: Sequence[Kline]) -> UpsertResult:
    """Store closed candles in one transaction: new ones inserted, changed ones updated,
    identical ones left alone (so a repeated import writes nothing)."""
    result = UpsertResult(pages=1)
    if not klines:
        return result
    by_time = {k.open_time: k for k in klines}
    with transaction.atomic():
        if connection.vendor == "postgresql":
            result.created, result.updated = _upsert_postgresql(asset, interval, by_time.values())
        else:
            result.created, result.updated = _upsert_orm(asset, interval, by_time.values())
    result.unchanged = len(by_time) - result.written
    return result


def _upsert_orm(asset: Asset, interval: str, klines) -> tuple[int, int]:
    by_time = {k.open_dt: k for k in klines}
    existing = {
        row[0]: row[1:]
        for row in Candle.objects.filter(
            asset=asset, interval=interval, open_time__gte=min(by_time), open_time__lte=max(by_time)
        ).values_list("open_time", "id", *_FIELDS)
    }
    new, changed = [], []
    for open_dt, k in by_time.items():
        values = (k.open, k.high, k.low, k.close, k.volume)
        old = existing.get(open_dt)
        if old is None:
            new.append(
                Candle(
                    asset=asset,
                    interval=interval,
                    open_time=open_dt,
                    close_time=k.close_dt,
                    open=k.open,
                    high=k.high,
                    low=k.low,
                    close=k.close,
                    volume=k.volume,
                )
            )
        elif tuple(old[1:]) != values:
            changed.append(Candle(id=old[0], open=k.open, high=k.high, low=k.low, close=k.close, volume=k.volume))
    if new:
        # ignore_conflicts: a concurrent writer that stored the same closed candle wins harmlessly.
        Candle.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    if changed:
        Candle.objects.bulk_update(changed, list(_FIELDS), batch_size=1000)
    return len(new), len(changed)


_STAGE = "mur_candle_stage"


def _upsert_postgresql(asset: Asset, interval: str, klines) -> tuple[int, int]:
    """COPY into a temporary table, compare it with the stored candles in one query, then write
    only what is new or changed: the ORM's per-row work (instances, value preparation) was most of
    the time of a 45,000-candle import. Runs inside the caller's transaction (the stage table
    lives until commit)."""
    q = connection.ops.quote_name
    table, ivl = q(Candle._meta.db_table), q("interval")
    cols = ", ".join(q(f) for f in _FIELDS)
    stored_values = ", ".join(f"c.{q(f)}" for f in _FIELDS)
    new_values = ", ".join(f"s.{q(f)}" for f in _FIELDS)
    differ = f"({stored_values}) IS DISTINCT FROM ({new_values})"
    # The time range lets the planner read the unique index's range instead of the asset's every candle.
    same_candle = f"c.asset_id = %s AND c.{ivl} = %s AND c.open_time BETWEEN %s AND %s AND c.open_time = s.open_time"
    klines = list(klines)
    key = [asset.id, interval, min(k.open_dt for k in klines), max(k.open_dt for k in klines)]
    with connection.cursor() as cur:
        cur.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (open_time timestamptz, close_time timestamptz, "
            f"{', '.join(f'{q(f)} numeric' for f in _FIELDS)}) ON COMMIT DROP"
        )
        cur.execute(f"TRUNCATE {_STAGE}")
        with cur.copy(f"COPY {_STAGE} (open_time, close_time, {cols}) FROM STDIN") as copy:
            for k in klines:
                copy.write_row((k.open_dt, k.close_dt, k.open, k.high, k.low, k.close, k.volume))
        # Read first, so that a re-import issues no write at all (and burns no ids).
        cur.execute(
            f"SELECT count(*) FILTER (WHERE c.id IS NULL), count(*) FILTER (WHERE c.id IS NOT NULL AND {differ}) "
            f"FROM {_STAGE} AS s LEFT JOIN {table} AS c ON {same_candle}",
            key,
        )
        new, changed = cur.fetchone()
        updated = created = 0
        if changed:
            cur.execute(
                f"UPDATE {table} AS c SET {', '.join(f'{q(f)} = s.{q(f)}' for f in _FIELDS)} "
                f"FROM {_STAGE} AS s WHERE {same_candle} AND {differ}",
                key,
            )
            updated = cur.rowcount
        if new:
            # ON CONFLICT DO NOTHING: a concurrent writer that stored the same closed candle wins harmlessly.
            cur.execute(
                f"INSERT INTO {table} (asset_id, {ivl}, open_time, close_time, {cols}) "
                f"SELECT %s, %s, open_time, close_time, {cols} FROM {_STAGE} AS s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS c WHERE {same_candle}) "
                f"ON CONFLICT (asset_id, {ivl}, open_time) DO NOTHING",
                [asset.id, interval, *key],
            )
            created = cur.rowcount
    return created, updated


def candles_backfill(
    *,
    asset: Asset,
    start: datetime | None = None,
    end: datetime | None = None,
    client: BinanceMarketData | None = None,
    progress: Progress | None = None,
) -> UpsertResult:
    """Fetch candles from Binance page by page (1000 a page), each page stored in its own transaction,
    so a failure keeps every earlier page and never leaves half a page.

    `start` None means from the pair's first candle. The still-open current candle is not stored.
    """
    client = client or BinanceMarketData()
    interval = asset.interval
    step = interval_ms(interval)
    start_ms = datetime_to_ms(start) if start else client.first_open_ms(asset.symbol, interval)
    result = UpsertResult()
    if start_ms is None:
        return result
    now_ms = client.server_time_ms()
    end_ms = min(datetime_to_ms(end), now_ms) if end else now_ms
    expected = max(0, (end_ms - start_ms) // step + 1)
    done = 0
    if progress:
        progress(0, expected)
    while start_ms <= end_ms:
        page = client.klines(asset.symbol, interval, start_ms=start_ms, end_ms=end_ms, limit=PAGE_LIMIT)
        if not page:
            break
        closed = [k for k in page if k.close_time < now_ms]
        page_result = candles_upsert(asset=asset, interval=interval, klines=closed)
        page_result.skipped_open = len(page) - len(closed)
        result.add(page_result)
        done += len(page)
        if progress:
            progress(done, expected)
        if len(page) < PAGE_LIMIT:
            break
        start_ms = page[-1].open_time + step
    return result


def candles_refresh(
    *, asset: Asset, client: BinanceMarketData | None = None, progress: Progress | None = None
) -> UpsertResult:
    """Fetch what is new since the newest stored candle (or everything, for a new asset)."""
    if settings.KLINES_DIR:
        return candles_import_file(asset=asset, path=klines_file(asset.symbol, asset.interval), progress=progress)
    newest = (
        Candle.objects.filter(asset=asset, interval=asset.interval)
        .order_by("-open_time")
        .values_list("open_time", flat=True)
        .first()
    )
    start = newest + asset.interval_delta if newest else None
    return candles_backfill(asset=asset, start=start, client=client, progress=progress)


# --- CSV import ---------------------------------------------------------------------------------


class CsvImportError(MarketDataError):
    def __init__(self, path: Path, errors: list[str]):
        self.path = path
        self.errors = errors
        shown = "\n".join(errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{path}: {len(errors)} bad row(s), nothing imported:\n{shown}{more}")


HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time"]
_NAME_RE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-(?P<interval>\d+[mhdw])(?:-.*)?\.csv$")


def klines_file(symbol: str, interval: str) -> Path:
    if not settings.KLINES_DIR:
        raise MarketDataError("MUR_KLINES_DIR is not set.")
    folder = Path(settings.KLINES_DIR)
    if not folder.is_dir():
        raise MarketDataError(f"MUR_KLINES_DIR ({folder}) is not a folder.")
    return folder / f"{symbol}-{interval}.csv"


def parse_kline_name(path: Path) -> tuple[str, str] | None:
    """`BTCUSDT-1h.csv` and Binance dump names like `BTCUSDT-1h-2024-01.csv`."""
    m = _NAME_RE.match(path.name)
    return (m["symbol"], m["interval"]) if m else None


def read_klines_csv(path: Path, *, interval: str) -> list[Kline]:
    """Read and validate a whole kline CSV file before anything is written.

    Accepts the header format (`open_time,open,high,low,close,volume,close_time`) and Binance's
    header-less 12-column dumps, with millisecond or microsecond times. Errors name file and line.
    """
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise MarketDataError(f"Cannot read {path}: {exc.strerror}") from exc
    klines: list[Kline] = []
    errors: list[str] = []
    seen: dict[int, int] = {}
    with handle:
        reader = csv.reader(handle)
        time_unit = None
        for lineno, row in enumerate(reader, start=1):
            if not row or all(not c.strip() for c in row):
                continue
            if lineno == 1 and row[0].strip().lower() == "open_time":
                if [c.strip().lower() for c in row[:7]] != HEADER:
                    raise CsvImportError(path, [f"line 1: unexpected header {row!r}; expected {HEADER}"])
                continue
            if time_unit is None:
                # Binance switched its spot dumps to microseconds: 16-digit times.
                time_unit = "us" if len(row[0].strip()) >= 16 else "ms"
            try:
                k = parse_kline(row, interval=interval, time_unit=time_unit)
            except KlineError as exc:
                errors.append(f"line {lineno}: {exc}")
                continue
            if k.open_time in seen:
                errors.append(f"line {lineno}: open_time {k.open_time} repeats line {seen[k.open_time]}")
                continue
            seen[k.open_time] = lineno
            klines.append(k)
    if errors:
        raise CsvImportError(path, errors)
    klines.sort(key=lambda k: k.open_time)
    return klines


def candles_import_file(
    *, asset: Asset, path: Path, interval: str | None = None, progress: Progress | None = None, batch: int = 5000
) -> UpsertResult:
    """Import a kline CSV: all rows validated first, then stored in batches; re-import writes nothing."""
    interval = interval or asset.interval
    klines = read_klines_csv(Path(path), interval=interval)
    cutoff = now_ms()
    closed = [k for k in klines if k.close_time < cutoff]
    result = UpsertResult(skipped_open=len(klines) - len(closed))
    if progress:
        progress(0, len(closed))
    # One transaction for the file: an error half-way (e.g. a dropped connection) stores nothing.
    with transaction.atomic():
        for i in range(0, len(closed), batch):
            result.add(candles_upsert(asset=asset, interval=interval, klines=closed[i : i + batch]))
            if progress:
                progress(min(i + batch, len(closed)), len(closed))
    return result
