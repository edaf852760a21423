"""CSV import and export of transactions: all or nothing, every bad line named, duplicates, round trip."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from portfolio.models import Transaction
from portfolio.services import portfolio_create, transaction_create
from portfolio.transactions_csv import (
    CSV_COLUMNS,
    CSV_HELP,
    CsvImportError,
    transactions_export_csv,
    transactions_import_csv,
)

HEADER = ",".join(CSV_COLUMNS)
T0 = datetime(2022, 3, 1, 12, 0, tzinfo=UTC)


def rows_of(portfolio):
    return list(
        portfolio.transactions.order_by("executed_at", "id").values_list(
            "asset__symbol", "kind", "quantity", "unit_price", "fee", "executed_at", "note"
        )
    )


def import_error(portfolio, text) -> list[str]:
    with pytest.raises(CsvImportError) as exc:
        transactions_import_csv(portfolio=portfolio, text=text)
    return exc.value.report.errors


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_imported(folio, btc, eth):
    text = "\n".join(
        [
            HEADER,
            "2022-03-01T12:00:00Z,buy,BTCUSDT,1,40000,5,fine",  # 2: good
            "2022-03-01T13:00:00Z,buy,BTCUSDT,0,40000,0,",  # 3: quantity zero
            "yesterday,buy,BTCUSDT,1,40000,0,",  # 4: not a date
            "2022-03-01T14:00:00Z,swap,BTCUSDT,1,40000,0,",  # 5: unknown kind
            "2022-03-01T15:00:00Z,buy,DOGEUSDT,1,0.1,0,",  # 6: symbol not tracked
            "2022-03-01T16:00:00Z,buy,ETHUSDT,1,-3,0,",  # 7: negative price
            "2022-03-01T17:00:00Z,buy,ETHUSDT,1,3,-1,",  # 8: negative fee
            "2022-03-01T18:00:00Z,buy,ETHUSDT,1.5.2,3,0,",  # 9: not a number
            "2022-03-01T19:00:00Z,buy,ETHUSDT,0.000000001,3,0,",  # 10: 9 decimal places
            "2022-03-01T20:00:00Z,buy,ETHUSDT,1e19,3,0,",  # 11: too large
            "2022-03-01T21:00:00Z,buy,ETHUSDT,1,3,0,note,extra",  # 12: a column too many
            "2022-03-01T22:00:00Z,buy,ETHUSDT,,3,0,",  # 13: quantity missing
            "2022-03-01T23:00:00Z,buy,ETHUSDT,NaN,3,0,",  # 14: NaN
        ]
    )
    errors = import_error(folio, text)
    assert errors == [
        "line 3: quantity must be above zero",
        "line 4: executed_at 'yesterday' is not a date and time like 2024-03-01T14:30:00Z",
        "line 5: kind 'swap' is not one of buy, fee, reward, sell, transfer_in, transfer_out",
        "line 6: DOGEUSDT is not tracked; track it first (Assets) and import again",
        "line 7: unit_price cannot be negative",
        "line 8: fee cannot be negative",
        "line 9: quantity '1.5.2' is not a number",
        "line 10: quantity '0.000000001' has more than 8 decimal places",
        "line 11: quantity '1e19' is too large",
        "line 12: more columns than the header",
        "line 13: quantity is missing",
        "line 14: quantity 'NaN' is not a number",
    ]
    assert not Transaction.objects.exists()


def test_line_numbers_count_blank_lines_and_notes_over_several_lines(folio, btc):
    text = (
        f"{HEADER}\n"
        '2022-03-01T12:00:00Z,buy,BTCUSDT,1,40000,0,"a note\nover two lines"\n'  # lines 2-3
        "\n"  # line 4: blank
        "2022-03-01T13:00:00Z,buy,BTCUSDT,-1,40000,0,\n"  # line 5
    )
    assert import_error(folio, text) == ["line 5: quantity must be above zero"]


def test_a_future_date_is_refused(folio, btc):
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    errors = import_error(folio, f"{HEADER}\n{soon},buy,BTCUSDT,1,40000,0,\n")
    assert errors == ["line 2: executed_at cannot be in the future"]


def test_a_wrong_header_is_refused_before_any_row(folio, btc):
    errors = import_error(folio, "date,type,pair,amount,price\n2022-03-01T12:00:00Z,buy,BTCUSDT,1,40000\n")
    assert errors == [f"line 1: the header lacks executed_at, kind, symbol, quantity, unit_price; expected {HEADER}"]
    assert not Transaction.objects.exists()


def test_fee_and_note_columns_are_optional_and_columns_may_be_in_any_order(folio, btc):
    text = "symbol,kind,executed_at,unit_price,quantity\nbtcusdt,BUY,2022-03-01 12:00:00,40000,0.5\n"
    report = transactions_import_csv(portfolio=folio, text=text)
    assert report.created == 1
    # No offset means UTC.
    assert rows_of(folio) == [("BTCUSDT", "buy", D("0.5"), D("40000"), D("0"), T0, "")]


def test_a_byte_order_mark_from_a_spreadsheet_is_ignored(folio, btc):
    report = transactions_import_csv(portfolio=folio, text=f"\ufeff{HEADER}\n2022-03-01T12:00:00Z,buy,BTCUSDT,1,2,0,\n")
    assert report.created == 1


def test_a_row_already_present_is_a_duplicate_and_not_stored_twice(folio, btc):
    transaction_create(
        portfolio=folio, asset=btc, kind="buy", quantity=D("1.5"), unit_price=D("40000"), fee=D("2"), executed_at=T0
    )
    text = "\n".join(
        [
            HEADER,
            # The same transaction written differently: trailing zeros, another offset, another note.
            "2022-03-01T13:00:00+01:00,buy,BTCUSDT,1.50000000,40000.0,2,imported again",
            "2022-03-02T12:00:00Z,sell,BTCUSDT,0.5,41000,1,",
        ]
    )
    report = transactions_import_csv(portfolio=folio, text=text)
    assert (report.created, report.duplicates, report.errors) == (1, [2], [])
    assert Transaction.objects.count() == 2
    # Importing the same file again creates nothing.
    report = transactions_import_csv(portfolio=folio, text=text)
    assert (report.created, report.duplicates) == (0, [2, 3])
    assert Transaction.objects.count() == 2


def test_a_row_repeated_within_the_file_is_an_error(folio, btc):
    row = "2022-03-01T12:00:00Z,buy,BTCUSDT,1,40000,0,"
    errors = import_error(folio, f"{HEADER}\n{row}\n2022-03-01T12:30:00Z,buy,BTCUSDT,1,40000,0,\n{row}\n")
    assert errors == ["line 4: repeats line 2"]
    assert not Transaction.objects.exists()


def test_an_oversell_inside_the_file_names_its_line(folio, btc):
    text = "\n".join(
        [
            HEADER,
            "2022-03-01T12:00:00Z,buy,BTCUSDT,1,40000,0,",
            "2022-03-01T13:00:00Z,sell,BTCUSDT,0.6,41000,0,",
            "2022-03-01T14:00:00Z,sell,BTCUSDT,0.6,42000,0,",  # only 0.4 left
        ]
    )
    assert import_error(folio, text) == [
        "line 4: not enough BTC: sell of 0.6 on 2022-03-01 14:00 UTC is more than the 0.4 held then"
    ]
    assert not Transaction.objects.exists()


def test_rows_are_checked_in_time_order_with_what_is_already_stored(folio, btc):
    transaction_create(portfolio=folio, asset=btc, kind="buy", quantity=D("1"), unit_price=D("1"), executed_at=T0)
    # The sell is first in the file but last in time: it is covered by the buy on line 3 and the stored one.
    text = f"{HEADER}\n2022-03-05T00:00:00Z,sell,BTCUSDT,1.5,2,0,\n2022-03-02T00:00:00Z,buy,BTCUSDT,0.5,1,0,\n"
    assert transactions_import_csv(portfolio=folio, text=text).created == 2
    # An imported outflow earlier than a stored sell can leave the stored sell short.
    transaction_create(
        portfolio=folio,
        asset=btc,
        kind="transfer_in",
        quantity=D("0.01"),
        unit_price=D("1"),
        executed_at=T0 + timedelta(days=8),
    )
    transaction_create(
        portfolio=folio,
        asset=btc,
        kind="sell",
        quantity=D("0.01"),
        unit_price=D("1"),
        executed_at=T0 + timedelta(days=10),
    )
    before = rows_of(folio)
    errors = import_error(folio, f"{HEADER}\n2022-03-10T00:00:00Z,fee,BTCUSDT,0.005,0,0,\n")
    assert errors == [
        "an existing transaction: not enough BTC: sell of 0.01 on 2022-03-11 12:00 UTC is more than the 0.005 held then"
    ]
    assert rows_of(folio) == before


def test_export_then_import_into_an_empty_portfolio_round_trips_exactly(folio, btc, eth, user):
    def add(asset, kind, quantity, price, fee, at, note=""):
        transaction_create(
            portfolio=folio,
            asset=asset,
            kind=kind,
            quantity=D(quantity),
            unit_price=D(price),
            fee=D(fee),
            executed_at=at,
            note=note,
        )

    add(btc, "buy", "1.23456789", "16543.21", "1.5", T0, 'first, with "quotes"')
    add(btc, "sell", "0.5", "20000", "0.00000001", T0 + timedelta(days=3, microseconds=123456))
    add(btc, "fee", "0.0001", "0", "0", T0 + timedelta(days=4))
    add(eth, "transfer_in", "10", "1200", "0", T0 + timedelta(days=1), "from cold wallet\nsecond line")
    add(eth, "reward", "0.01", "1250.5", "0", T0 + timedelta(days=1, hours=1))
    add(eth, "transfer_out", "2", "1300", "0.1", T0 + timedelta(days=5), "ünïcode note")
    add(eth, "buy", "100000000", "0.00000001", "0", T0 + timedelta(days=6))
    exported = transactions_export_csv(portfolio=folio)

    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == CSV_COLUMNS
    assert rows[1] == [
        "2022-03-01T12:00:00Z",
        "buy",
        "BTCUSDT",
        "1.23456789",
        "16543.21",
        "1.5",
        'first, with "quotes"',
    ]
    assert rows[3][0] == "2022-03-02T13:00:00Z"  # the reward, in time order
    assert "2022-03-04T12:00:00.123456Z" in exported
    assert ",100000000,0.00000001,0," in exported

    empty = portfolio_create(owner=user, name="Copy")
    report = transactions_import_csv(portfolio=empty, text=exported)
    assert (report.created, report.duplicates, report.errors) == (7, [], [])
    assert rows_of(empty) == rows_of(folio)
    assert transactions_export_csv(portfolio=empty) == exported


def test_every_column_is_documented():
    assert list(CSV_HELP) == CSV_COLUMNS
    assert all(CSV_HELP[c].strip() for c in CSV_COLUMNS)
    for kind, _ in Transaction.Kind.choices:
        assert kind in CSV_HELP["kind"]


# --- one rule for a transaction, however it arrives ----------------------------------------------

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
RULE_CASES = [
    # (field, value in the file, value for the service, what both say)
    ("quantity", "0", D("0"), "must be above zero"),
    ("unit_price", "-1", D("-1"), "cannot be negative"),
    ("fee", "-0.5", D("-0.5"), "cannot be negative"),
    ("executed_at", "2024-03-01T12:05:00Z", NOW + timedelta(minutes=5), "cannot be in the future"),
    (
        "executed_at",
        "2008-12-31T00:00:00Z",
        datetime(2008, 12, 31, tzinfo=UTC),
        "cannot be before 2009-01-03 (Bitcoin's first block)",
    ),
    ("note", "n" * 501, "n" * 501, "cannot be longer than 500 characters"),
]


@pytest.mark.parametrize("name, in_file, value, rule", RULE_CASES, ids=[f"{c[0]}-{c[3][:12]}" for c in RULE_CASES])
def test_the_forms_and_the_csv_import_refuse_the_same_transaction_for_the_same_reason(
    folio, btc, name, in_file, value, rule
):
    from django.core.exceptions import ValidationError

    from portfolio.services import FORM_SUBJECTS, validate_transaction

    good = {
        "executed_at": "2024-03-01T11:00:00Z",
        "kind": "buy",
        "symbol": "BTCUSDT",
        "quantity": "1",
        "unit_price": "100",
        "fee": "0",
        "note": "",
    }
    line = ",".join({**good, name: in_file}[c] for c in CSV_COLUMNS)
    with pytest.raises(CsvImportError) as csv_refusal:
        transactions_import_csv(portfolio=folio, text=f"{HEADER}\n{line}\n", now=NOW)
    assert csv_refusal.value.report.errors == [f"line 2: {name} {rule}"]

    fields = {
        "asset": btc,
        "kind": "buy",
        "quantity": D("1"),
        "unit_price": D("100"),
        "fee": D("0"),
        "executed_at": datetime(2024, 3, 1, 11, tzinfo=UTC),
        "note": "",
        name: value,
    }
    with pytest.raises(ValidationError) as form_refusal:
        validate_transaction(Transaction(portfolio=folio, **fields), now=NOW)
    assert form_refusal.value.message_dict[name] == [f"{FORM_SUBJECTS[name]} {rule}."]


def test_a_clock_a_few_seconds_ahead_is_not_the_future_for_either(folio, btc):
    from portfolio.services import validate_transaction

    soon = NOW + timedelta(seconds=30)
    validate_transaction(
        Transaction(portfolio=folio, asset=btc, kind="buy", quantity=D("1"), unit_price=D("1"), executed_at=soon),
        now=NOW,
    )
    report = transactions_import_csv(
        portfolio=folio, text=f"{HEADER}\n2024-03-01T12:00:30Z,buy,BTCUSDT,1,1,0,\n", now=NOW
    )
    assert report.created == 1


# --- formulas -------------------------------------------------------------------------------------

NOTES = [
    "=1+2",
    "+SUM(A1:A2)",
    "-2+3",
    "@cmd",
    '=HYPERLINK("http://x")',
    "'=already quoted",
    "''",
    "'hello",
    "plain",
    "a=b",
    "'",
    "quote's inside",
    "- dash first",
    " =spaced",
]


def test_export_escapes_formulas_and_import_gives_back_the_same_text(folio, btc, user):
    from portfolio.services import portfolio_create

    for i, note in enumerate(NOTES):
        Transaction.objects.create(
            portfolio=folio,
            asset=btc,
            kind="buy",
            quantity=D(1),
            unit_price=D(100),
            executed_at=T0 + timedelta(hours=i),
            note=note,
        )
    exported = transactions_export_csv(portfolio=folio)
    cells = [row["note"] for row in csv.DictReader(io.StringIO(exported))]
    # No cell a spreadsheet would run: what starts like a formula starts with an apostrophe.
    assert all(c.lstrip(" \t\r\n")[:1] not in "=+-@" for c in cells), cells
    assert cells[NOTES.index("plain")] == "plain" and cells[NOTES.index("a=b")] == "a=b"
    assert cells[NOTES.index("=1+2")] == "'=1+2"
    copy = portfolio_create(owner=user, name="Copy")
    transactions_import_csv(portfolio=copy, text=exported)
    assert list(copy.transactions.order_by("executed_at").values_list("note", flat=True)) == NOTES
