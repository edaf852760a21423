"""Display of stored decimals on the portfolio pages. The rules are core.formatting's (one place
for every page); these filters add the currency or unit after the number when given one:
{{ h.value|money:quote }} → "180.00 <span class="unit">USDT</span>"."""

from decimal import Decimal

from django import template
from django.utils.html import format_html

from core.formatting import DASH, money_text, percent_text, price_text, quantity_text

register = template.Library()


def _missing(value) -> bool:
    # A missing dictionary key renders as "" in templates: show it like None.
    return value is None or value == ""


def _with_unit(text: str, unit) -> str:
    # The unit in its own element, so a table of amounts can set it smaller than the digits.
    return format_html('{} <span class="unit">{}</span>', text, unit) if unit and text != DASH else text


@register.filter
def money(value, unit="") -> str:
    """Money: two decimals."""
    return _with_unit(money_text(None if _missing(value) else value), unit)


@register.filter
def signed_money(value, unit="") -> str:
    """Money with "+" on a gain (none on one that rounds to nothing)."""
    return _with_unit(money_text(None if _missing(value) else value, signed=True), unit)


@register.filter
def price(value, unit="") -> str:
    """A unit price: significant digits for a sub-cent coin, cents from 1 up."""
    return _with_unit(price_text(None if _missing(value) else value), unit)


@register.filter
def quantity(value, unit="") -> str:
    return _with_unit(quantity_text(None if _missing(value) else value), unit)


@register.filter
def percent(value) -> str:
    """A return or a change, in percent: "+" on a gain."""
    return percent_text(None if _missing(value) else value, signed=True)


@register.filter
def share(value) -> str:
    """A part of a whole, in percent: no sign."""
    return percent_text(None if _missing(value) else value)


@register.filter
def sort_key(value) -> str:
    """The exact number for sorting a table column in the browser; empty when there is none."""
    return "" if _missing(value) else format(Decimal(value), "f")


@register.filter
def sign_class(value) -> str:
    """CSS class for a gain or a loss."""
    if _missing(value) or value == 0:
        return ""
    return "gain" if value > 0 else "loss"
