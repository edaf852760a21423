"""Exchange sync benchmark: the first sync of a Binance account with 10,000 trades over 20 pairs
(9 USDT pairs and 11 crosses of their coins), its deposits and withdrawals, from the fake Binance
server through python-binance, into an empty portfolio; then a second sync, which must write nothing.

    .venv/bin/python bench/sync.py [--trades 10000] [--pg-url postgres://postgres@127.0.0.1:5432] [--no-pg]

The account is generated from the stored hourly candles (every price inside its candle). Each
database case runs in a child process (this script with --case) on a database this script creates
and drops (a temporary SQLite file; PostgreSQL database "mur_bench_sync"). Legs of crosses, deposits,
withdrawals and BNB commissions are valued through USDT candles the sync fetches from the fake (no
candles are stored beforehand, the slow case). After the sync the portfolio's holdings must equal
the account's own balances. Written to bench/results/sync.json and sync.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import data_dir, machine, pg_admin, publish  # noqa: E402

TARGET_SECONDS = 60.0
BENCH_DB = "mur_bench_sync"
COINS = ["BTC", "ETH", "BNB", "CHZ", "LINK", "DOT", "AVAX", "MATIC", "TRX"]
CROSSES = ["ETHBTC", "BNBBTC", "BNBETH", "LINKBTC", "LINKETH", "DOTBTC", "AVAXBTC", "MATICBTC", "TRXBTC", "CHZBTC"]
CROSSES += ["DOTBNB"]
PAIRS = [f"{c}USDT" for c in COINS] + CROSSES


# --- child: one database case ------------------------------------------------------------------


def case_sync(account_file: str) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.test")
    os.environ["MUR_KLINES_DIR"] = ""
    os.environ["MUR_EXCHANGE_HISTORY_START"] = "2020-10-01"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from forecasting.models import Asset
    from portfolio.exchange.client import BinanceAccount
    from portfolio.exchange.sync import exchange_sync
    from portfolio.models import ExchangeConnection, PositionState, Transaction
    from tests import factories

    spec = json.loads(Path(account_file).read_text())
    for coin in COINS:
        Asset.objects.get_or_create(symbol=f"{coin}USDT", defaults={"base_asset": coin, "quote_asset": "USDT"})
    conn = factories.ExchangeConnectionFactory(api_key=spec["api_key"], api_secret=spec["api_secret"])

    def run() -> tuple[float, object, BinanceAccount]:
        client = BinanceAccount(api_key=spec["api_key"], api_secret=spec["api_secret"])
        t = time.perf_counter()
        report = exchange_sync(connection_id=conn.id, client=client)
        return time.perf_counter() - t, report, client

    first_s, first, _ = run()
    conn.refresh_from_db()
    if conn.state != "active":
        raise SystemExit(f"first sync failed: {conn.message}")
    written = Transaction.objects.count()
    second_s, second, _ = run()
    held = {
        p.asset.base_asset: str(p.quantity)
        for p in PositionState.objects.filter(portfolio=conn.portfolio).select_related("asset")
        if p.quantity != 0
    }
    return {
        "vendor": connection.vendor,
        "first_seconds": first_s,
        "trades_read": first.trades,
        "deposits_read": first.deposits,
        "withdrawals_read": first.withdrawals,
        "transactions_written": written,
        "pages": first.pages,
        "requests": first.requests,
        "second_seconds": second_s,
        "second_written": second.created,
        "second_requests": second.requests,
        "holdings_match": {k: Decimal(v) for k, v in held.items()}
        == {k: Decimal(v) for k, v in spec["holdings"].items()},
        "cursor_streams": len(ExchangeConnection.objects.get(id=conn.id).cursors),
    }


# --- parent ------------------------------------------------------------------------------------


def run_case(database_url: str, api_url: str, account_file: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "MUR_BINANCE_API_URL": api_url}
    env.pop("REDIS_URL", None)
    proc = subprocess.run(
        [sys.executable, __file__, "--case", account_file], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"sync case failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report_md(results: dict) -> str:
    lines = [
        "# Exchange sync benchmark",
        "",
        f"`bench/sync.py` on {results['machine']['date']} ({results['machine']['nproc']} cores, load "
        f"{results['machine']['load_1m']}, commit {results['machine']['commit']}).",
        "",
        f"A Binance account with {results['account']['trades']:,} trades over {len(PAIRS)} pairs "
        f"({len(COINS)} USDT pairs, {len(CROSSES)} crosses), {results['account']['deposits']} deposits and "
        f"{results['account']['withdrawals']} withdrawals, generated from the stored hourly candles, served "
        f"by the fake Binance server (signed endpoints, HMAC checked) to python-binance. The sync values "
        f"cross legs, deposits, withdrawals and BNB commissions through USDT candles it fetches from the "
        f"fake (none stored beforehand). Target: first sync under {TARGET_SECONDS:.0f} s.",
        "",
        "| database | first sync | transactions written | pages | requests | second sync | "
        "written by the second | holdings = account |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in results["cases"]:
        lines.append(
            f"| {case['vendor']} | {case['first_seconds']:.1f} s | {case['transactions_written']:,} | "
            f"{case['pages']} | {case['requests']} | {case['second_seconds']:.1f} s | {case['second_written']} | "
            f"{'yes' if case['holdings_match'] else 'NO'} |"
        )
    lines += [
        "",
        "Requests: calls to the fake, signed and klines pages for prices (each retry not counted). A page is "
        "up to 1,000 records written in one database transaction. The second sync asks each pair from after "
        "its last trade and the capital history from a week back only.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=10_000)
    parser.add_argument("--pg-url", default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case_sync(args.case), default=str))
        return

    from tests.fakes.binance_account import generate_account
    from tests.fakes.binance_server import FakeBinanceServer

    data = data_dir()
    with tempfile.TemporaryDirectory(prefix="mur-bench-sync-") as tmp:
        # The fake reads `<SYMBOL>-1h.csv` from one folder: links to the shared files, never copies.
        for coin in COINS:
            name = f"{coin}USDT-1h.csv"
            source = data / name if (data / name).is_file() else data / "more-pairs" / name
            os.symlink(source, Path(tmp) / name)
        with FakeBinanceServer(tmp) as server:
            t = time.perf_counter()
            account = generate_account(server, pairs=PAIRS, trades=args.trades, seed=16)
            print(f"Account: {account.trade_count} trades generated in {time.perf_counter() - t:.1f} s", flush=True)
            server.add_account(account)
            spec = {
                "api_key": account.api_key,
                "api_secret": account.api_secret,
                "holdings": {k: str(v) for k, v in account.holdings().items()},
            }
            account_file = Path(tmp) / "account.json"
            account_file.write_text(json.dumps(spec))
            results = {
                "machine": machine(),
                "target_seconds": TARGET_SECONDS,
                "account": {
                    "trades": account.trade_count,
                    "pairs": len(PAIRS),
                    "deposits": sum(1 for d in account.deposits if d["status"] == 1),
                    "withdrawals": len(account.withdrawals),
                },
                "cases": [],
            }
            print("SQLite: first and second sync ...", flush=True)
            results["cases"].append(run_case(f"sqlite:///{tmp}/bench.sqlite3", server.api_url, str(account_file)))
            if not args.no_pg:
                pg_url = args.pg_url.rstrip("/")
                pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
                pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
                try:
                    print("PostgreSQL: first and second sync ...", flush=True)
                    results["cases"].append(run_case(f"{pg_url}/{BENCH_DB}", server.api_url, str(account_file)))
                finally:
                    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    for case in results["cases"]:
        print(f"{case['vendor']}: first sync {case['first_seconds']:.1f} s (target {TARGET_SECONDS:.0f} s)")
    publish("sync", results, report_md(results))
    if not all(c["holdings_match"] and c["second_written"] == 0 for c in results["cases"]):
        sys.exit("holdings differ from the account's or the second sync wrote something")


if __name__ == "__main__":
    main()
