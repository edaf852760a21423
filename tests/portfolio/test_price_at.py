"""The price look-up behind the transaction form (GET /portfolios/price-at/): the close of the
stored candle at a time, with where it came from, and clear JSON errors; and the add form's
defaults (the time now, the script that fills the price)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from forecasting.models import Asset
from portfolio import services
from tests.factories import candles

NEWEST = datetime(2022, 10, 11, 10, tzinfo=UTC)  # open time of the newest candle
URL = reverse("portfolio:price-at")


@pytest.fixture
def btc(db):
    """24 hourly candles to NEWEST whose close is 100 + the hour's index (100 at 11 Oct 2022
    11:00 the day before … 123 at 10:00), and a gap: none is stored for 05:00."""
    asset = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", interval="1h")
    stored = candles(asset, [Decimal(100 + i) for i in range(24)], newest=NEWEST)
    for c in stored:
        if c.open_time == NEWEST.replace(hour=5):
            c.delete()
    return asset


def ask(client, **params):
    return client.get(URL, params)


def test_a_time_inside_a_candle_gets_that_candles_close(signed_in, btc):
    response = ask(signed_in, symbol="BTCUSDT", time="2022-10-11T09:30")
    assert response.status_code == 200
    assert response.json() == {
        "symbol": "BTCUSDT",
        "quote": "USDT",
        "interval": "1h",
        "price": "122",
        "open_time": "2022-10-11T09:00:00Z",
        "close_time": "2022-10-11T09:59:59.999Z",
        "source": "Filled from the BTCUSDT 1h candle of 2022-10-11 09:00 UTC (close). You can change it.",
    }
    # Its open time exactly, a lower-case symbol, seconds and an explicit offset all mean the same.
    for time in ("2022-10-11T09:00:00", "2022-10-11T09:59:59", "2022-10-11T11:15:00+02:00", "2022-10-11T09:00Z"):
        body = ask(signed_in, symbol="btcusdt", time=time).json()
        assert (body["price"], body["open_time"]) == ("122", "2022-10-11T09:00:00Z"), time


def test_after_the_newest_candle_its_close_and_the_source_says_so(signed_in, btc):
    body = ask(signed_in, symbol="BTCUSDT", time="2022-10-12T08:00").json()
    assert body["price"] == "123"
    assert body["open_time"] == "2022-10-11T10:00:00Z"
    assert body["source"] == (
        "Filled from the BTCUSDT 1h candle of 2022-10-11 10:00 UTC (close), the newest stored before that time. "
        "You can change it."
    )


def test_in_a_gap_of_the_data_the_last_candle_before_it(signed_in, btc):
    body = ask(signed_in, symbol="BTCUSDT", time="2022-10-11T05:30").json()
    assert (body["price"], body["open_time"]) == ("117", "2022-10-11T04:00:00Z")
    assert "the newest stored before that time" in body["source"]


def test_before_the_first_candle_is_404_with_a_json_error(signed_in, btc):
    response = ask(signed_in, symbol="BTCUSDT", time="2022-10-10T10:59")
    assert response.status_code == 404
    assert response.json() == {"error": "No BTCUSDT candle is stored at or before 2022-10-10 10:59 UTC."}


def test_an_unknown_symbol_is_404_with_a_json_error(signed_in, btc):
    response = ask(signed_in, symbol="DOGEUSDT", time="2022-10-11T09:30")
    assert response.status_code == 404
    assert response.json() == {"error": "No prices are stored for DOGEUSDT."}


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"symbol": "BTCUSDT", "time": "yesterday"}, "time: Enter a valid date/time."),
        ({"symbol": "BTCUSDT", "time": "2022-13-01T00:00"}, "time: Enter a valid date/time."),
        ({"symbol": "BTCUSDT"}, "time: This field is required."),
        ({"symbol": "BTC-USDT", "time": "2022-10-11T09:30"}, "symbol: A Binance symbol is 2 to 20 letters and"),
        ({"symbol": "BTC\x00", "time": "2022-10-11T09:30"}, "symbol: "),
        ({}, "symbol: This field is required."),
    ],
)
def test_bad_input_is_400_with_a_json_error_naming_the_field(signed_in, btc, params, error):
    response = ask(signed_in, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith(error), body
    assert set(body["fields"]) <= {"symbol", "time"}


def test_any_signed_in_person_may_ask_as_it_is_market_data(client, btc, django_user_model):
    outsider = django_user_model.objects.create_user(username="carol", password="another-long-passphrase")
    client.force_login(outsider)  # owns no portfolio at all
    assert ask(client, symbol="BTCUSDT", time="2022-10-11T09:30").json()["price"] == "122"


def test_anonymous_callers_are_sent_to_sign_in(client, btc):
    response = ask(client, symbol="BTCUSDT", time="2022-10-11T09:30")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/portfolios/price-at/")


def test_only_get_is_allowed(signed_in, btc):
    assert signed_in.post(URL, {"symbol": "BTCUSDT", "time": "2022-10-11T09:30"}).status_code == 405


def test_the_add_form_starts_at_now_in_utc_and_loads_the_price_script(signed_in, user):
    portfolio = services.portfolio_create(owner=user, name="Main")
    before = timezone.now().astimezone(UTC).replace(second=0, microsecond=0)
    page = signed_in.get(reverse("portfolio:transaction-add", args=[portfolio.pk])).content.decode()
    after = timezone.now().astimezone(UTC)
    value = re.search(r'name="executed_at" value="([^"]+)"', page).group(1)
    shown = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert before <= shown <= after and shown.second == 0
    assert f'data-price-url="{URL}"' in page
    assert 'src="/static/js/portfolio/transaction_form.js"' in page
    assert 'id="unit-price-source"' in page
    # The price is still required when no script fills it.
    response = signed_in.post(
        reverse("portfolio:transaction-add", args=[portfolio.pk]),
        {"symbol": "BTCUSDT", "kind": "buy", "quantity": "1", "unit_price": "", "executed_at": value},
    )
    assert response.context["form"].errors["unit_price"] == ["This field is required."]


def test_the_edit_form_keeps_the_transactions_time(signed_in, user, btc):
    portfolio = services.portfolio_create(owner=user, name="Main")
    tx = services.transaction_create(
        portfolio=portfolio,
        asset=btc,
        kind="buy",
        quantity=Decimal("1"),
        unit_price=Decimal("120"),
        executed_at=NEWEST - timedelta(hours=3),
    )
    page = signed_in.get(reverse("portfolio:transaction-edit", args=[portfolio.pk, tx.pk])).content.decode()
    assert 'name="executed_at" value="2022-10-11T07:00:00"' in page
