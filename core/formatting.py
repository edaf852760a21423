"""Numbers as text, one rule each, for pages, admin and the API."""

from __future__ import annotations

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
    binary float; `trim` drops trailing zeros. None stays None."""
    if value is None:
        return None
    quantum = _PLACES.get(places) or Decimal(1).scaleb(-places)
    with localcontext() as ctx:
        ctx.prec = 80  # the default 28 digits cannot hold a large value to 8 places: quantize would raise
        value = Decimal(value).quantize(quantum)
        return format(value.normalize() if trim else value, "f")
