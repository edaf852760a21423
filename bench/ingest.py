"""Ingest benchmark: CSV import of BTCUSDT-1h (45,024 candles) on SQLite and PostgreSQL, a re-import
that must write nothing, and a full backfill through python-binance from the fake Binance server.

    .venv/bin/python bench/ingest.py [--repeat 3] [--pg-url postgres://postgres@127.0.0.1:5432]

Each database case runs in a child process (this script with --case) on a database this script
creates and drops (a temporary SQLite file; PostgreSQL database "mur_bench"). Medians are reported,
and written to bench/results/ingest.json and ingest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_SECONDS = 5.0
SYMBOL, INTERVAL = "BTCUSDT", "1h"
BENCH_DB = "mur_bench"


def data_dir() -> Path:
    path = Path(os.environ.get("MUR_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()
    if not (path / f"{SYMBOL}-{INTERVAL}.csv").is_file():
        sys.exit(
            f"Market data not found: {path / f'{SYMBOL}-{INTERVAL}.csv'}. Put the shared folder beside "
            f"the project or set MUR_SHARED_DATA to its data folder."
        )
    return path


# --- child: one database case ------------------------------------------------------------------


def _django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.test")
    os.environ["MUR_KLINES_DIR"] = ""  # candles come from the file or the fake Binance, never a folder
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _empty_candles() -> None:
    from django.db import connection

    from forecasting.models import Candle

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {Candle._meta.db_table}")
    else:
        Candle.objects.all().delete()


def case_import(repeat: int) -> dict:
    from django.db import connection

    from forecasting.models import Candle
    from forecasting.services.market_data import asset_track, candles_import_file, read_klines_csv

    path = data_dir() / f"{SYMBOL}-{INTERVAL}.csv"
    asset = asset_track(symbol=SYMBOL, interval=INTERVAL, base_asset="BTC", quote_asset="USDT")
    t = time.perf_counter()
    read_klines_csv(path, interval=INTERVAL)
    parse_s = time.perf_counter() - t
    imports, reimports = [], []
    for _ in range(repeat):
        _empty_candles()
        t = time.perf_counter()
        r = candles_import_file(asset=asset, path=path)
        imports.append(
            {"seconds": time.perf_counter() - t, "created": r.created, "updated": r.updated, "unchanged": r.unchanged}
        )
        t = time.perf_counter()
        r = candles_import_file(asset=asset, path=path)
        reimports.append(
            {"seconds": time.perf_counter() - t, "created": r.created, "updated": r.updated, "unchanged": r.unchanged}
        )
    return {
        "vendor": connection.vendor,
        "server_version": _server_version(),
        "parse_seconds": parse_s,
        "stored": Candle.objects.filter(asset=asset).count(),
        "import": imports,
        "reimport": reimports,
    }


def case_backfill(repeat: int) -> dict:
    from django.db import connection

    from forecasting.binance import BinanceMarketData
    from forecasting.models import Candle
    from forecasting.services.market_data import asset_track, candles_backfill

    client = BinanceMarketData()  # settings.BINANCE_API_URL: the parent's fake server
    asset = asset_track(symbol=SYMBOL, interval=INTERVAL, client=client)
    runs = []
    for _ in range(repeat):
        _empty_candles()
        t = time.perf_counter()
        r = candles_backfill(asset=asset, start=None, client=client)
        runs.append({"seconds": time.perf_counter() - t, "created": r.created, "updated": r.updated, "pages": r.pages})
    return {
        "vendor": connection.vendor,
        "server_version": _server_version(),
        "stored": Candle.objects.filter(asset=asset).count(),
        "backfill": runs,
    }


def _server_version() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            return cur.fetchone()[0]
    import sqlite3

    return sqlite3.sqlite_version


# --- parent: databases, fake server, report ----------------------------------------------------


def run_case(case: str, database_url: str, repeat: int, extra_env: dict | None = None) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, **(extra_env or {})}
    env.pop("REDIS_URL", None)  # locmem cache: the benchmark needs no Redis
    proc = subprocess.run(
        [sys.executable, __file__, "--case", case, "--repeat", str(repeat)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"{case} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pg_admin(pg_url: str, sql: str) -> None:
    import psycopg

    try:
        with psycopg.connect(f"{pg_url}/postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)
    except psycopg.OperationalError as exc:
        sys.exit(f"PostgreSQL at {pg_url} is not usable ({exc}). Start it or pass --pg-url.")


def median(runs: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in runs)


def summarize(name: str, res: dict) -> dict:
    imp, re_ = res["import"], res["reimport"]
    created = imp[0]["created"]
    return {
        "case": name,
        "server_version": res["server_version"],
        "candles": created,
        "parse_seconds": round(res["parse_seconds"], 3),
        "import_seconds": round(median(imp), 3),
        "import_candles_per_s": round(created / median(imp)),
        "import_runs": [round(r["seconds"], 3) for r in imp],
        "reimport_seconds": round(median(re_), 3),
        "reimport_written": max(r["created"] + r["updated"] for r in re_),
        "reimport_runs": [round(r["seconds"], 3) for r in re_],
        "stored": res["stored"],
    }


def machine() -> dict:
    def git(*args) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        # Other work on the machine skews timings: the load says how much.
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def publish(name: str, results: dict, report: str) -> None:
    """Print the report and write it with its numbers as bench/results/<name>.md and .json."""
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    (RESULTS / f"{name}.md").write_text(report)
    print(f"Written {RESULTS / (name + '.json')} and {RESULTS / (name + '.md')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the script creates and drops mur_bench there",
    )
    parser.add_argument("--case", choices=["import", "backfill"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:
        _django_setup()
        out = case_import(args.repeat) if args.case == "import" else case_backfill(args.repeat)
        print(json.dumps(out))
        return

    data = data_dir()
    sys.path.insert(0, str(ROOT))
    from tests.fakes.binance_server import FakeBinanceServer

    pg_url = args.pg_url.rstrip("/")
    results = {"machine": machine(), "repeat": args.repeat, "target_import_seconds": TARGET_SECONDS}
    with tempfile.TemporaryDirectory(prefix="mur-bench-") as tmp:
        print("SQLite: import and re-import ...", flush=True)
        results["sqlite"] = summarize("SQLite", run_case("import", f"sqlite:///{tmp}/bench.sqlite3", args.repeat))

    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        print("PostgreSQL: import and re-import ...", flush=True)
        results["postgresql"] = summarize("PostgreSQL", run_case("import", f"{pg_url}/{BENCH_DB}", args.repeat))
        print("PostgreSQL: backfill through python-binance from the fake Binance ...", flush=True)
        # The fake server runs here, in another process than the client being measured.
        with FakeBinanceServer(data) as server:
            bf = run_case("backfill", f"{pg_url}/{BENCH_DB}", args.repeat, {"MUR_BINANCE_API_URL": server.api_url})
    finally:
        pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    runs = bf["backfill"]
    results["backfill_postgresql"] = {
        "candles": runs[0]["created"],
        "pages": runs[0]["pages"],
        "seconds": round(median(runs), 3),
        "candles_per_s": round(runs[0]["created"] / median(runs)),
        "runs": [round(r["seconds"], 3) for r in runs],
        "stored": bf["stored"],
    }
    pg = results["postgresql"]
    results["target_met"] = {
        "postgresql_import_under_5s": pg["import_seconds"] < TARGET_SECONDS,
        "reimport_writes_nothing": pg["reimport_written"] == 0 and results["sqlite"]["reimport_written"] == 0,
    }
    report = markdown(results)
    publish("ingest", results, report)


def markdown(r: dict) -> str:
    m, bf = r["machine"], r["backfill_postgresql"]
    lines = [
        "# Ingest benchmark: BTCUSDT 1h",
        "",
        f"{m['date']}, {m['nproc']} CPUs (load {m['load_1m']} at start), Python {m['python']}, {m['platform']}, "
        f"commit {m['commit']}. Medians of {r['repeat']} runs.",
        "",
        "| case | candles | seconds | candles/s | runs (s) |",
        "|---|---:|---:|---:|---|",
    ]
    for key in ("sqlite", "postgresql"):
        s = r[key]
        lines.append(
            f"| {s['case']} {s['server_version']}: CSV import | {s['candles']:,} | "
            f"{s['import_seconds']:.2f} | {s['import_candles_per_s']:,} | "
            f"{', '.join(f'{x:.2f}' for x in s['import_runs'])} |"
        )
        lines.append(
            f"| {s['case']}: re-import (wrote {s['reimport_written']}) | {s['candles']:,} | "
            f"{s['reimport_seconds']:.2f} | {round(s['candles'] / s['reimport_seconds']):,} | "
            f"{', '.join(f'{x:.2f}' for x in s['reimport_runs'])} |"
        )
    lines.append(
        f"| PostgreSQL: backfill via python-binance, fake server ({bf['pages']} pages) | {bf['candles']:,} | "
        f"{bf['seconds']:.2f} | {bf['candles_per_s']:,} | {', '.join(f'{x:.2f}' for x in bf['runs'])} |"
    )
    t = r["target_met"]
    lines += [
        "",
        f"Reading and validating the CSV alone: {r['postgresql']['parse_seconds']:.2f} s.",
        "",
        f"Target: PostgreSQL import under {r['target_import_seconds']:.0f} s: "
        f"{'met' if t['postgresql_import_under_5s'] else 'NOT met'}; "
        f"re-import writes nothing: {'met' if t['reimport_writes_nothing'] else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
