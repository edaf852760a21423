"""Page benchmark: the portfolio page and the dashboard with 100, 10,000 and 100,000 transactions.

    .venv/bin/python bench/pages.py [--requests 30] [--pg-url postgres://postgres@127.0.0.1:5432]

On a PostgreSQL database this script creates and drops ("mur_bench_pages"): 10 assets with a year of
hourly candles each, portfolios of 10,000, 100 and 100,000 transactions over them (one user each).
The shared data has three pairs, so BTCUSDT, ETHUSDT and BNBUSDT are real and seven more
(AAAUSDT ...) are the real candles of one of them times a constant. Transactions are generated from
a fixed seed at the candles' prices, inserted in bulk, and their stored state (positions,
day sums) built by portfolio_state_rebuild, which replays and so checks them; then ANALYZE, as a
database in use has planner statistics.

Each page is requested through the Django test client as a signed-in user: p50 and p95 over the
requests, the number of SQL queries, and how many full garbage collections fell in the timed
requests (they make the slow tail); the sizes take turns, request by request, so load from other
processes falls on all alike and the ratios hold. The selectors alone are timed too, and, on the largest
portfolio, two writes: a new newest transaction and an edit of the oldest one (each replays that
asset's history to check it and rewrites the asset's stored state). Writes bench/results/pages.json
and pages.md.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import random
import statistics
import sys
import time
from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import machine, pg_admin, publish  # noqa: E402

BENCH_DB = os.environ.get("MUR_BENCH_PAGES_DB", "mur_bench_pages")  # another name: runs side by side
HOURS = 365 * 24
TARGET_P50_MS = 150.0
TARGET_RATIO = 1.5  # the largest portfolio's p50 against the 100-transaction one's, same run
SIZES = (10_000, 100, 100_000)  # built in this order, so the first two keep the data of earlier runs
SEED = 20221011
Q8 = Decimal("1e-8")
# Seven assets made from the real ones: (symbol, source, factor).
SCALED = [
    ("AAAUSDT", "BTCUSDT", "0.01"),
    ("BBBUSDT", "ETHUSDT", "0.1"),
    ("CCCUSDT", "BNBUSDT", "0.5"),
    ("DDDUSDT", "BTCUSDT", "0.0002"),
    ("EEEUSDT", "ETHUSDT", "3"),
    ("FFFUSDT", "BNBUSDT", "0.02"),
    ("GGGUSDT", "BTCUSDT", "1.5"),
]
REAL = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]


def data_dir() -> Path:
    path = Path(os.environ.get("MUR_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
    if not all((path / f"{s}-1h.csv").is_file() for s in REAL):
        sys.exit(
            f"Market data not found in {path}. Put the shared folder beside the project or set "
            f"MUR_SHARED_DATA to its data folder."
        )
    return path


def last_year(path: Path) -> list[tuple]:
    """(open_ms, open, high, low, close, volume, close_ms) of the file's last 365 days of rows."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [(int(r[0]), *(Decimal(x) for x in r[1:6]), int(r[6])) for r in rows[-HOURS:]]


def _setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)  # locmem cache: the benchmark needs no Redis
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.test")
    os.environ["MUR_KLINES_DIR"] = ""
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    call_command("migrate", verbosity=0)
    setup_test_environment()  # the test client's host, as in the test suite


# --- data ---------------------------------------------------------------------------------------


def load_candles(data: Path) -> dict:
    from forecasting.models import Asset, Candle

    def ts(ms):
        return datetime.fromtimestamp(ms / 1000, tz=UTC)

    series = {s: last_year(data / f"{s}-1h.csv") for s in REAL}
    plan = [(s, s, Decimal(1)) for s in REAL] + [(s, src, Decimal(k)) for s, src, k in SCALED]
    prices: dict = {}
    for symbol, source, factor in plan:
        asset = Asset.objects.create(
            symbol=symbol, base_asset=symbol.removesuffix("USDT"), quote_asset="USDT", interval="1h"
        )
        candles = []
        for o_ms, o, h, lo, c, v, c_ms in series[source]:
            o, h, lo, c = ((x * factor).quantize(Q8) for x in (o, h, lo, c))
            candles.append(
                Candle(
                    asset=asset,
                    interval="1h",
                    open_time=ts(o_ms),
                    close_time=ts(c_ms),
                    open=o,
                    high=h,
                    low=max(lo, Q8),
                    close=c,
                    volume=v,
                )
            )
        Candle.objects.bulk_create(candles, batch_size=5000)
        prices[asset] = ([c.open_time for c in candles], [c.close for c in candles])
    return prices


def price_at(series: tuple[list, list], t: datetime) -> Decimal:
    """The close of the newest candle opened at or before t (the data has gaps)."""
    times, closes = series
    return closes[max(bisect_right(times, t) - 1, 0)]


def make_transactions(portfolio, prices: dict, n: int, rng: random.Random) -> list:
    """`n` transactions over the year at the hour's close: buys, sells, rewards, transfers and fees,
    never selling more than is held."""
    from portfolio.models import Transaction

    assets = list(prices)
    first = min(times[0] for times, _ in prices.values())
    span = (max(times[-1] for times, _ in prices.values()) - first).total_seconds()
    times = sorted(first + timedelta(seconds=rng.uniform(0, span)) for _ in range(n))
    held = dict.fromkeys(assets, Decimal(0))
    out = []
    for t in times:
        asset = rng.choice(assets)
        price = price_at(prices[asset], t)
        r = rng.random()
        kind = (
            "buy"
            if not held[asset] or r < 0.55
            else "sell"
            if r < 0.80
            else "reward"
            if r < 0.85
            else "transfer_in"
            if r < 0.90
            else "transfer_out"
            if r < 0.95
            else "fee"
        )
        if kind in ("buy", "transfer_in"):
            quantity = (Decimal(rng.randint(50, 2000)) / price).quantize(Q8)
        elif kind == "reward":
            quantity = (held[asset] * Decimal("0.002")).quantize(Q8, ROUND_DOWN)
        elif kind == "fee":
            quantity = (held[asset] * Decimal("0.0005")).quantize(Q8, ROUND_DOWN)
        else:
            quantity = (held[asset] * Decimal(str(round(rng.uniform(0.05, 0.6), 3)))).quantize(Q8, ROUND_DOWN)
        if quantity <= 0:
            kind, quantity = "buy", (Decimal(100) / price).quantize(Q8)
        fee = (quantity * price * Decimal("0.001")).quantize(Q8) if kind in ("buy", "sell") else Decimal(0)
        held[asset] += quantity if kind in ("buy", "reward", "transfer_in") else -quantity
        out.append(
            Transaction(
                portfolio=portfolio,
                asset=asset,
                kind=kind,
                quantity=quantity,
                unit_price=price if kind != "fee" else Decimal(0),
                fee=fee,
                executed_at=t,
                note="generated" if rng.random() < 0.1 else "",
            )
        )
    return out


def build() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from portfolio.models import Portfolio, Transaction
    from portfolio.services import portfolio_state_rebuild

    t = time.perf_counter()
    prices = load_candles(data_dir())
    candles_s = time.perf_counter() - t
    rng = random.Random(SEED)
    users, portfolios, rebuild_s = {}, {}, {}
    for size in SIZES:
        user = get_user_model().objects.create_user(username=f"bench{size}", password="bench-password-1")
        portfolio = Portfolio.objects.create(owner=user, name=f"{size:,} transactions")
        Transaction.objects.bulk_create(make_transactions(portfolio, prices, size, rng), batch_size=2000)
        t = time.perf_counter()
        portfolio_state_rebuild(portfolio=portfolio)  # raises if the generated history oversells
        rebuild_s[size] = round(time.perf_counter() - t, 2)
        users[size], portfolios[size] = user, portfolio
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # planner statistics, as a database that has been running has them
    return {"users": users, "portfolios": portfolios, "candles_seconds": candles_s, "rebuild_seconds": rebuild_s}


# --- timing -------------------------------------------------------------------------------------


def measure(fns: dict, repeat: int) -> dict:
    """Time each of `fns` `repeat` times after two warm-up calls, taking turns (one call of each,
    then the next round), so load from other processes on the machine falls on every size alike
    and the ratios between them hold; count each one's SQL queries once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    queries = {}
    for key, fn in fns.items():
        for _ in range(2):
            fn()
        with CaptureQueriesContext(connection) as ctx:
            fn()
        queries[key] = len(ctx.captured_queries)  # now: the next request clears the connection's query log
    times = {key: [] for key in fns}
    full_gcs = dict.fromkeys(fns, 0)
    current = [None]

    def on_gc(phase, info):
        if phase == "start" and info["generation"] == 2:
            full_gcs[current[0]] += 1

    gc.callbacks.append(on_gc)  # the slow outliers are full garbage collections: count them
    try:
        for _ in range(repeat):
            for key, fn in fns.items():
                current[0] = key
                t = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t) * 1000)
    finally:
        gc.callbacks.remove(on_gc)
    out = {}
    for key, ts in times.items():
        ts.sort()
        out[key] = {
            "p50_ms": round(statistics.median(ts), 1),
            "p95_ms": round(ts[min(len(ts) - 1, round(0.95 * (len(ts) - 1)))], 1),
            "min_ms": round(ts[0], 1),
            "max_ms": round(ts[-1], 1),
            "queries": queries[key],
            "full_gc_collections": full_gcs[key],
        }
    return out


def measure_writes(portfolio) -> dict:
    """A new newest transaction, and an edit of the oldest buy (its fee, back and forth)."""
    from portfolio import services
    from portfolio.models import Transaction

    newest = portfolio.transactions.order_by("-executed_at", "-id").first()
    oldest = portfolio.transactions.filter(kind="buy").order_by("executed_at", "id").first()
    fees = iter([oldest.fee + Decimal("0.01"), oldest.fee] * 20)

    def append():
        services.transaction_create(
            portfolio=portfolio,
            asset=newest.asset,
            kind="buy",
            quantity=Decimal("0.001"),
            unit_price=newest.unit_price or Decimal(1),
            executed_at=newest.executed_at,
        )

    def edit_oldest():
        services.transaction_update(tx=Transaction.objects.get(id=oldest.id), fee=next(fees))

    return {
        "asset_transactions": portfolio.transactions.filter(asset=newest.asset).count(),
        **measure({"append": append, "edit_oldest": edit_oldest}, 5),
    }


def process_heap() -> dict:
    """What a full garbage collection walks in this process, and how long one takes."""
    t = time.perf_counter()
    gc.collect()
    return {
        "gc_tracked_objects": len(gc.get_objects()),
        "full_gc_ms": round((time.perf_counter() - t) * 1000, 1),
        "torch_imported": "torch" in sys.modules,
    }


def run(repeat: int) -> dict:
    from django.test import Client

    from forecasting.models import Candle
    from portfolio import selectors

    data = build()
    out = {
        "candles": Candle.objects.count(),
        "candles_seconds": round(data["candles_seconds"], 1),
        "cases": [],
        "heap": process_heap(),
    }
    fns, cases = {}, {}
    for size in sorted(SIZES):
        user, portfolio = data["users"][size], data["portfolios"][size]
        client = Client()
        client.force_login(user)

        def get(url, client=client):
            def fn():
                response = client.get(url)
                if response.status_code != 200:
                    raise SystemExit(f"GET {url} answered {response.status_code}")

            return fn

        detail = selectors.portfolio_detail(portfolio=portfolio)
        cases[size] = {
            "transactions": portfolio.transactions.count(),
            "state_rebuild_seconds": data["rebuild_seconds"][size],
            "holdings": len(detail["summary"].holdings),
            "history_points": len(detail["history"]),
        }
        fns[size, "page"] = get(f"/portfolios/{portfolio.id}/")
        fns[size, "dashboard"] = get("/portfolios/")
        fns[size, "portfolio_detail_selector"] = lambda p=portfolio: selectors.portfolio_detail(portfolio=p)
        fns[size, "dashboard_selector"] = lambda u=user: selectors.portfolio_summaries(user=u)
    for (size, key), result in measure(fns, repeat).items():
        cases[size][key] = result
    largest = max(SIZES)
    cases[largest]["writes"] = measure_writes(data["portfolios"][largest])
    for size in sorted(SIZES):
        case = cases[size]
        out["cases"].append(case)
        print(
            f"  {case['transactions']:>7,} transactions: page p50 {case['page']['p50_ms']} ms, "
            f"{case['page']['queries']} queries",
            flush=True,
        )
    return out


def markdown(r: dict) -> str:
    m, h = r["machine"], r["heap"]
    cases = r["cases"]
    small, big = cases[0], cases[-1]
    rows = [
        ("Portfolio page (GET /portfolios/&lt;id&gt;/)", "page"),
        ("Dashboard (GET /portfolios/)", "dashboard"),
        ("portfolio_detail selector alone", "portfolio_detail_selector"),
        ("dashboard selector alone", "dashboard_selector"),
    ]
    rebuilds = ", ".join(f"{c['state_rebuild_seconds']} s" for c in cases)
    head = " | ".join(f"{c['transactions']:,} transactions: p50 | p95 | queries" for c in cases)
    lines = [
        "# Page benchmark: portfolio page and dashboard",
        "",
        f"{m['date']}, {m['nproc']} CPUs (load {m['load_1m']} at start), Python {m['python']}, {m['platform']}, "
        f"commit {m['commit']}. PostgreSQL {r['server_version']}, Django test client, signed in; "
        f"{r['requests']} timed requests after 2 warm-up ones.",
        "",
        f"Data: {r['candles']:,} hourly candles (a year for each of 10 assets). BTCUSDT, ETHUSDT and BNBUSDT are "
        f"real Binance candles; {', '.join(s for s, _, _ in SCALED)} are real candles of one of those three "
        f"times a constant ({'; '.join(f'{s} = {src} × {k}' for s, src, k in SCALED)}). Transactions are "
        f"generated (seed {SEED}) at the hour's close: buys, sells, rewards, transfers in and out, fees in the "
        f"asset; inserted in bulk, then their stored state built (and the history checked) by "
        f"portfolio_state_rebuild: {rebuilds}.",
        "",
        f"| | {head} | {big['transactions']:,} ÷ {small['transactions']:,} (p50) |",
        "|---|" + "---:|" * (3 * len(cases) + 1),
    ]
    for label, key in rows:
        cells = " | ".join(
            f"{c[key]['p50_ms']:.1f} ms | {c[key]['p95_ms']:.1f} ms | {c[key]['queries']}" for c in cases
        )
        lines.append(f"| {label} | {cells} | {big[key]['p50_ms'] / small[key]['p50_ms']:.2f}× |")
    w = big.get("writes")
    t = r["target_met"]
    lines += [
        "",
        f"Holdings: {', '.join(str(c['holdings']) for c in cases)}; value-over-time points: "
        f"{', '.join(str(c['history_points']) for c in cases)}. Each user has one portfolio, so the dashboard "
        f"reads the same portfolio as the page.",
        "",
    ]
    if w:
        lines += [
            f"Writes on the {big['transactions']:,}-transaction portfolio (the asset written has "
            f"{w['asset_transactions']:,} transactions; each write replays that asset's history to check it and "
            f"rewrites its stored state): a new newest transaction p50 {w['append']['p50_ms']:.1f} ms "
            f"({w['append']['queries']} queries), an edit of the oldest buy p50 {w['edit_oldest']['p50_ms']:.1f} ms "
            f"({w['edit_oldest']['queries']} queries).",
            "",
        ]
    lines += [
        f"p95 and the slowest requests are full garbage collections ({big['page']['full_gc_collections']} during the "
        f"{r['requests']} requests of the largest page): one takes {h['full_gc_ms']:.0f} ms here, walking "
        f"{h['gc_tracked_objects']:,} objects{' (torch is loaded in the web process)' if h['torch_imported'] else ''}.",
        "",
        f"Targets: the {big['transactions']:,}-transaction portfolio page within {TARGET_RATIO}× the "
        f"{small['transactions']:,}-transaction page's p50: {'met' if t['page_within_ratio'] else 'NOT met'} "
        f"({big['page']['p50_ms'] / small['page']['p50_ms']:.2f}×), and under {TARGET_P50_MS:.0f} ms: "
        f"{'met' if t['page_p50_under_150ms'] else 'NOT met'} ({big['page']['p50_ms']:.1f} ms); the dashboard "
        f"within {TARGET_RATIO}×: {'met' if t['dashboard_within_ratio'] else 'NOT met'} "
        f"({big['dashboard']['p50_ms'] / small['dashboard']['p50_ms']:.2f}×); the same query counts at every size: "
        f"{'met' if t['same_query_count'] else 'NOT met'} (page {', '.join(str(c['page']['queries']) for c in cases)}; "
        f"dashboard {', '.join(str(c['dashboard']['queries']) for c in cases)}).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page and size")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help=f"PostgreSQL server (no database name); the script creates and drops {BENCH_DB} there",
    )
    parser.add_argument("--keep", action="store_true", help=f"keep {BENCH_DB} afterwards (for profiling)")
    args = parser.parse_args()
    data_dir()
    pg_url = args.pg_url.rstrip("/")
    results = {"machine": machine(), "requests": args.requests}
    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        print(f"Building {BENCH_DB}: 10 assets × a year of hourly candles, {SIZES} transactions ...", flush=True)
        _setup_django(f"{pg_url}/{BENCH_DB}")
        from django.db import connection, connections

        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            results["server_version"] = cur.fetchone()[0].split()[0]
        results.update(run(args.requests))
        connections.close_all()
    finally:
        if not args.keep:
            pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    cases = results["cases"]
    small, big = cases[0], cases[-1]
    results["target_met"] = {
        "page_p50_under_150ms": big["page"]["p50_ms"] < TARGET_P50_MS,
        "page_within_ratio": big["page"]["p50_ms"] <= TARGET_RATIO * small["page"]["p50_ms"],
        "dashboard_within_ratio": big["dashboard"]["p50_ms"] <= TARGET_RATIO * small["dashboard"]["p50_ms"],
        "same_query_count": len({c["page"]["queries"] for c in cases}) == 1
        and len({c["dashboard"]["queries"] for c in cases}) == 1,
    }
    report = markdown(results)
    publish("pages", results, report)


if __name__ == "__main__":
    main()
