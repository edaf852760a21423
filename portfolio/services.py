"""Writing portfolios and transactions. Every change is checked against the whole history of
the asset in the portfolio, so no sell or transfer out ever exceeds what was held at its time."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from forecasting.models import Asset

from .models import Portfolio, Transaction
from .positions import Oversold, TxRow, replay

# One digit short of the columns' 20: SQLite keeps decimals as floats, and a value rounded up
# to 1e20 there could no longer be read back.
MAX_DECIMAL = Decimal("1e19")
# Nothing crypto traded before Bitcoin's first block. Value over time is computed per day from the
# first transaction, so a date centuries back would make every read of the portfolio crawl.
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)
EARLIEST_MESSAGE = "The date cannot be before 2009-01-03 (Bitcoin's first block)."


@transaction.atomic
def portfolio_create(*, owner, name: str, description: str = "") -> Portfolio:
    portfolio = Portfolio(owner=owner, name=name.strip(), description=description.strip())
    portfolio.full_clean()
    portfolio.save()
    return portfolio


@transaction.atomic
def portfolio_update(*, portfolio: Portfolio, name: str, description: str = "") -> Portfolio:
    portfolio.name, portfolio.description = name.strip(), description.strip()
    portfolio.full_clean()
    portfolio.save(update_fields=["name", "description"])
    return portfolio


def _lock(portfolio: Portfolio) -> None:
    # Serialises writers of one portfolio, so two sells cannot both pass the oversell check.
    Portfolio.objects.select_for_update().filter(id=portfolio.id).exists()


def _row(tx: Transaction) -> TxRow:
    return TxRow(tx.id, tx.asset_id, tx.kind, tx.quantity, tx.unit_price, tx.fee, tx.executed_at)


def _check_history(portfolio: Portfolio, asset_ids, *, replace: Transaction | None = None,
                   add: list[Transaction] = (), drop: int | None = None) -> None:
    rows = [TxRow(*v) for v in portfolio.transactions.filter(asset_id__in=list(asset_ids)).values_list(
        "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at")]
    if drop is not None or replace is not None:
        gone = drop if drop is not None else replace.id
        rows = [r for r in rows if r.id != gone]
    if replace is not None:
        rows.append(_row(replace))
    rows.extend(_row(t) for t in add)
    try:
        replay(rows)
    except Oversold as exc:
        raise ValidationError({"quantity": f"Not enough {_symbol(exc.row.asset_id)}: {exc}."}) from exc


def _symbol(asset_id: int) -> str:
    return Asset.objects.filter(id=asset_id).values_list("base_asset", flat=True).first() or "units"


def validate_transaction(tx: Transaction, *, now: datetime | None = None) -> None:
    """Field rules with clear messages (the database constraints are the last line)."""
    errors = {}
    for name in ("quantity", "unit_price", "fee"):
        value = getattr(tx, name)
        if isinstance(value, Decimal):
            if value.is_nan():  # NaN cannot be compared: name it before the checks below
                errors[name] = "Enter a number."
            elif value.is_zero():
                setattr(tx, name, value.copy_abs())  # -0 is stored and shown as 0
    if errors:
        raise ValidationError(errors)
    if tx.quantity is not None and tx.quantity <= 0:
        errors["quantity"] = "Quantity must be above zero."
    if tx.unit_price is not None and tx.unit_price < 0:
        errors["unit_price"] = "Price cannot be negative."
    if tx.fee is not None and tx.fee < 0:
        errors["fee"] = "Fee cannot be negative."
    for name in ("quantity", "unit_price", "fee"):
        value = getattr(tx, name)
        if value is not None and abs(value) >= MAX_DECIMAL:
            errors[name] = "That number is too large."
    if tx.executed_at and tx.executed_at > (now or timezone.now()) + timedelta(minutes=1):
        errors["executed_at"] = "The date cannot be in the future."
    if tx.executed_at and tx.executed_at < EARLIEST:
        errors["executed_at"] = EARLIEST_MESSAGE
    if errors:
        raise ValidationError(errors)
    tx.full_clean()


@transaction.atomic
def transaction_create(*, portfolio: Portfolio, asset: Asset, kind: str, quantity: Decimal,
                       unit_price: Decimal = Decimal("0"), fee: Decimal = Decimal("0"),
                       executed_at: datetime, note: str = "") -> Transaction:
    _lock(portfolio)
    tx = Transaction(portfolio=portfolio, asset=asset, kind=kind, quantity=quantity, unit_price=unit_price,
                     fee=fee, executed_at=executed_at, note=note.strip())
    validate_transaction(tx)
    _check_history(portfolio, {asset.id}, add=[tx])
    tx.save()
    return tx


@transaction.atomic
def transaction_update(*, tx: Transaction, **fields) -> Transaction:
    _lock(tx.portfolio)
    old_asset = Transaction.objects.filter(id=tx.id).values_list("asset_id", flat=True).get()
    for name, value in fields.items():
        setattr(tx, name, value.strip() if name == "note" else value)
    validate_transaction(tx)
    _check_history(tx.portfolio, {old_asset, tx.asset_id}, replace=tx)
    tx.save()
    return tx


@transaction.atomic
def transaction_delete(*, tx: Transaction) -> None:
    _lock(tx.portfolio)
    _check_history(tx.portfolio, {tx.asset_id}, drop=tx.id)
    tx.delete()


# --- CSV ----------------------------------------------------------------------------------------

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


@dataclass
class CsvReport:
    created: int = 0
    duplicates: list[int] = field(default_factory=list)  # line numbers
    errors: list[str] = field(default_factory=list)


def transactions_export_csv(portfolio: Portfolio) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in portfolio.transactions.select_related("asset").order_by("executed_at", "id"):
        writer.writerow([t.executed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"), t.kind, t.asset.symbol, f"{t.quantity.normalize():f}", f"{t.unit_price.normalize():f}",
                         f"{t.fee.normalize():f}", t.note])
    return out.getvalue()


class CsvImportError(ValidationError):
    def __init__(self, report: CsvReport):
        self.report = report
        super().__init__(report.errors)


_LINE_BASE = 10**12  # ids of rows from a file: after every stored row at the same instant, in line order


def _parse_decimal(text: str, name: str, *, default: Decimal | None = None) -> Decimal:
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


def _records(reader: csv.DictReader, report: CsvReport):
    """(line number, row) with the line the row starts on in the file: the reader skips blank lines
    and a quoted note can span several lines, so counting rows would name the wrong line."""
    try:
        for raw in reader:
            extra = sum(v.count("\n") for v in raw.values() if isinstance(v, str))
            yield reader.line_num - extra, raw
    except csv.Error as exc:
        report.errors.append(f"line {reader.line_num}: not readable as CSV ({exc})")


def transactions_import_csv(*, portfolio: Portfolio, text: str, now: datetime | None = None) -> CsvReport:
    """All or nothing: every line is checked first and every error reported with its line number;
    rows already in the portfolio are reported as duplicates and not stored again."""
    now = now or timezone.now()
    report = CsvReport()
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))  # spreadsheets may write a BOM
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_COLUMNS[:5] if c not in header]
    if missing:
        report.errors.append(f"line 1: the header lacks {', '.join(missing)}; expected {','.join(CSV_COLUMNS)}")
        raise CsvImportError(report)
    reader.fieldnames = header
    assets = {a.symbol: a for a in Asset.objects.all()}
    kinds = {k for k, _ in Transaction.Kind.choices}
    existing = set(portfolio.transactions.values_list("asset_id", "kind", "quantity", "unit_price", "fee",
                                                       "executed_at"))
    new: list[tuple[int, Transaction]] = []
    seen: dict[tuple, int] = {}
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
        try:
            when = parse_datetime((raw.get("executed_at") or "").strip())
            if when is None:
                raise ValueError(f"executed_at {raw.get('executed_at')!r} is not a date and time like 2024-03-01T14:30:00Z")
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            if when > now:
                raise ValueError("executed_at is in the future")
            if when < EARLIEST:
                raise ValueError(f"executed_at is before {EARLIEST:%Y-%m-%d} (Bitcoin's first block)")
            kind = (raw.get("kind") or "").strip().lower()
            if kind not in kinds:
                raise ValueError(f"kind {kind!r} is not one of {', '.join(sorted(kinds))}")
            symbol = (raw.get("symbol") or "").strip().upper()
            asset = assets.get(symbol)
            if asset is None:
                raise ValueError(f"{symbol or 'the symbol'} is not tracked; track it first (Assets) and import again")
            quantity = _parse_decimal(raw.get("quantity"), "quantity")
            if quantity <= 0:
                raise ValueError("quantity must be above zero")
            price = _parse_decimal(raw.get("unit_price"), "unit_price")
            if price < 0:
                raise ValueError("unit_price cannot be negative")
            fee = _parse_decimal(raw.get("fee"), "fee", default=Decimal("0"))
            if fee < 0:
                raise ValueError("fee cannot be negative")
            note = (raw.get("note") or "").strip()
            if len(note) > 500:
                raise ValueError("note is longer than 500 characters")
        except ValueError as exc:
            report.errors.append(f"line {lineno}: {exc}")
            continue
        key = (asset.id, kind, quantity, price, fee, when)
        if key in existing:
            report.duplicates.append(lineno)
            continue
        if key in seen:
            report.errors.append(f"line {lineno}: repeats line {seen[key]}")
            continue
        seen[key] = lineno
        new.append((lineno, Transaction(portfolio=portfolio, asset=asset, kind=kind, quantity=quantity,
                                        unit_price=price, fee=fee, executed_at=when, note=note)))
    if report.errors:
        raise CsvImportError(report)
    with transaction.atomic():
        _lock(portfolio)
        rows = [TxRow(*v) for v in portfolio.transactions.values_list(
            "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at")]
        rows += [TxRow(_LINE_BASE + line, t.asset_id, t.kind, t.quantity, t.unit_price, t.fee, t.executed_at)
                 for line, t in new]
        try:
            replay(rows)
        except Oversold as exc:
            where = f"line {exc.row.id - _LINE_BASE}" if exc.row.id >= _LINE_BASE else "an existing transaction"
            report.errors.append(f"{where}: not enough {exc.row.asset_id and _symbol(exc.row.asset_id)}: {exc}")
            raise CsvImportError(report) from exc
        Transaction.objects.bulk_create([t for _, t in new], batch_size=1000)
    report.created = len(new)
    return report
