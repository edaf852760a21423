"""The display rules for money, unit prices and quantities (core.formatting), and the portfolio
template filters that add a currency to them."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.template import Context, Template

from core.formatting import DASH, money_text, percent_text, price_text, quantity_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("30020", "30,020.00"),
        ("0.07", "0.07"),
        ("0.005", "0.00"),  # half to even, as every figure here
        ("0.015", "0.02"),
        ("-0.004", "0.00"),  # a loss under half a cent: no "-0.00"
        ("-1234.565", "-1,234.56"),
        ("0.00001234", "0.00"),  # money is two decimals, however small
        ("1e37", "10,000,000,000,000,000,000,000,000,000,000,000,000.00"),  # past the default 28 digits
        (None, DASH),
    ],
)
def test_money_has_two_decimals_and_thousands_separators(value, text):
    assert money_text(None if value is None else D(value)) == text


def test_signed_money_marks_a_gain_that_does_not_round_to_nothing():
    assert money_text(D("93"), signed=True) == "+93.00"
    assert money_text(D("0.004"), signed=True) == "0.00"
    assert money_text(D("-5"), signed=True) == "-5.00"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("30020.5", "30,020.50"),  # cents from 1 up: four significant digits are fewer than that
        ("277.814", "277.81"),
        ("1.2345", "1.234"),  # four significant digits (half to even)
        ("0.5234", "0.5234"),
        ("0.1", "0.10"),  # trailing zeros past two dropped
        ("0.00001234", "0.00001234"),  # a sub-cent coin keeps its digits
        ("0.000012", "0.000012"),
        ("0.000000012", "0.00000001"),  # never past the eight places stored
        ("0", "0.00"),
        (None, DASH),
    ],
)
def test_price_shows_significant_digits_for_small_prices(value, text):
    assert price_text(None if value is None else D(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.00012345", "0.00012345"),
        ("1250", "1,250"),
        ("0.5", "0.5"),
        ("0.123456789", "0.12345679"),
        ("0", "0"),
        (None, DASH),
    ],
)
def test_quantity_keeps_every_stored_decimal_but_trailing_zeros(value, text):
    assert quantity_text(None if value is None else D(value)) == text


def render(source: str, **context) -> str:
    return Template("{% load portfolio_format %}" + source).render(Context(context))


def test_filters_add_the_currency_and_leave_a_missing_value_bare():
    assert render("{{ v|money:q }}", v=D("180"), q="USDT") == '180.00 <span class="unit">USDT</span>'
    assert render("{{ v|signed_money:q }}", v=D("28.5"), q="USDT") == '+28.50 <span class="unit">USDT</span>'
    assert render("{{ v|price:q }}", v=D("0.00001234"), q="USDT") == '0.00001234 <span class="unit">USDT</span>'
    assert render("{{ v|quantity:u }}", v=D("0.00012345"), u="BTC") == '0.00012345 <span class="unit">BTC</span>'
    assert render("{{ v|money:q }}", v=None, q="USDT") == DASH
    assert render("{{ v|money }}", v=D("1")) == "1.00"
    # The unit is escaped like any text.
    assert render("{{ v|money:q }}", v=D("1"), q="<b>") == '1.00 <span class="unit">&lt;b&gt;</span>'


def test_share_percent_and_sort_key_filters():
    assert render("{{ v|share }}", v=D("66.666666")) == "66.67%"
    assert render("{{ v|percent }}", v=D("15.8415")) == "+15.84%"
    assert render("{{ v|percent }}", v=D("-0.001")) == "0.00%"
    assert render("{{ v|sort_key }}", v=D("1E+1")) == "10"
    assert render("{{ v|sort_key }}", v=None) == ""


@pytest.mark.parametrize(
    ("value", "kwargs", "text"),
    [
        (D("15.8415"), {"signed": True}, "+15.84%"),
        (D("-0.001"), {"signed": True}, "0.00%"),  # no "-0.00%" for a change that rounds to nothing
        (D("0"), {"signed": True}, "0.00%"),
        (D("0.125"), {}, "0.12%"),  # half to even
        (D("-12345.678"), {}, "-12,345.68%"),
        (1.23456, {"signed": True, "places": 1}, "+1.2%"),  # a float metric, as admin and the asset list pass
        (None, {}, DASH),
    ],
)
def test_percent_is_one_rule_for_portfolio_pages_asset_list_and_admin(value, kwargs, text):
    assert percent_text(value, **kwargs) == text


def test_admin_writes_its_metric_comparisons_by_that_rule():
    from forecasting.admin import _signed_pct

    assert _signed_pct(-0.61) == "\u22120.6%" and _signed_pct(-0.01) == "0.0%" and _signed_pct(2.05) == "+2.0%"
