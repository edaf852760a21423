"""A Binance account for the fake server: trades, deposits and withdrawals generated
deterministically from the stored USDT candles (every price inside its candle's low-high), with the
balances they leave, so a test can compare a sync's holdings with the account's own records.

    account = generate_account(server, pairs=["BTCUSDT", "ETHUSDT", "ETHBTC"], trades=300, seed=1)
    server.add_account(account)
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

HOUR_MS = 3_600_000
Q8 = Decimal("0.00000001")
READ_ONLY = {
    "ipRestrict": False,
    "createTime": 1_600_000_000_000,
    "enableReading": True,
    "enableSpotAndMarginTrading": False,
    "enableWithdrawals": False,
    "enableInternalTransfer": False,
    "permitsUniversalTransfer": False,
    "enableMargin": False,
    "enableFutures": False,
    "enableVanillaOptions": False,
    "enablePortfolioMarginTrading": False,
}


def d8(value: Decimal) -> Decimal:
    return value.quantize(Q8, rounding=ROUND_DOWN)


def s8(value: Decimal) -> str:
    return f"{d8(value):.8f}"


@dataclass
class FakeAccount:
    api_key: str
    api_secret: str
    permissions: dict = field(default_factory=lambda: dict(READ_ONLY))
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # symbol: (base, quote)
    trades: dict[str, list[dict]] = field(default_factory=dict)  # symbol: trades by id
    deposits: list[dict] = field(default_factory=list)
    withdrawals: list[dict] = field(default_factory=list)
    balances: dict[str, Decimal] = field(default_factory=dict)

    @property
    def trade_count(self) -> int:
        return sum(len(t) for t in self.trades.values())

    def holdings(self) -> dict[str, Decimal]:
        """What the records leave of each coin (USDT, the portfolio's currency, left out)."""
        return {coin: q for coin, q in self.balances.items() if coin != "USDT" and q != 0}


def _covers(balance: dict, base: str, quote: str, qty: Decimal, quote_qty: Decimal, is_buyer: bool) -> bool:
    spend_coin, spend = (quote, quote_qty) if is_buyer else (base, qty)
    return balance.get(spend_coin, Decimal(0)) >= spend * 2


def _price_in(rng: random.Random, row: list) -> Decimal:
    low, high = Decimal(row[3]), Decimal(row[2])
    return low + (high - low) * Decimal(rng.randint(0, 1000)) / 1000


def generate_account(
    server,
    *,
    pairs: list[str],
    trades: int,
    seed: int = 1,
    start: datetime = datetime(2021, 1, 1, tzinfo=UTC),
    end: datetime = datetime(2022, 10, 1, tzinfo=UTC),
    withdrawals: int = 3,
    bnb_fees: bool = True,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> FakeAccount:
    """`trades` fills spread over `pairs` (USDT pairs and crosses of coins with a USDT candle file)
    between `start` and `end`, after one deposit of every coin; a few withdrawals at the end."""
    from .binance_server import split_symbol

    rng = random.Random(seed)
    account = FakeAccount(api_key=api_key or secrets.token_hex(32), api_secret=api_secret or secrets.token_hex(32))
    for symbol in pairs:
        account.pairs[symbol] = split_symbol(symbol)
        account.trades[symbol] = []
    coins = sorted({c for pair in account.pairs.values() for c in pair} - {"USDT"})
    series = {coin: server.series(f"{coin}USDT", "1h") for coin in coins}
    missing = [c for c, s in series.items() if s is None]
    if missing:
        raise ValueError(f"no {missing[0]}USDT-1h.csv in {server.data_dir}: every coin needs its USDT candles")
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def candle(coin: str, ms: int) -> list:
        s = series[coin]
        import bisect

        i = bisect.bisect_right(s.open_times, ms) - 1
        if i < 0:
            raise ValueError(f"{coin}USDT has no candle at {ms}")
        return s.rows[i]

    balance = account.balances
    ids = {"deposit": 0, "withdraw": 0}

    def deposit(coin: str, amount: Decimal, ms: int, status: int = 1) -> None:
        ids["deposit"] += 1
        account.deposits.append(
            {
                "id": f"d{ids['deposit']}",
                "amount": s8(amount),
                "coin": coin,
                "network": coin,
                "status": status,
                "address": "fake-address",
                "addressTag": "",
                "txId": f"0xdeposit{ids['deposit']}",
                "insertTime": ms,
                "completeTime": ms + 60_000,
                "transferType": 0,
                "confirmTimes": "12/12",
                "unlockConfirm": 0,
                "walletType": 0,
            }
        )
        if status == 1:
            balance[coin] = balance.get(coin, Decimal(0)) + d8(amount)

    # Funding: USDT and about 50,000 USDT of every coin, an hour before the first trade.
    fund_ms = start_ms - HOUR_MS
    deposit("USDT", Decimal(10_000_000), fund_ms)
    for coin in coins:
        price = Decimal(candle(coin, fund_ms)[4])
        deposit(coin, Decimal(50_000) / price, fund_ms + 1000)
    # A deposit still pending: not in the balances, and not imported.
    deposit(coins[0], Decimal("0.5"), fund_ms + 2000, status=0)

    times = sorted(rng.randrange(start_ms, end_ms) for _ in range(trades))
    symbols = sorted(account.pairs)
    next_id = {s: 1000 + i * 7 for i, s in enumerate(symbols)}
    for ms in times:
        symbol = rng.choice(symbols)
        base, quote = account.pairs[symbol]
        base_usdt = _price_in(rng, candle(base, ms))
        quote_usdt = Decimal(1) if quote == "USDT" else _price_in(rng, candle(quote, ms))
        price = d8(base_usdt / quote_usdt)
        if price <= 0:
            continue
        # 50 to 1,000 USDT a fill.
        qty = d8(Decimal(rng.randint(50, 1000)) / base_usdt)
        quote_qty = d8(qty * price)
        if qty <= 0 or quote_qty <= 0:
            continue
        is_buyer = rng.random() < 0.5
        use_bnb = bnb_fees and "BNB" in coins and base != "BNB" and quote != "BNB" and rng.random() < 0.2
        if use_bnb:
            bnb_usdt = Decimal(candle("BNB", ms)[4])
            commission, commission_asset = d8(quote_qty * quote_usdt * Decimal("0.00075") / bnb_usdt), "BNB"
        elif is_buyer:
            commission, commission_asset = d8(qty * Decimal("0.001")), base
        else:
            commission, commission_asset = d8(quote_qty * Decimal("0.001")), quote
        # Never more than held (a real account cannot oversell either): the other side, or no trade.
        if not _covers(balance, base, quote, qty, quote_qty, is_buyer):
            is_buyer = not is_buyer
            if not use_bnb:
                commission_asset = base if is_buyer else quote
                commission = d8((qty if is_buyer else quote_qty) * Decimal("0.001"))
        if not _covers(balance, base, quote, qty, quote_qty, is_buyer) or (
            commission_asset == "BNB" and balance.get("BNB", Decimal(0)) < commission * 2
        ):
            continue
        spend_coin, spend = (quote, quote_qty) if is_buyer else (base, qty)
        get_coin, get = (base, qty) if is_buyer else (quote, quote_qty)
        balance[spend_coin] -= spend
        balance[get_coin] = balance.get(get_coin, Decimal(0)) + get
        balance[commission_asset] -= commission
        trade_id = next_id[symbol]
        next_id[symbol] += rng.randint(1, 5)  # ids are the pair's, shared with other accounts
        account.trades[symbol].append(
            {
                "symbol": symbol,
                "id": trade_id,
                "orderId": trade_id * 3,
                "orderListId": -1,
                "price": s8(price),
                "qty": s8(qty),
                "quoteQty": s8(quote_qty),
                "commission": s8(commission),
                "commissionAsset": commission_asset,
                "time": ms,
                "isBuyer": is_buyer,
                "isMaker": rng.random() < 0.5,
                "isBestMatch": True,
            }
        )

    # Withdrawals of a tenth of a coin's balance at the end, with a network fee.
    for i in range(withdrawals):
        coin = coins[i % len(coins)]
        ms = end_ms + (i + 1) * HOUR_MS
        amount = d8(balance[coin] / 10)
        fee = d8(amount / 1000)
        ids["withdraw"] += 1
        balance[coin] -= amount + fee
        applied = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        account.withdrawals.append(
            {
                "id": f"w{ids['withdraw']}",
                "amount": s8(amount),
                "transactionFee": s8(fee),
                "coin": coin,
                "status": 6,
                "address": "fake-address",
                "txId": f"0xwithdraw{ids['withdraw']}",
                "applyTime": applied,
                "network": coin,
                "transferType": 0,
                "info": "",
                "confirmNo": 12,
                "walletType": 0,
                "txKey": "",
                "completeTime": applied,
            }
        )
    return account
