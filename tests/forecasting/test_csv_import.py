"""Kline CSV import on real Binance data: exact values, idempotent re-import, all-or-nothing on bad rows."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django_celery_beat.models import PeriodicTask

from forecasting.models import Asset, Candle
from forecasting.services.market_data import CsvImportError, candles_import_file, read_klines_csv

HEADER = ["open_time", "open", "high", "low", "close", "volume", "close_time"]
BTC_ROWS = 45_024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def ms(dt: datetime) -> int:
    # Integer arithmetic: close times end in .999 ms and must not be rounded through a float.
    return (dt - EPOCH) // timedelta(milliseconds=1)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture(scope="module")
def btc_file(data_dir) -> Path:
    return data_dir / "BTCUSDT-1h.csv"


@pytest.fixture(scope="module")
def btc_rows(btc_file) -> list[list[str]]:
    with open(btc_file, newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == HEADER
        return [row for row in reader if row]


def as_values(rows: list[list[str]]) -> dict[int, tuple]:
    """open_time ms -> (open, high, low, close, volume, close_time ms), as the CSV states them."""
    return {int(r[0]): (*(Decimal(x) for x in r[1:6]), int(r[6])) for r in rows}


def stored(symbol: str = "BTCUSDT") -> dict[int, tuple]:
    rows = Candle.objects.filter(asset__symbol=symbol).values_list(
        "open_time", "open", "high", "low", "close", "volume", "close_time"
    )
    return {ms(r[0]): (*r[1:6], ms(r[6])) for r in rows}


def stored_with_ids(symbol: str = "BTCUSDT") -> dict[int, tuple]:
    rows = Candle.objects.filter(asset__symbol=symbol).values_list(
        "id", "open_time", "open", "high", "low", "close", "volume", "close_time", "interval"
    )
    return {r[0]: r[1:] for r in rows}


def write_csv(path: Path, rows: list[list[str]], header: bool = True) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def binance_dump(rows: list[list[str]], unit: str) -> list[list[str]]:
    """Binance's header-less 12-column kline dump of the same candles. The five extra columns
    (quote volume, trades, taker volumes, ignore) are not in the shared data; the importer
    ignores them, so zeros stand in."""
    out = []
    for r in rows:
        open_time, close_time = int(r[0]), int(r[6])
        if unit == "us":
            open_time, close_time = open_time * 1000, close_time * 1000 + 999
        out.append([str(open_time), *r[1:6], str(close_time), "0", "0", "0", "0", "0"])
    return out


def run(*args) -> str:
    out = StringIO()
    call_command(*[str(a) for a in args], stdout=out, stderr=StringIO())
    return out.getvalue()


def test_real_file_imports_exactly_and_reimport_writes_nothing(db, btc_file, btc_rows):
    out = run("import_candles", btc_file)
    assert f"BTCUSDT-1h.csv: {BTC_ROWS} new, 0 updated, 0 unchanged candles." in out
    asset = Asset.objects.get(symbol="BTCUSDT")
    assert (asset.base_asset, asset.quote_asset, asset.interval, asset.tracked) == ("BTC", "USDT", "1h", True)

    # Every candle, Decimal-exact, with Binance's close time.
    assert len(btc_rows) == BTC_ROWS
    assert stored() == as_values(btc_rows)
    c = Candle.objects.get(asset=asset, interval="1h", open_time=utc(2021, 1, 1))
    assert (c.open, c.high, c.low, c.close, c.volume) == (
        Decimal("28923.63"),
        Decimal("29031.34"),
        Decimal("28690.17"),
        Decimal("28995.13"),
        Decimal("2311.811445"),
    )
    assert c.close_time == utc(2021, 1, 1, 0, 59, 59, 999000)
    top = Candle.objects.filter(asset=asset).order_by("-high").first()
    assert (top.high, top.open_time) == (Decimal("69000.00"), utc(2021, 11, 10, 14))

    # Re-import: every row compared, none inserted, updated or deleted.
    max_id = Candle.objects.aggregate(m=Max("id"))["m"]
    with CaptureQueriesContext(connection) as queries:
        result = candles_import_file(asset=asset, path=btc_file)
    assert (result.created, result.updated, result.unchanged) == (0, 0, BTC_ROWS)
    candle_sql = [q["sql"] for q in queries.captured_queries if "forecasting_candle" in q["sql"]]
    assert any(sql.lstrip().upper().startswith("SELECT") for sql in candle_sql)
    writes = [sql for sql in candle_sql if re.match(r"\s*(INSERT|UPDATE|DELETE)\b", sql, re.I)]
    assert writes == []
    assert Candle.objects.count() == BTC_ROWS
    assert Candle.objects.aggregate(m=Max("id"))["m"] == max_id

    # The gap report on the same data: Binance's outages, listed from the stored candles.
    lines = run("candle_gaps", "BTCUSDT").splitlines()
    assert lines[0] == "BTCUSDT 1h: 27 gap(s), 127 missing candle(s)"
    assert "  2018-02-08 01:00 .. 2018-02-09 09:00 UTC  (33 missing)" in lines
    times = sorted(as_values(btc_rows))
    expected = []
    for before, after in zip(times, times[1:]):
        missing = (after - before) // 3_600_000 - 1
        if missing:
            first = EPOCH + timedelta(milliseconds=before) + HOUR
            last = EPOCH + timedelta(milliseconds=after) - HOUR
            expected.append(f"  {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC  ({missing} missing)")
    assert lines[1:] == expected


def test_binance_dumps_with_ms_and_us_times_import_the_same_values(db, tmp_path, btc_rows):
    rows = btc_rows[:50]
    header_file = write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    ms_dump = write_csv(tmp_path / "BTCUSDT-1h-2017-08.csv", binance_dump(rows, "ms"), header=False)
    us_dump = write_csv(tmp_path / "BTCUSDT-1h-2017-09.csv", binance_dump(rows, "us"), header=False)
    assert len(us_dump.read_text().splitlines()[0].split(",")[0]) == 16

    parsed = read_klines_csv(header_file, interval="1h")
    assert len(parsed) == 50
    assert read_klines_csv(ms_dump, interval="1h") == parsed
    assert read_klines_csv(us_dump, interval="1h") == parsed
    assert (parsed[0].open_time, parsed[0].open, parsed[0].close_time) == (
        1502942400000,
        Decimal("4261.48"),
        1502945999999,
    )

    # The microsecond dump first, into an empty table; the other two then find identical candles.
    assert "BTCUSDT-1h-2017-09.csv: 50 new, 0 updated, 0 unchanged candles." in run("import_candles", us_dump)
    assert stored() == as_values(rows)
    assert "BTCUSDT-1h-2017-08.csv: 0 new, 0 updated, 50 unchanged candles." in run("import_candles", ms_dump)
    assert "BTCUSDT-1h.csv: 0 new, 0 updated, 50 unchanged candles." in run("import_candles", header_file)
    assert stored() == as_values(rows)


def bad_rows(rows: list[list[str]]) -> tuple[list[list[str]], dict[int, str]]:
    """20 real rows with one fault on each odd line from 3 to 15 (line 1 is the header)."""
    rows = [list(r) for r in rows[:20]]
    faults = {}

    def fault(line: int, row: list[str], message: str):
        rows[line - 2] = row
        faults[line] = message

    r = rows
    fault(3, [r[1][0], "n/a", *r[1][2:]], "open is not a number")
    fault(5, [r[3][0], r[3][1], r[3][3], r[3][2], *r[3][4:]], "high/low do not bound")
    fault(7, [*r[5][:6], str(int(r[5][6]) + 1000)], "does not match a 1h candle")
    fault(9, list(r[6]), f"open_time {r[6][0]} repeats line 8")
    fault(11, [*r[9][:5], "-1.5", r[9][6]], "volume is negative")
    fault(13, [r[11][0], str(Decimal(r[11][1]) + Decimal("1e-9")), *r[11][2:]], "more than 8 decimal places")
    fault(15, r[13][:5], "expected at least 7 fields")
    return rows, faults


def assert_reports_every_bad_line(message: str, path: Path, faults: dict[int, str]):
    assert str(path) in message
    assert f"{len(faults)} bad row(s), nothing imported" in message
    reported = re.findall(r"^line (\d+): (.*)$", message, flags=re.M)
    assert [int(n) for n, _ in reported] == sorted(faults)
    for n, text in reported:
        assert faults[int(n)] in text, f"line {n}: {text!r}"


def test_bad_rows_are_all_reported_and_nothing_is_imported(db, tmp_path, btc_rows):
    rows, faults = bad_rows(btc_rows)
    path = write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    # Sanity: 13 good rows remain, so "nothing imported" is not just an empty file.
    assert len(rows) - len(faults) == 13

    with pytest.raises(CsvImportError) as exc:
        read_klines_csv(path, interval="1h")
    assert len(exc.value.errors) == len(faults)
    assert_reports_every_bad_line(str(exc.value), path, faults)

    with pytest.raises(CommandError) as exc:
        run("import_candles", path)
    assert_reports_every_bad_line(str(exc.value), path, faults)
    assert Candle.objects.count() == 0
    # A failed import does not start tracking (and scheduling refreshes of) a new symbol.
    assert not Asset.objects.exists()
    assert not PeriodicTask.objects.filter(task="forecasting.tasks.candles_refresh_task").exists()


def test_bad_file_leaves_existing_candles_untouched(db, tmp_path, btc_rows):
    good = write_csv(tmp_path / "BTCUSDT-1h.csv", btc_rows[:30])
    run("import_candles", good)
    before = stored_with_ids()
    assert len(before) == 30

    # Overlapping rows with a changed value, new rows, and one bad row at the end.
    rows = [list(r) for r in btc_rows[:40]]
    rows[4][4] = rows[4][2]  # close moved up to the high: a valid change
    rows.append([*btc_rows[40][:5], "-3", btc_rows[40][6]])
    bad = write_csv(tmp_path / "BTCUSDT-1h-2017-08.csv", rows)
    with pytest.raises(CommandError) as exc:
        run("import_candles", bad)
    assert_reports_every_bad_line(str(exc.value), bad, {42: "volume is negative"})
    asset = Asset.objects.get(symbol="BTCUSDT")
    with pytest.raises(CsvImportError):
        candles_import_file(asset=asset, path=bad)
    assert stored_with_ids() == before


def test_command_errors(db, tmp_path, btc_rows):
    missing = tmp_path / "BTCUSDT-1h.csv"
    with pytest.raises(CommandError, match=rf"Cannot read {re.escape(str(missing))}"):
        run("import_candles", missing)
    assert not Asset.objects.exists()

    for name in ("prices.csv", "BTCUSDT.csv", "BTCUSDT-1x.csv", "btcusdt_1h.csv"):
        path = write_csv(tmp_path / name, btc_rows[:5])
        with pytest.raises(CommandError, match="cannot tell symbol and interval from the name"):
            run("import_candles", path)
    path = write_csv(tmp_path / "BTCUSDT-7h.csv", btc_rows[:5])
    with pytest.raises(CommandError, match="Unknown candle interval '7h'"):
        run("import_candles", path)
    assert Candle.objects.count() == 0 and not Asset.objects.exists()

    # The same file imports once symbol and interval are given.
    out = run("import_candles", tmp_path / "prices.csv", "--symbol", "btcusdt", "--interval", "1h")
    assert "prices.csv: 5 new, 0 updated, 0 unchanged candles." in out
    assert stored() == as_values(btc_rows[:5])


def test_changed_value_updates_that_candle_only(db, tmp_path, btc_rows):
    rows = [list(r) for r in btc_rows[:50]]
    path = write_csv(tmp_path / "BTCUSDT-1h.csv", rows)
    run("import_candles", path)
    before = stored_with_ids()

    changed_time = int(rows[9][0])
    rows[9][4] = rows[9][3]  # close corrected down to the low
    assert Decimal(rows[9][4]) != Decimal(btc_rows[9][4])
    write_csv(path, rows)
    assert "BTCUSDT-1h.csv: 0 new, 1 updated, 49 unchanged candles." in run("import_candles", path)

    after = stored_with_ids()
    assert after.keys() == before.keys(), "candles must be updated in place, not replaced"
    differing = {i for i in after if after[i] != before[i]}
    assert len(differing) == 1
    (candle_id,) = differing
    assert ms(after[candle_id][0]) == changed_time
    old, new = before[candle_id], after[candle_id]
    # Fields: open_time, open, high, low, close, volume, close_time, interval. Only close changed.
    assert (old[4], new[4]) == (Decimal(btc_rows[9][4]), Decimal(rows[9][3]))
    assert old[:4] + old[5:] == new[:4] + new[5:]


# --- the COPY upsert ------------------------------------------------------------------------------


def test_the_postgresql_upsert_stores_what_the_orm_upsert_stores(on_postgres):
    """candles_upsert writes through COPY and plain SQL on PostgreSQL (the ORM's per-row work was
    most of an import's time) and through the ORM elsewhere: both must store the same candles and
    count the same new, changed and unchanged ones, or a Django or psycopg upgrade broke the first."""
    from django.db import transaction

    from forecasting.klines import Kline
    from forecasting.services import market_data

    def klines(start: int, count: int, bump: int = 0) -> list[Kline]:
        """Hourly klines; with `bump`, every other one's prices are moved (a changed candle)."""
        hour, rows = 3_600_000, []
        for i in range(start, start + count):
            price = Decimal(100 + i + (bump if i % 2 else 0)) + Decimal("0.12345678")
            open_time = 1_650_000_000_000 + i * hour
            rows.append(Kline(open_time, price, price + 1, price - 1, price, Decimal("1.5"), open_time + hour - 1))
        return rows

    stored = {}
    for upsert, symbol in ((market_data._upsert_postgresql, "BTCUSDT"), (market_data._upsert_orm, "ETHUSDT")):
        asset = Asset.objects.create(symbol=symbol, base_asset=symbol[:3], quote_asset="USDT")
        counts = []
        # New candles; then some again, half of them changed, with new ones after them.
        for batch in (klines(0, 50), klines(40, 30, bump=5)):
            with transaction.atomic():
                counts.append(upsert(asset, "1h", batch))
        rows = Candle.objects.filter(asset=asset).order_by("open_time")
        stored[symbol] = (counts, list(rows.values_list("open_time", "close_time", *market_data._FIELDS)))
    assert stored["BTCUSDT"][0] == [(50, 0), (20, 5)]
    assert stored["BTCUSDT"] == stored["ETHUSDT"]
