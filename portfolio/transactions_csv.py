"""Transactions to and from CSV files. An import is all or nothing, in four steps: read the file
(parse), check every line on its own with the same rules as the forms and the API (validate),
then, holding the portfolio's lock, drop rows already stored and replay the asset's whole history
(history check), and only then write (insert)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from forecasting.models import Asset

from .models import Portfolio, Transaction
from .positions import Ledger, Oversold, TxRow, replay
from .services import MAX_DECIMAL, asset_name, lock, state_write, transaction_rule_errors

CSV_COLUMNS = ["executed_at", "kind", "symbol", "quantity", "unit_price", "fee", "note"]
CSV_HELP = {
    "executed_at": "ISO 8601 date and time, UTC unless an offset is given (2024-03-01T14:30:00Z)",
    "kind": "one of " + ", ".join(k for k, _ in Transaction.Kind.choices),
    "symbol": "a tracked Binance symbol such as BTCUSDT",
    "quantity": "units of the asset, above zero (decimal point, no thousands separator)",
    "unit_price": "price of one unit in the quote currency, not negative",
    "fee": "fee in the quote currency, not negative (empty means 0)",
    "note": "optional text",
}
MAX_CSV_ROWS = 50_000
MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_CSV_MB = MAX_CSV_BYTES // (1024 * 1024)


@dataclass
class CsvReport:
    created: int = 0
    duplicates: list[int] = field(default_factory=list)  # line numbers
    errors: list[str] = field(default_factory=list)


class CsvImportError(ValidationError):
    def __init__(self, report: CsvReport):
        self.report = report
        super().__init__(report.errors)


class CsvUploadError(ValidationError):
    """The upload is not a file we read: too large, or not UTF-8 text. `too_large` tells which."""

    def __init__(self, message: str, *, too_large: bool = False):
        self.too_large = too_large
        super().__init__(message, code="too_large" if too_large else "encoding")


def csv_upload_text(data: bytes) -> str:
    """The text of an uploaded CSV file (read with at most MAX_CSV_BYTES + 1 bytes, so a larger
    file is recognised without reading it all), for the page and the API alike."""
    if len(data) > MAX_CSV_BYTES:
        raise CsvUploadError(
            f"The file is larger than {MAX_CSV_MB} MB, and the limit is {MAX_CSV_MB} MB a file. "
            f"Split it and import the parts one after the other.",
            too_large=True,
        )
    try:
        return data.decode("utf-8-sig")  # spreadsheets often write a byte-order mark first
    except UnicodeDecodeError:
        raise CsvUploadError("The file is not UTF-8 text; save it as “CSV UTF-8” and try again.") from None


_FORMULA_START = "=+-@"


def _looks_like_formula(text: str) -> bool:
    """What a spreadsheet would run, and what escaping it would be mistaken for (OWASP's CSV
    injection rule: a first character of = + - @, also after spaces, tabs or line breaks)."""
    if not text:
        return False
    if text[0] in _FORMULA_START:
        return True
    if text[0] in " \t\r\n":
        return _looks_like_formula(text.lstrip(" \t\r\n"))
    return text[0] == "'" and _looks_like_formula(text[1:])


def csv_text_out(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading apostrophe where it would run a formula."""
    return "'" + text if _looks_like_formula(text) else text


def csv_text_in(text: str) -> str:
    """The inverse of csv_text_out, so an exported file imports back to the same text."""
    return text[1:] if text.startswith("'") and _looks_like_formula(text[1:]) else text


def transactions_export_csv(*, portfolio: Portfolio) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in portfolio.transactions.select_related("asset").order_by("executed_at", "id"):
        writer.writerow(
            [
                t.executed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                t.kind,
                t.asset.symbol,
                f"{t.quantity.normalize():f}",
                f"{t.unit_price.normalize():f}",
                f"{t.fee.normalize():f}",
                csv_text_out(t.note),
            ]
        )
    return out.getvalue()


def transactions_import_csv(*, portfolio: Portfolio, text: str, now: datetime | None = None) -> CsvReport:
    """All or nothing: every line is checked first and every error reported with its line number;
    rows already in the portfolio are reported as duplicates and not stored again, also when the
    same file is imported twice at once."""
    report = CsvReport()
    records = _parse(text, report)
    new = _validate(records, report, now=now or timezone.now())
    if report.errors:
        report.errors.sort(key=_line_of)  # in the file's order, whichever step found them
        _split_duplicates(_stored(portfolio), new, report)  # named beside the errors, for the person fixing the file
        raise CsvImportError(report)
    with transaction.atomic():
        lock(portfolio)  # from here on no other writer of this portfolio runs, so what is read stays true
        new, rows, ledger = _check_history(portfolio, new, report)
        Transaction.objects.bulk_create([t for _, t in new], batch_size=1000)
        state_write(portfolio.id, {t.asset_id for _, t in new}, rows, ledger)
    report.created = len(new)
    return report


def _line_of(error: str) -> int:
    return int(error[5 : error.index(":")]) if error.startswith("line ") else 0


# --- parse ----------------------------------------------------------------------------------------


def _parse(text: str, report: CsvReport) -> list[tuple[int, dict]]:
    """(line number, row) of each non-blank row; errors go to the report."""
    text = text.removeprefix("\ufeff")  # spreadsheets may write a byte-order mark
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")  # old Mac line endings (CR only) are line endings too
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:  # a header longer than the csv module's field limit, say
        report.errors.append(f"line 1: not readable as CSV ({exc})")
        return []
    missing = [c for c in CSV_COLUMNS[:5] if c not in header]
    if missing:
        report.errors.append(f"line 1: the header lacks {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
        return []
    reader.fieldnames = header
    records = []
    for count, (lineno, raw) in enumerate(_records(reader, report), start=1):
        if count > MAX_CSV_ROWS:
            report.errors.append(f"line {lineno}: more than {MAX_CSV_ROWS} rows; split the file")
            break
        if None in raw:
            report.errors.append(f"line {lineno}: more columns than the header")
            continue
        if not any((v or "").strip() for v in raw.values()):
            continue
        if any("\x00" in (v or "") for v in raw.values()):
            # Text columns cannot hold it (PostgreSQL refuses it); usually a sign of a binary file.
            report.errors.append(f"line {lineno}: contains a NUL character (\\x00); save the file as plain CSV text")
            continue
        records.append((lineno, raw))
    return records


def _records(reader: csv.DictReader, report: CsvReport):
    """(line number, row) with the line the row starts on in the file: the reader skips blank lines
    and a quoted note can span several lines, so counting rows would name the wrong line."""
    try:
        for raw in reader:
            extra = sum(v.count("\n") for v in raw.values() if isinstance(v, str))
            yield reader.line_num - extra, raw
    except csv.Error as exc:
        report.errors.append(f"line {reader.line_num}: not readable as CSV ({exc})")


# --- validate -------------------------------------------------------------------------------------


def _validate(records: list[tuple[int, dict]], report: CsvReport, *, now: datetime) -> list[tuple[int, Transaction]]:
    """Each line on its own: readable values, the transaction rules, and no line repeated in the file."""
    assets = {a.symbol: a for a in Asset.objects.all()}
    kinds = {k for k, _ in Transaction.Kind.choices}
    new, seen = [], {}
    for lineno, raw in records:
        try:
            tx = _transaction(raw, assets, kinds, now)
        except ValueError as exc:
            report.errors.append(f"line {lineno}: {exc}")
            continue
        key = _key(tx.asset_id, tx.kind, tx.quantity, tx.unit_price, tx.fee, tx.executed_at)
        if key in seen:
            report.errors.append(f"line {lineno}: repeats line {seen[key]}")
            continue
        seen[key] = lineno
        new.append((lineno, tx))
    return new


def _transaction(raw: dict, assets: dict[str, Asset], kinds: set[str], now: datetime) -> Transaction:
    when = parse_datetime((raw.get("executed_at") or "").strip())
    if when is None:
        raise ValueError(f"executed_at {raw.get('executed_at')!r} is not a date and time like 2024-03-01T14:30:00Z")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    kind = (raw.get("kind") or "").strip().lower()
    if kind not in kinds:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(sorted(kinds))}")
    symbol = (raw.get("symbol") or "").strip().upper()
    asset = assets.get(symbol)
    if asset is None:
        raise ValueError(f"{symbol or 'the symbol'} is not tracked; track it first (Assets) and import again")
    quantity = _decimal(raw.get("quantity"), "quantity")
    price = _decimal(raw.get("unit_price"), "unit_price")
    fee = _decimal(raw.get("fee"), "fee", default=Decimal("0"))
    note = csv_text_in((raw.get("note") or "").strip())
    broken = transaction_rule_errors(quantity=quantity, unit_price=price, fee=fee, executed_at=when, note=note, now=now)
    for name in ("executed_at", "quantity", "unit_price", "fee", "note"):  # the first in the file's order
        if name in broken:
            raise ValueError(f"{name} {broken[name]}")
    return Transaction(
        asset=asset, kind=kind, quantity=quantity, unit_price=price, fee=fee, executed_at=when, note=note
    )


def _decimal(text: str | None, name: str, *, default: Decimal | None = None) -> Decimal:
    text = (text or "").strip()
    if not text:
        if default is not None:
            return default
        raise ValueError(f"{name} is missing")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{name} {text!r} is not a number")
    if abs(value) >= MAX_DECIMAL:
        raise ValueError(f"{name} {text!r} is too large")
    if value.as_tuple().exponent < -8:
        raise ValueError(f"{name} {text!r} has more than 8 decimal places")
    return value + 0  # turns -0 into 0


def _key(asset_id, kind, quantity, unit_price, fee, executed_at) -> tuple:
    # Decimals compare by value (1.50 == 1.5), and times as instants.
    return (asset_id, kind, quantity, unit_price, fee, executed_at.astimezone(UTC))


def _stored(portfolio: Portfolio) -> list[TxRow]:
    return [
        TxRow(*v)
        for v in portfolio.transactions.values_list(
            "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at"
        )
    ]


def _split_duplicates(
    stored: list[TxRow], new: list[tuple[int, Transaction]], report: CsvReport
) -> list[tuple[int, Transaction]]:
    """The lines not stored yet; the others are reported as duplicates."""
    existing = {_key(r.asset_id, r.kind, r.quantity, r.unit_price, r.fee, r.executed_at) for r in stored}
    fresh = []
    for lineno, tx in new:
        if _key(tx.asset_id, tx.kind, tx.quantity, tx.unit_price, tx.fee, tx.executed_at) in existing:
            report.duplicates.append(lineno)
        else:
            fresh.append((lineno, tx))
    return fresh


# --- history check --------------------------------------------------------------------------------

_LINE_BASE = 10**12  # ids of rows from a file: after every stored row at the same instant, in line order


def _check_history(
    portfolio: Portfolio, new: list[tuple[int, Transaction]], report: CsvReport
) -> tuple[list[tuple[int, Transaction]], list[TxRow], Ledger]:
    """Under the portfolio's lock: lines already stored become duplicates, and the rest must keep
    every asset's history free of oversells. CsvImportError otherwise; else the lines to store, and
    the histories with them and their replay (for the stored state)."""
    stored = _stored(portfolio)
    fresh = _split_duplicates(stored, new, report)
    for _, tx in fresh:
        tx.portfolio = portfolio
    rows = stored + [
        TxRow(_LINE_BASE + line, t.asset_id, t.kind, t.quantity, t.unit_price, t.fee, t.executed_at)
        for line, t in fresh
    ]
    try:
        ledger = replay(rows)
    except Oversold as exc:
        where = f"line {exc.row.id - _LINE_BASE}" if exc.row.id >= _LINE_BASE else "an existing transaction"
        report.errors.append(f"{where}: not enough {asset_name(exc.row.asset_id)}: {exc}")
        raise CsvImportError(report) from exc
    return fresh, rows, ledger
