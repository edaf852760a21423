"""Writing portfolios and transactions. Every change is checked against the whole history of
the asset in the portfolio, so no sell or transfer out ever exceeds what was held at its time,
and the replay that checks it also gives the asset's stored state (PositionState, DailyFlow),
written in the same database transaction as the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from forecasting.models import Asset

from .models import DailyFlow, Portfolio, PositionState, Transaction
from .positions import Ledger, Oversold, TxRow, replay
from .valuation import day_sums

# One digit short of the columns' 20: SQLite keeps decimals as floats, and a value rounded up
# to 1e20 there could no longer be read back.
MAX_DECIMAL = Decimal("1e19")
# Nothing crypto traded before Bitcoin's first block. Value over time is computed per day from the
# first transaction, so a date centuries back would make every read of the portfolio crawl.
EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)


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


def lock(portfolio: Portfolio) -> None:
    # Serialises writers of one portfolio, so two sells cannot both pass the oversell check.
    Portfolio.objects.select_for_update().filter(id=portfolio.id).exists()


def _row(tx: Transaction) -> TxRow:
    return TxRow(tx.id, tx.asset_id, tx.kind, tx.quantity, tx.unit_price, tx.fee, tx.executed_at)


def check_history(
    portfolio: Portfolio,
    asset_ids,
    *,
    replace: Transaction | None = None,
    add: list[Transaction] = (),
    drop: int | None = None,
) -> tuple[list[TxRow], Ledger]:
    """The assets' histories with the change, replayed: ValidationError at an oversell, else the
    rows and the ledger, for state_write."""
    rows = [
        TxRow(*v)
        for v in portfolio.transactions.filter(asset_id__in=list(asset_ids)).values_list(
            "id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at"
        )
    ]
    if drop is not None or replace is not None:
        gone = drop if drop is not None else replace.id
        rows = [r for r in rows if r.id != gone]
    if replace is not None:
        rows.append(_row(replace))
    rows.extend(_row(t) for t in add)
    try:
        ledger = replay(rows)
    except Oversold as exc:
        raise ValidationError({"quantity": f"Not enough {asset_name(exc.row.asset_id)}: {exc}."}) from exc
    return rows, ledger


def state_write(portfolio_id: int, asset_ids, rows: list[TxRow], ledger: Ledger, *, models=None) -> None:
    """Replace the stored state of `asset_ids` by what `rows` (their whole histories, already
    replayed into `ledger`) give. Callers hold the portfolio's lock, inside the transaction that
    changes the rows. `models`: the (PositionState, DailyFlow) classes a migration passes."""
    position_model, flow_model = models or (PositionState, DailyFlow)
    asset_ids = set(asset_ids)
    position_model.objects.filter(portfolio_id=portfolio_id, asset_id__in=asset_ids).delete()
    position_model.objects.bulk_create(
        position_model(
            portfolio_id=portfolio_id,
            asset_id=p.asset_id,
            quantity=p.quantity,
            cost=p.cost,
            realized=p.realized,
            invested=p.invested,
            withdrawn=p.withdrawn,
            rewards=p.rewards,
            fees=p.fees,
            first_at=p.first_at,
            transactions=p.transactions,
        )
        for asset_id, p in ledger.positions.items()
        if asset_id in asset_ids
    )
    flow_model.objects.filter(portfolio_id=portfolio_id, asset_id__in=asset_ids).delete()
    sums = day_sums([r for r in rows if r.asset_id in asset_ids])
    flow_model.objects.bulk_create(
        (
            flow_model(
                portfolio_id=portfolio_id,
                asset_id=asset_id,
                day=day,
                closing=closing,
                quantity=quantity,
                flow=flow,
                flow_time=flow_time,
                transactions=count,
            )
            for (asset_id, day, closing), (quantity, flow, flow_time, count) in sums.items()
        ),
        batch_size=1000,
    )


def portfolio_state_rebuild(*, portfolio: Portfolio) -> None:
    """The stored state of every asset of the portfolio, from its whole history: for portfolios
    written before the state existed, or rows changed around the services."""
    with transaction.atomic():
        lock(portfolio)
        asset_ids = set(portfolio.transactions.values_list("asset_id", flat=True).distinct())
        asset_ids |= set(portfolio.position_states.values_list("asset_id", flat=True))
        rows, ledger = check_history(portfolio, asset_ids)
        state_write(portfolio.id, asset_ids, rows, ledger)


def asset_name(asset_id: int) -> str:
    return Asset.objects.filter(id=asset_id).values_list("base_asset", flat=True).first() or "units"


# What each rule's message starts with on a form (a CSV line names the column instead).
FORM_SUBJECTS = {
    "quantity": "Quantity",
    "unit_price": "Price",
    "fee": "Fee",
    "executed_at": "The date",
    "note": "The note",
}
# A device clock a little ahead of the server's is not "the future".
FUTURE_TOLERANCE = timedelta(minutes=1)
MAX_NOTE = 500


def transaction_rule_errors(
    *,
    quantity: Decimal | None,
    unit_price: Decimal | None,
    fee: Decimal | None,
    executed_at: datetime | None,
    note: str = "",
    now: datetime | None = None,
) -> dict[str, str]:
    """The rules every new or changed transaction meets, however it arrives (page, API, CSV import):
    for each field that breaks one, what is wrong, phrased to follow the field's name. The
    database constraints are the last line; the history check (no oversell) comes after these."""
    errors = {}
    if quantity is not None and quantity <= 0:
        errors["quantity"] = "must be above zero"
    if unit_price is not None and unit_price < 0:
        errors["unit_price"] = "cannot be negative"
    if fee is not None and fee < 0:
        errors["fee"] = "cannot be negative"
    for name, value in (("quantity", quantity), ("unit_price", unit_price), ("fee", fee)):
        if value is not None and abs(value) >= MAX_DECIMAL:
            errors[name] = "is too large"
    if executed_at is not None:
        if executed_at > (now or timezone.now()) + FUTURE_TOLERANCE:
            errors["executed_at"] = "cannot be in the future"
        elif executed_at < EARLIEST:
            errors["executed_at"] = f"cannot be before {EARLIEST:%Y-%m-%d} (Bitcoin's first block)"
    if note and len(note) > MAX_NOTE:
        errors["note"] = f"cannot be longer than {MAX_NOTE} characters"
    return errors


def validate_transaction(tx: Transaction, *, now: datetime | None = None) -> None:
    """The transaction rules as form and API errors (ValidationError per field)."""
    errors = {}
    for name in ("quantity", "unit_price", "fee"):
        value = getattr(tx, name)
        if isinstance(value, Decimal):
            if value.is_nan():  # NaN cannot be compared: name it before the rules
                errors[name] = "Enter a number."
            elif value.is_zero():
                setattr(tx, name, value.copy_abs())  # -0 is stored and shown as 0
    if errors:
        raise ValidationError(errors)
    broken = transaction_rule_errors(
        quantity=tx.quantity, unit_price=tx.unit_price, fee=tx.fee, executed_at=tx.executed_at, note=tx.note, now=now
    )
    if broken:
        raise ValidationError({name: f"{FORM_SUBJECTS[name]} {what}." for name, what in broken.items()})
    tx.full_clean()


@transaction.atomic
def transaction_create(
    *,
    portfolio: Portfolio,
    asset: Asset,
    kind: str,
    quantity: Decimal,
    unit_price: Decimal = Decimal("0"),
    fee: Decimal = Decimal("0"),
    executed_at: datetime,
    note: str = "",
    submission_key: str = "",
) -> Transaction:
    """A new transaction; with a `submission_key` already used in this portfolio, the transaction
    that key created (a form submitted twice adds one row)."""
    lock(portfolio)  # also orders two submissions of one form: the second finds the first's row
    if submission_key:
        earlier = portfolio.transactions.filter(submission_key=submission_key).first()
        if earlier is not None:
            return earlier
    tx = Transaction(
        portfolio=portfolio,
        asset=asset,
        kind=kind,
        quantity=quantity,
        unit_price=unit_price,
        fee=fee,
        executed_at=executed_at,
        note=note.strip(),
        submission_key=submission_key[:64],
    )
    validate_transaction(tx)
    rows, ledger = check_history(portfolio, {asset.id}, add=[tx])
    tx.save()
    state_write(portfolio.id, {asset.id}, rows, ledger)
    return tx


@transaction.atomic
def transaction_update(*, tx: Transaction, **fields) -> Transaction:
    lock(tx.portfolio)
    old_asset = Transaction.objects.filter(id=tx.id).values_list("asset_id", flat=True).get()
    for name, value in fields.items():
        setattr(tx, name, value.strip() if name == "note" else value)
    validate_transaction(tx)
    rows, ledger = check_history(tx.portfolio, {old_asset, tx.asset_id}, replace=tx)
    tx.save()
    state_write(tx.portfolio_id, {old_asset, tx.asset_id}, rows, ledger)
    return tx


@transaction.atomic
def transaction_delete(*, tx: Transaction) -> None:
    lock(tx.portfolio)
    rows, ledger = check_history(tx.portfolio, {tx.asset_id}, drop=tx.id)
    tx.delete()
    state_write(tx.portfolio_id, {tx.asset_id}, rows, ledger)
