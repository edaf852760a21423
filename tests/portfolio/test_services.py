"""Writing transactions: field rules and the oversell rule over the whole history of an asset."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from forecasting.models import Asset
from portfolio import services
from portfolio.models import Portfolio, Transaction
from portfolio.services import (
    portfolio_create,
    transaction_create,
    transaction_delete,
    transaction_update,
)
from tests.support.processes import wait_for

T0 = datetime(2022, 3, 1, 12, 0, tzinfo=UTC)


def add(folio, asset, kind, quantity, price="100", fee="0", *, hours=0, note=""):
    return transaction_create(
        portfolio=folio,
        asset=asset,
        kind=kind,
        quantity=D(quantity),
        unit_price=D(price),
        fee=D(fee),
        executed_at=T0 + timedelta(hours=hours),
        note=note,
    )


def snapshot():
    return list(
        Transaction.objects.order_by("id").values_list(
            "id", "portfolio_id", "asset_id", "kind", "quantity", "unit_price", "fee", "executed_at", "note"
        )
    )


def errors_of(exc_info) -> dict[str, list[str]]:
    return exc_info.value.message_dict


# --- field rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("quantity", "0", "Quantity must be above zero."),
        ("quantity", "-1", "Quantity must be above zero."),
        ("quantity", "-0", "Quantity must be above zero."),
        ("unit_price", "-0.01", "Price cannot be negative."),
        ("fee", "-0.00000001", "Fee cannot be negative."),
        ("quantity", "1e20", "Quantity is too large."),
        ("unit_price", "123456789012345678901234", "Price is too large."),
        ("fee", "Infinity", "Fee is too large."),
        ("quantity", "NaN", "Enter a number."),
        ("quantity", "0.000000001", "Ensure that there are no more than 8 decimal places."),
    ],
)
def test_field_rules_give_clear_errors_and_store_nothing(folio, btc, field, value, message):
    values = {"quantity": D("1"), "unit_price": D("100"), "fee": D("0"), field: D(value)}
    with pytest.raises(ValidationError) as exc:
        transaction_create(portfolio=folio, asset=btc, kind="buy", executed_at=T0, **values)
    assert errors_of(exc)[field] == [message]
    assert not Transaction.objects.exists()


def test_several_bad_fields_are_reported_together(folio, btc):
    with pytest.raises(ValidationError) as exc:
        transaction_create(
            portfolio=folio,
            asset=btc,
            kind="buy",
            quantity=D("0"),
            unit_price=D("-1"),
            fee=D("-1"),
            executed_at=timezone.now() + timedelta(days=1),
        )
    assert set(errors_of(exc)) == {"quantity", "unit_price", "fee", "executed_at"}


def test_a_date_in_the_future_is_refused(folio, btc):
    with pytest.raises(ValidationError) as exc:
        transaction_create(
            portfolio=folio, asset=btc, kind="buy", quantity=D("1"), executed_at=timezone.now() + timedelta(hours=1)
        )
    assert errors_of(exc) == {"executed_at": ["The date cannot be in the future."]}
    # A moment ago is fine.
    transaction_create(
        portfolio=folio, asset=btc, kind="buy", quantity=D("1"), executed_at=timezone.now() - timedelta(seconds=5)
    )


def test_the_largest_accepted_numbers_are_stored_and_read_back(folio, btc):
    big = D("9999999999999999999.99999999")  # just under the 1e19 limit, 8 decimal places
    tx = add(folio, btc, "buy", big, big, big)
    tx.refresh_from_db()
    if connection.vendor == "postgresql":
        assert (tx.quantity, tx.unit_price, tx.fee) == (big, big, big)
    else:  # SQLite stores decimals as floats: close, and still readable
        assert float(tx.quantity) == pytest.approx(float(big))
    add(folio, btc, "sell", big, "1", hours=1)  # all of it: no oversell from rounding
    with pytest.raises(ValidationError) as exc:
        add(folio, btc, "buy", "1e19")
    assert errors_of(exc) == {"quantity": ["Quantity is too large."]}


def test_negative_zero_price_and_fee_are_stored_as_zero(folio, btc):
    tx = add(folio, btc, "reward", "0.5", "-0", "-0")
    for value in (tx.unit_price, tx.fee):
        assert value == 0 and not value.is_signed()
    tx.refresh_from_db()
    for value in (tx.unit_price, tx.fee):
        assert value == 0 and not value.is_signed()
        assert f"{value.normalize():f}" == "0"


def test_the_note_is_stripped_and_saved(folio, btc):
    tx = add(folio, btc, "buy", "1", note="  from the old exchange \n")
    tx.refresh_from_db()
    assert tx.note == "from the old exchange"


# --- the oversell rule -----------------------------------------------------------------------------


def test_create_refuses_a_sell_of_more_than_was_held_then(folio, btc):
    add(folio, btc, "buy", "1", hours=0)
    add(folio, btc, "buy", "1", hours=10)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        add(folio, btc, "sell", "1.5", hours=5)  # 1.5 held at hour 10, but only 1 at hour 5
    assert errors_of(exc) == {
        "quantity": ["Not enough BTC: sell of 1.5 on 2022-03-01 17:00 UTC is more than the 1 held then."]
    }
    assert snapshot() == before
    add(folio, btc, "sell", "1.5", hours=11)  # after the second buy it is fine


@pytest.mark.parametrize("kind", ["transfer_out", "fee"])
def test_create_refuses_other_outflows_beyond_the_holding(folio, btc, kind):
    add(folio, btc, "buy", "0.1")
    with pytest.raises(ValidationError) as exc:
        add(folio, btc, kind, "0.2", "0", hours=1)
    assert "is more than the 0.1 held then" in errors_of(exc)["quantity"][0]
    assert Transaction.objects.count() == 1


def test_a_new_sell_that_would_oversell_a_later_one_is_refused(folio, btc):
    add(folio, btc, "buy", "1", hours=0)
    add(folio, btc, "sell", "1", hours=10)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        add(folio, btc, "sell", "0.5", hours=5)  # fits at hour 5, but then the sell at hour 10 does not
    assert errors_of(exc) == {
        "quantity": ["Not enough BTC: sell of 1 on 2022-03-01 22:00 UTC is more than the 0.5 held then."]
    }
    assert snapshot() == before


def test_editing_an_earlier_buy_down_is_refused_when_a_later_sell_needs_it(folio, btc):
    buy = add(folio, btc, "buy", "2", hours=0)
    add(folio, btc, "sell", "1.5", hours=10)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        transaction_update(tx=Transaction.objects.get(id=buy.id), quantity=D("1"))
    assert errors_of(exc) == {
        "quantity": ["Not enough BTC: sell of 1.5 on 2022-03-01 22:00 UTC is more than the 1 held then."]
    }
    assert snapshot() == before
    # Down to exactly what the sell needs is allowed.
    transaction_update(tx=Transaction.objects.get(id=buy.id), quantity=D("1.5"))
    assert Transaction.objects.get(id=buy.id).quantity == D("1.5")


def test_moving_a_buy_after_the_sell_that_needs_it_is_refused(folio, btc):
    buy = add(folio, btc, "buy", "2", hours=0)
    add(folio, btc, "sell", "1.5", hours=10)
    before = snapshot()
    with pytest.raises(ValidationError):
        transaction_update(tx=Transaction.objects.get(id=buy.id), executed_at=T0 + timedelta(hours=11))
    assert snapshot() == before


def test_turning_a_buy_into_a_sell_is_checked(folio, btc):
    add(folio, btc, "buy", "1", hours=0)
    second = add(folio, btc, "buy", "1", hours=1)
    add(folio, btc, "sell", "1", hours=2)
    before = snapshot()
    with pytest.raises(ValidationError):
        # −1 at hour 1 leaves 0, and the sell at hour 2 has nothing
        transaction_update(tx=Transaction.objects.get(id=second.id), kind="sell")
    assert snapshot() == before


def test_deleting_a_buy_a_later_sell_depended_on_is_refused(folio, btc):
    add(folio, btc, "buy", "1", hours=0)
    second = add(folio, btc, "buy", "1", hours=1)
    sell = add(folio, btc, "sell", "1.5", hours=2)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        transaction_delete(tx=Transaction.objects.get(id=second.id))
    assert errors_of(exc) == {
        "quantity": ["Not enough BTC: sell of 1.5 on 2022-03-01 14:00 UTC is more than the 1 held then."]
    }
    assert snapshot() == before
    # The sell itself can go, and then the buy too.
    transaction_delete(tx=sell)
    transaction_delete(tx=Transaction.objects.get(id=second.id))
    assert Transaction.objects.count() == 1


def test_moving_a_buy_to_another_asset_rechecks_the_asset_it_leaves(folio, btc, eth):
    buy = add(folio, btc, "buy", "1", hours=0)
    add(folio, btc, "sell", "0.5", hours=1)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        transaction_update(tx=Transaction.objects.get(id=buy.id), asset=eth)
    assert errors_of(exc)["quantity"][0].startswith("Not enough BTC: sell of 0.5")
    assert snapshot() == before


def test_moving_a_sell_to_another_asset_rechecks_the_asset_it_joins(folio, btc, eth):
    add(folio, btc, "buy", "2", hours=0)
    sell = add(folio, btc, "sell", "1.5", hours=2)
    add(folio, eth, "buy", "1", hours=1)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        transaction_update(tx=Transaction.objects.get(id=sell.id), asset=eth)
    assert errors_of(exc)["quantity"][0].startswith("Not enough ETH: sell of 1.5")
    assert snapshot() == before
    # A sell that fits the other asset moves.
    transaction_update(tx=Transaction.objects.get(id=sell.id), asset=eth, quantity=D("0.5"))
    moved = Transaction.objects.get(id=sell.id)
    assert (moved.asset_id, moved.quantity) == (eth.id, D("0.5"))


def test_other_portfolios_do_not_count(folio, btc, user):
    other = portfolio_create(owner=user, name="Other")
    add(other, btc, "buy", "5")
    with pytest.raises(ValidationError):
        add(folio, btc, "sell", "1", hours=1)


def test_an_edit_that_fails_a_field_rule_changes_nothing(folio, btc):
    buy = add(folio, btc, "buy", "1")
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        transaction_update(tx=Transaction.objects.get(id=buy.id), unit_price=D("-5"))
    assert errors_of(exc) == {"unit_price": ["Price cannot be negative."]}
    assert snapshot() == before


def test_portfolio_names_are_unique_per_owner(user, django_user_model):
    portfolio_create(owner=user, name="Main")
    with pytest.raises(ValidationError):
        portfolio_create(owner=user, name=" Main ")
    bob = django_user_model.objects.create_user(username="bob", password="x-long-password-1")
    portfolio_create(owner=bob, name="Main")
    assert Portfolio.objects.filter(name="Main").count() == 2


# --- two writers at once -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_sells_at_once_that_together_oversell_let_only_one_through(on_postgres, monkeypatch):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="carol", password="x-long-password-1")
    folio = portfolio_create(owner=user, name="Race")
    btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
    add(folio, btc, "buy", "1", hours=0)

    # Hold the first writer between its check and its insert until the other one is either waiting
    # for the portfolio lock (PostgreSQL says so) or, without the lock, has checked the same history
    # too: then both would pass. Waiting for that state, not for a while, makes the race certain.
    real_replay = services.replay
    backends, checked = {}, []

    def other_writer_waits_for_a_lock(me) -> bool:
        [other] = [pid for ident, pid in backends.items() if ident != me]
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)", [other])
            return cursor.fetchone()[0]

    def held_replay(rows):
        ledger = real_replay(rows)
        me = threading.get_ident()
        checked.append(me)
        if checked[0] == me and len(checked) == 1:
            wait_for(
                lambda: len(checked) > 1 or other_writer_waits_for_a_lock(me),
                timeout=30,
                what="the other writer to wait for the lock or check the same history",
                interval=0.01,
            )
        return ledger

    monkeypatch.setattr(services, "replay", held_replay)
    barrier, outcomes = threading.Barrier(2, timeout=30), []

    def sell(hours):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends[threading.get_ident()] = cursor.fetchone()[0]
        barrier.wait()
        try:
            add(folio, btc, "sell", "0.7", hours=hours)
            outcomes.append("sold")
        except ValidationError as exc:
            outcomes.append(exc.message_dict["quantity"][0])
        finally:
            connection.close()

    threads = [threading.Thread(target=sell, args=(h,)) for h in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("sold") == 1
    [refused] = [o for o in outcomes if o != "sold"]
    assert "is more than the 0.3 held then" in refused
    assert Transaction.objects.filter(kind="sell").count() == 1
