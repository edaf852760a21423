"""Display of stored decimals: quantized for reading, never through floats."""

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from django import template

register = template.Library()

CENT = Decimal("0.01")
UNIT8 = Decimal("1e-8")
DASH = "—"


def _missing(value) -> bool:
    # A missing dictionary key renders as "" in templates: show it like None.
    return value is None or value == ""


# Quantities and prices stay under 1e19 (portfolio.services.MAX_DECIMAL), so a value or a cost is
# under 1e38 plus fees; to 8 places that needs 46 digits, more than the default context's 28.
WIDE = 80


def _money(value: Decimal) -> str:
    # Under 1 a coin price needs its small digits (0.00001234); above, cents are enough.
    with localcontext(prec=WIDE):
        if value == 0 or abs(value) >= 1:
            return format(value.quantize(CENT, ROUND_HALF_EVEN), ",f")
        text = format(value.quantize(UNIT8, ROUND_HALF_EVEN).normalize(), "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


@register.filter
def money(value) -> str:
    return DASH if _missing(value) else _money(Decimal(value))


@register.filter
def signed_money(value) -> str:
    if _missing(value):
        return DASH
    value = Decimal(value)
    text = _money(value)
    # No "+" on a gain that rounds to nothing.
    return ("+" if value > 0 and text.strip("0.,") else "") + text


@register.filter
def quantity(value) -> str:
    if _missing(value):
        return DASH
    with localcontext(prec=WIDE):
        return format(Decimal(value).quantize(UNIT8, ROUND_HALF_EVEN).normalize(), ",f")


@register.filter
def percent(value) -> str:
    if _missing(value):
        return DASH
    with localcontext(prec=WIDE):
        value = Decimal(value).quantize(CENT, ROUND_HALF_EVEN)
    return ("+" if value > 0 else "") + format(value, ",f") + "%"


@register.filter
def sign_class(value) -> str:
    """CSS class for a gain or a loss."""
    if _missing(value) or value == 0:
        return ""
    return "gain" if value > 0 else "loss"
