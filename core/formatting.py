"""Numbers as text, one rule each, for pages, admin and the API."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

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
