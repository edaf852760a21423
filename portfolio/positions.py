"""The holdings engine: transactions in time order → quantity, average cost basis, realized P&L.

Pure Python on Decimal, no database, so it can be checked against worked examples by hand.

Method: average cost. A buy, transfer in or reward adds its quantity and its cost (quantity ×
price, plus the fee for buys and transfers in); a sell, transfer out or fee-in-asset removes
quantity at the average cost per unit at that moment. Realized P&L is what a sell brought in
(after its fee) minus the average cost of what was sold. A reward is income at its value when
received. Fees paid in the asset, and fees on transfers out and on rewards, are realized losses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal("0")
INBOUND = {"buy", "reward", "transfer_in"}


@dataclass(slots=True)  # slots: quicker attribute reads over long histories
class TxRow:
    id: int | None
    asset_id: int
    kind: str
    quantity: Decimal
    unit_price: Decimal
    fee: Decimal
    executed_at: datetime

    @property
    def order(self):
        # Same instant: inbound first, then by id (new rows, id None, last).
        return (self.executed_at, 0 if self.kind in INBOUND else 1, self.id if self.id is not None else 1 << 62)


@dataclass
class Position:
    asset_id: int
    quantity: Decimal = ZERO
    cost: Decimal = ZERO  # cost basis of what is held
    realized: Decimal = ZERO
    invested: Decimal = ZERO  # everything paid in (buys, transfers in at their price, fees)
    withdrawn: Decimal = ZERO  # everything taken out (sale proceeds after fees)
    rewards: Decimal = ZERO  # value of rewards at receipt
    fees: Decimal = ZERO
    first_at: datetime | None = None
    transactions: int = 0

    @property
    def average_cost(self) -> Decimal | None:
        return (self.cost / self.quantity) if self.quantity > 0 else None


class Oversold(ValueError):
    def __init__(self, row: TxRow, held: Decimal):
        self.row, self.held = row, held
        super().__init__(
            f"{row.kind.replace('_', ' ')} of {row.quantity.normalize():f} on "
            f"{row.executed_at:%Y-%m-%d %H:%M} UTC is more than the {held.normalize():f} held then"
        )


@dataclass
class Ledger:
    positions: dict[int, Position] = field(default_factory=dict)

    def apply(self, row: TxRow) -> None:
        p = self.positions.get(row.asset_id)
        if p is None:  # not setdefault: that would build a Position for every row
            p = self.positions[row.asset_id] = Position(row.asset_id)
        p.transactions += 1
        if p.first_at is None or row.executed_at < p.first_at:
            p.first_at = row.executed_at
        q, price, fee = row.quantity, row.unit_price, row.fee
        p.fees += fee
        if row.kind in INBOUND:
            value = q * price
            p.quantity += q
            if row.kind == "reward":
                # Income when received (else a reward would never show in P&L); that value is
                # also its cost basis, so only later price moves count as gains on it.
                p.cost += value
                p.rewards += value
                p.realized += value - fee
            else:
                p.cost += value + fee
                p.invested += value + fee
            return
        if q > p.quantity:
            raise Oversold(row, p.quantity)
        # Exact when everything goes, so no dust of cost basis is left behind.
        basis = p.cost if q == p.quantity else p.cost * q / p.quantity
        p.quantity -= q
        p.cost -= basis
        if row.kind == "sell":
            proceeds = q * price - fee
            p.realized += proceeds - basis
            p.withdrawn += proceeds
        elif row.kind == "fee":
            p.realized -= basis + fee
        else:  # transfer out: the holding leaves at its cost basis; the fee is a loss
            p.realized -= fee
            p.withdrawn += q * price


def replay(rows: Iterable[TxRow]) -> Ledger:
    """Apply rows in time order; raises Oversold at the first outflow larger than the holding."""
    ledger = Ledger()
    for row in sorted(rows, key=lambda r: r.order):
        ledger.apply(row)
    return ledger


def quantities_over_time(rows: Iterable[TxRow]) -> dict[int, list[tuple[datetime, Decimal]]]:
    """For each asset, (time, quantity held after it) at every transaction, in time order."""
    out: dict[int, list[tuple[datetime, Decimal]]] = {}
    held: dict[int, Decimal] = {}
    for row in sorted(rows, key=lambda r: r.order):
        held[row.asset_id] = held.get(row.asset_id, ZERO) + (row.quantity if row.kind in INBOUND else -row.quantity)
        out.setdefault(row.asset_id, []).append((row.executed_at, held[row.asset_id]))
    return out
