"""Fleet benchmark: many tracked assets on one forecast worker and one trainer.

    .venv/bin/python bench/fleet.py [--sizes 10 100] [--days 400] [--cycles 3] [--no-retrain]
                                    [--pg-url postgres://postgres@127.0.0.1:5432]

Assets are real candles of the shared pairs (the three in ../shared/data and the six in
more-pairs), each synthetic asset FLxxxUSDT a copy of one pair (i mod 9) with its prices scaled by
a constant (1 + 0.137 i), the newest `--days` days of it. The fake Binance server (in this process)
serves them through python-binance, with its clock frozen an hour before the end of the data.

For each size, on a PostgreSQL database created and dropped here ("mur_bench_fleet"), a child
process, as one forecast worker would (one process, tasks one after another):
  1. tracks every asset (Binance's exchangeInfo) and backfills its candles (reported, not a target);
  2. runs `--cycles` hourly cycles: the parent moves the fake clock on by an hour, then every asset
     is refreshed (one new candle) and forecast, as the beat's refresh and forecast tasks do.
     Reported: seconds per cycle, queries per asset per cycle, peak RSS after each cycle;
  3. unless --no-retrain, another child, as the trainer (torch threads pinned to 1), trains every
     asset once through the training-run service with the gate, as the nightly retrain does:
     seconds in all, per asset, and peak RSS.
Targets: the hourly cycle within 60 s and the retrain of 100 assets within 15 minutes on this
machine, memory flat across cycles. Writes bench/results/fleet.json and fleet.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from ingest import data_dir, machine, pg_admin, publish  # noqa: E402

BENCH_DB = "mur_bench_fleet"
HOUR_MS = 3_600_000
CYCLE_TARGET_S = 60.0
RETRAIN_TARGET_S = 15 * 60.0
HEADER = "open_time,open,high,low,close,volume,close_time\n"


# --- synthetic assets ---------------------------------------------------------------------------------


def source_files() -> list[Path]:
    shared = data_dir()
    files = sorted(shared.glob("*-1h.csv")) + sorted((shared / "more-pairs").glob("*-1h.csv"))
    if len(files) < 2:
        sys.exit(f"Expected the hourly kline files of ../shared/data and more-pairs, found {files}")
    return files


def symbol(i: int) -> str:
    return f"FL{i:03d}USDT"


def write_assets(folder: Path, count: int, days: int) -> int:
    """FLxxxUSDT-1h.csv files in `folder`; returns the newest open time (ms) common to all."""
    sources = source_files()
    newest = None
    for i in range(count):
        rows = (sources[i % len(sources)]).read_text().splitlines()[1:]
        rows = rows[-days * 24 :]
        scale = Decimal(1) + Decimal("0.137") * i
        out = [HEADER]
        for line in rows:
            t, o, h, lo, c, v, ct = line.split(",")[:7]
            o, h, lo, c = (f"{(Decimal(x) * scale).quantize(Decimal('1e-8'))}" for x in (o, h, lo, c))
            out.append(f"{t},{o},{h},{lo},{c},{v},{ct}\n")
        (folder / f"{symbol(i)}-1h.csv").write_text("".join(out))
        last = int(rows[-1].split(",")[0])
        newest = last if newest is None else min(newest, last)
    return newest


# --- children -------------------------------------------------------------------------------------------


def _django(database_url: str, api_url: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "mur_site.settings.test",
            "DATABASE_URL": database_url,
            "MUR_BINANCE_API_URL": api_url,
            "MUR_KLINES_DIR": "",
            "MUR_FIRST_TRAINING": "false",
        }
    )
    import django

    django.setup()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    """Resident memory now (the peak hides whether it keeps growing)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child_worker(database_url: str, api_url: str, count: int, cycles: int) -> None:
    """Track and backfill, then one cycle per "go" line on stdin; one JSON line per phase on stdout."""
    _django(database_url, api_url)
    from django.core.management import call_command
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from forecasting.binance import BinanceMarketData
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_refresh

    call_command("migrate", verbosity=0)
    client = BinanceMarketData()
    t = time.perf_counter()
    assets = [asset_track(symbol=symbol(i), interval="1h", client=client) for i in range(count)]
    candles = sum(candles_refresh(asset=a, client=client).created for a in assets)
    for asset in assets:
        forecast_make(asset=asset)
    print(
        json.dumps({"phase": "backfill", "seconds": time.perf_counter() - t, "candles": candles, "rss_mb": _rss_mb()}),
        flush=True,
    )
    for _ in range(cycles):
        if sys.stdin.readline().strip() != "go":
            return
        reset_queries()
        t = time.perf_counter()
        new = 0
        with CaptureQueriesContext(connection) as queries:
            for asset in assets:
                new += candles_refresh(asset=asset, client=client).created
                forecast_make(asset=asset)
        seconds = time.perf_counter() - t
        print(
            json.dumps(
                {
                    "phase": "cycle",
                    "seconds": seconds,
                    "new_candles": new,
                    "queries_per_asset": len(queries.captured_queries) / count,
                    "rss_mb": _rss_mb(),
                }
            ),
            flush=True,
        )


def child_trainer(database_url: str, api_url: str) -> None:
    _django(database_url, api_url)
    from forecasting.models import Asset, ModelVersion, TrainingRun
    from forecasting.services.training_runs import training_run_execute

    per_asset, rss_now = [], []
    t0 = time.perf_counter()
    for asset in Asset.objects.filter(tracked=True).order_by("symbol"):
        run = TrainingRun.objects.create(asset=asset, triggered_by="schedule")
        t = time.perf_counter()
        training_run_execute(run_id=run.id, worker="fleet-bench")
        per_asset.append(time.perf_counter() - t)
        rss_now.append(_rss_now_mb())
    print(
        json.dumps(
            {
                "phase": "retrain",
                "seconds": time.perf_counter() - t0,
                "per_asset": per_asset,
                "succeeded": TrainingRun.objects.filter(status="succeeded").count(),
                "promoted": ModelVersion.objects.filter(status="champion").count(),
                "rss_mb": _rss_mb(),
                "rss_after_each_mb": rss_now,
            }
        ),
        flush=True,
    )


# --- parent ---------------------------------------------------------------------------------------------


def run_size(count: int, days: int, cycles: int, retrain: bool, pg_url: str) -> dict:
    from tests.fakes.binance_server import FakeBinanceServer

    with tempfile.TemporaryDirectory(prefix="mur-fleet-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        newest = write_assets(folder, count, days)
        print(f"{count} assets: {days} days each written in {time.perf_counter() - t:.1f} s", flush=True)
        pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
        pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
        database_url = f"{pg_url}/{BENCH_DB}"
        result: dict = {"assets": count, "days": days}
        try:
            with FakeBinanceServer(folder) as server:
                # "Now" is inside the newest candle: `cycles` candles stay in the future.
                server.now_ms = newest - cycles * HOUR_MS + HOUR_MS // 2
                env = {**os.environ, "OMP_NUM_THREADS": "1", "MUR_TORCH_THREADS": "1"}
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        "worker",
                        database_url,
                        server.api_url,
                        str(count),
                        str(cycles),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                result["backfill"] = _read(worker)
                print(f"  backfill: {result['backfill']}", flush=True)
                result["cycles"] = []
                for _ in range(cycles):
                    server.now_ms += HOUR_MS
                    worker.stdin.write("go\n")
                    worker.stdin.flush()
                    cycle = _read(worker)
                    print(f"  cycle: {cycle}", flush=True)
                    result["cycles"].append(cycle)
                worker.stdin.close()
                if worker.wait(timeout=60) != 0:
                    sys.exit("the worker child failed")
                if retrain:
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", "trainer", database_url, server.api_url],
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=4 * 3600,
                    )
                    if out.returncode != 0:
                        sys.exit(f"the trainer child failed:\n{out.stderr[-3000:]}")
                    result["retrain"] = json.loads(out.stdout.strip().splitlines()[-1])
                    r = result["retrain"]
                    print(
                        f"  retrain: {r['seconds']:.0f} s, {r['promoted']} promoted, {r['rss_mb']:.0f} MB", flush=True
                    )
        finally:
            pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB}")
    return result


def _read(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        sys.exit("a child ended before answering (see its error above)")
    return json.loads(line)


def _span(retrain: dict) -> str:
    after = retrain.get("rss_after_each_mb") or []  # not recorded by runs before it existed
    return f"{min(after):.0f}-{max(after):.0f}" if after else "not recorded"


def report(results: list[dict], args) -> str:
    m = machine()
    lines = [
        "# Fleet: many assets on one forecast worker and one trainer",
        "",
        f"{m['date']}, {m['nproc']} CPUs shared with other work (load average {m['load_1m']} at start), Python "
        f"{m['python']}, commit {m['commit']}. {args.days} days of hourly candles per asset, {args.cycles} hourly "
        "cycles; a cycle is every asset's refresh (one new candle through python-binance) and forecast, one after "
        "another in one process, as one forecast worker runs them.",
        "",
        "| assets | backfill s | hourly cycle s (median) | target | queries / asset / cycle | RSS MB after cycles |"
        " retrain s | per asset s (median) | promoted | trainer RSS MB: peak (after each training, min-max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cycle = statistics.median(c["seconds"] for c in r["cycles"])
        queries = statistics.median(c["queries_per_asset"] for c in r["cycles"])
        rss = ", ".join(f"{c['rss_mb']:.0f}" for c in r["cycles"])
        retrain = r.get("retrain")
        scaled_target = CYCLE_TARGET_S * r["assets"] / 100
        lines.append(
            f"| {r['assets']} | {r['backfill']['seconds']:.0f} | {cycle:.1f} | {scaled_target:.0f} s for this many "
            f"| {queries:.1f} | {rss} | "
            + (
                f"{retrain['seconds']:.0f} | {statistics.median(retrain['per_asset']):.1f} | "
                f"{retrain['promoted']} of {r['assets']} | {retrain['rss_mb']:.0f} ({_span(retrain)}) |"
                if retrain
                else "— | — | — | — |"
            )
        )
    if len(results) > 1:
        a, b = results[0], results[-1]
        ca = statistics.median(c["seconds"] for c in a["cycles"])
        cb = statistics.median(c["seconds"] for c in b["cycles"])
        lines += [
            "",
            f"From {a['assets']} to {b['assets']} assets ({b['assets'] / a['assets']:.0f}x): the hourly cycle takes "
            f"{cb / ca:.1f}x as long.",
        ]
        if a.get("retrain") and b.get("retrain"):
            lines.append(f"The retrain takes {b['retrain']['seconds'] / a['retrain']['seconds']:.1f}x as long.")
    lines += [
        "",
        f"Targets for 100 assets: hourly cycle within {CYCLE_TARGET_S:.0f} s, retrain within "
        f"{RETRAIN_TARGET_S / 60:.0f} minutes, memory flat across cycles.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        if sys.argv[2] == "worker":
            child_worker(sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
        else:
            child_trainer(sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--no-retrain", action="store_true")
    parser.add_argument("--pg-url", default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    if min(args.sizes) < 1 or args.days < 60 or args.cycles < 1:
        sys.exit("--sizes must be positive, --days at least 60, --cycles at least 1")
    results = [run_size(n, args.days, args.cycles, not args.no_retrain, args.pg_url) for n in args.sizes]
    publish("fleet", {"machine": machine(), "args": vars(args), "results": results}, report(results, args))


if __name__ == "__main__":
    main()
