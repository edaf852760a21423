"""Numbers as text, one rule each, for pages, admin and the API."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

DASH = "—"
_PLACES = {8: Decimal("1e-8")}


def significant(value: float | None) -> str:
    """A metric for reading: four significant digits suit both BTC (277.8) and sub-cent pairs
    (0.0001234); from 1,000 up, whole numbers with separators."""
    if value is None:
        return DASH
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def decimal_string(value, *, places: int = 8, trim: bool = False) -> str | None:
    """An exact decimal string with `places` places (what candles and transactions store), never a
    binary float or exponent notation; `trim` drops trailing zeros ("0.25", "100", and "0" for any
    zero, never "-0"): the API's one rule for decimals. None stays None."""
    if value is None:
        return None
    if trim:
        text = _plain(value)
        whole, dot, fraction = (text or "").partition(".")
        if text is not None and len(fraction) <= places:
            # Already within `places`, as every stored value is: only zeros to drop, at a fraction
            # of the cost of quantizing, which each decimal of each API answer would pay.
            text = f"{whole}.{fraction.rstrip('0')}".rstrip(".") if dot else text
            return "0" if text == "-0" else text
    quantum = _PLACES.get(places) or Decimal(1).scaleb(-places)
    with localcontext() as ctx:
        ctx.prec = 80  # the default 28 digits cannot hold a large value to 8 places: quantize would raise
        value = Decimal(value).quantize(quantum)
        if not trim:
            return format(value, "f")
        return "0" if not value else format(value.normalize(), "f")


_FIXED = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d*)?")


def _plain(value) -> str | None:
    """A Decimal or a decimal text (a forecast's stored price) in plain notation; None for anything
    else (floats, exponents), which goes the exact way."""
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else None
    if isinstance(value, str) and _FIXED.fullmatch(value):
        return value
    return None


# --- amounts on pages ---------------------------------------------------------------------------
# One rule each for money, unit prices and quantities, used by every page that shows them (the
# portfolio template filters wrap these). Exact decimals throughout: a float would turn
# 0.00001234 into 1.234e-05 and round 0.005 the wrong way.

_CENT = Decimal("0.01")
_PRICE_DIGITS = 4  # as `significant`: enough for BTC (30,020.00) and a sub-cent pair (0.00001234)
_WIDE = 80  # a value or a cost can reach 1e38; to 8 places that is more than the default 28 digits


def money_text(value, *, signed: bool = False) -> str:
    """An amount of money: always two decimals, with thousands separators (30,020.00). `signed`
    puts "+" before a gain that does not round to zero."""
    if value is None or value == "":
        return DASH
    with localcontext(prec=_WIDE):
        rounded = Decimal(value).quantize(_CENT, ROUND_HALF_EVEN)
    text = format(rounded if rounded else abs(rounded), ",f")  # a loss under half a cent is 0.00, not -0.00
    return f"+{text}" if signed and rounded > 0 else text


def price_text(value) -> str:
    """A unit price: four significant digits but never fewer than two decimals nor more than the
    eight stored, trailing zeros past two dropped: 30,020.00, 277.81, 1.235, 0.5234, 0.00001234."""
    if value is None or value == "":
        return DASH
    value = Decimal(value)
    with localcontext(prec=_WIDE):
        places = 2 if value == 0 else max(2, min(8, _PRICE_DIGITS - 1 - value.adjusted()))
        text = format(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN), ",f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def percent_text(value, *, signed: bool = False, places: int = 2) -> str:
    """A value already in percent: `places` decimals (half to even), thousands separators, "%";
    `signed` puts "+" before a gain that does not round to zero. Never "-0.00%"."""
    if value is None or value == "":
        return DASH
    with localcontext(prec=_WIDE):
        rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    text = format(rounded if rounded else abs(rounded), ",f") + "%"
    return f"+{text}" if signed and rounded > 0 else text


def quantity_text(value) -> str:
    """A quantity of an asset: every stored decimal that is not a trailing zero, so 0.00012345 BTC
    and 1,250 ADA both read as held."""
    if value is None or value == "":
        return DASH
    with localcontext(prec=_WIDE):
        rounded = Decimal(value).quantize(_PLACES[8], ROUND_HALF_EVEN).normalize()
    return format(rounded, ",f")
