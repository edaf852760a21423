"""API benchmark: the latest-forecast endpoint, a candles page and a trivial JSON view, served by
gunicorn and driven by wrk at 32 concurrent connections, side by side in one run.

    .venv/bin/python bench/api.py [--seconds 10] [--rounds 3] [--workers 3] [--pg-url postgres://postgres@127.0.0.1:5432]

On a PostgreSQL database this script creates and drops ("mur_bench_api"): BTCUSDT with every hourly
candle of the real Binance file, a forecast stored from them (the naive band, as before any model is
trained) and a user with an API token. gunicorn serves the project on 127.0.0.1 (a free port) with
the test settings (DEBUG off, locmem cache) and a user throttle rate raised through
MUR_API_USER_RATE so throttling does not interfere; wrk (Debian's package) runs in another process.

Endpoints, all token-authenticated through the same DRF stack:
  - trivial: GET /api/v1/ping/ (authentication, throttling, JSON rendering and nothing else)
  - forecast: GET /api/v1/assets/BTCUSDT/forecasts/latest/
  - candles: GET /api/v1/assets/BTCUSDT/candles/?start=<100 hours before the newest>&limit=100 (the
    newest 100 candles, asked for by time range as the API is meant to be used)

The three are measured in turn, `--rounds` times, each run after 2 unmeasured seconds of the same
endpoint; the medians of requests/second,
p50 and p99 are reported with the ratio of each endpoint's throughput to the trivial view's. Any
non-2xx answer fails the run. Writes bench/results/api.json and api.md.
Then each endpoint again with one connection per gunicorn worker (below saturation, so latency is
the request's own, not its wait in the queue), for p50 and p99.
Targets: the forecast endpoint at half or more of the trivial view's throughput, p99 under 50 ms
below saturation; the candles page (100 candles) at half or more of the trivial view's throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import data_dir, machine, pg_admin, publish  # noqa: E402
from servers import free_port, start_gunicorn, stop  # noqa: E402

BENCH_DB = "mur_bench_api"
CONNECTIONS = 32
WARM_UP_SECONDS = 2
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0  # issue #15 (was 100)
TARGET_CANDLES_RATIO = 0.5  # issue #15: 100 candles at half the trivial view's throughput
# The benchmark measures the site as it is deployed: the web service's gunicorn command line.
COMPOSE_WORKERS = int(
    re.search(
        r"gunicorn mur_site\.wsgi:application .*--workers (\d+)", (ROOT / "docker-compose.yml").read_text()
    ).group(1)
)
ENDPOINTS = {
    "trivial": "/api/v1/ping/",
    "forecast": "/api/v1/assets/BTCUSDT/forecasts/latest/",
    "candles": "/api/v1/assets/BTCUSDT/candles/?start={start}&limit=100",
}


# --- child: the database's content ----------------------------------------------------------------


def setup_data() -> dict:
    """Runs in a child process on the benchmark database; prints the token key and counts."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.test")
    os.environ["MUR_KLINES_DIR"] = ""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import token_create
    from forecasting.models import Candle
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_import_file

    call_command("migrate", verbosity=0)
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    candles_import_file(asset=asset, path=data_dir() / "BTCUSDT-1h.csv")
    forecast = forecast_make(asset=asset)
    user = get_user_model().objects.create_user(username="bench", password="bench-password-not-used")
    _, key = token_create(user=user, name="bench")
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # a database in use has planner statistics
    newest = Candle.objects.filter(asset=asset).order_by("-open_time").values_list("open_time", flat=True).first()
    start = (newest - 99 * asset.interval_delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "key": key,
        "candles": Candle.objects.filter(asset=asset).count(),
        "forecast_kind": forecast.kind,
        "forecast_steps": len(forecast.steps),
        "candles_start": start,
    }


# --- parent: server, load, report -------------------------------------------------------------------


def server_env(database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "MUR_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mur_site.settings.test",
            "DATABASE_URL": database_url,
            # Throttling stays on (its cost is part of every request) but never answers 429. A one-second
            # window: DRF keeps one timestamp per request in the window, and a minute of this load would
            # make that list, read and written on every request, far longer than any real client's.
            "MUR_API_USER_RATE": "1000000/s",
            "MUR_KLINES_DIR": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def check(url: str, key: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status
        return json.loads(response.read())


def wrk(url: str, key: str, seconds: int, threads: int, connections: int = CONNECTIONS) -> dict:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "--timeout",
            "10s",
            "-H",
            f"Authorization: Token {key}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if out.returncode != 0 or "Latency Distribution" not in out.stdout:
        sys.exit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    return parse_wrk(out.stdout)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> dict:
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", text, re.M))
    if set(latency) != {"50", "99"}:
        sys.exit(f"wrk's output is not as expected:\n{text}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "requests": int(re.search(r"(\d+) requests in", text).group(1)),
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def rounds(base, endpoints, key, count: int, seconds: int, threads: int, connections: int) -> dict[str, list]:
    """Every endpoint in turn, `count` times: wrk runs per endpoint. Any non-2xx answer ends the run."""
    runs: dict[str, list[dict]] = {name: [] for name in endpoints}
    for r in range(count):
        for name, path in endpoints.items():
            # An unmeasured 2 s of the same endpoint first: imports, connections and caches on the
            # first round, and on every round the switch from the previous endpoint stays out of
            # this one's tail (right after the candles page, the trivial view's p99 was 136-152 ms
            # without it and 31-55 ms with it).
            wrk(base + path, key, WARM_UP_SECONDS, threads, connections)
            run = wrk(base + path, key, seconds, threads, connections)
            runs[name].append(run)
            print(
                f"  round {r + 1} {name:8s} at {connections:2d} connections: {run['rps']:7.0f} req/s  "
                f"p50 {run['p50_ms']:6.1f} ms  p99 {run['p99_ms']:6.1f} ms",
                flush=True,
            )
            if run["non_2xx"] or run["socket_errors"]:
                sys.exit(f"{name}: {run['non_2xx']} non-2xx answers, {run['socket_errors']} socket errors")
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="each endpoint is measured this many times, in turn")
    parser.add_argument(
        "--workers",
        type=int,
        default=COMPOSE_WORKERS,
        help=f"gunicorn workers (default: {COMPOSE_WORKERS}, as docker-compose.yml serves the site)",
    )
    parser.add_argument(
        "--worker-class",
        default="sync",
        choices=["sync", "gthread"],
        help="gunicorn worker class (sync, as in docker-compose.yml; gthread keeps connections alive)",
    )
    parser.add_argument("--server-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=600,
        help="seconds Django keeps a database connection (CONN_MAX_AGE; 0 reconnects per request)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (no database name); the script creates and drops mur_bench_api there",
    )
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup:
        print(json.dumps(setup_data()))
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: install Debian's package (apt-get install wrk), or run scripts/services.")
    data_dir()
    pg_url = args.pg_url.rstrip("/")
    database_url = f"{pg_url}/{BENCH_DB}?conn_max_age={args.conn_max_age}"
    env = server_env(database_url)
    results = {
        "machine": machine(),
        "connections": CONNECTIONS,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "workers": args.workers,
        "worker_class": args.worker_class,
        "server_threads": args.server_threads if args.worker_class == "gthread" else 1,
        "wrk_threads": args.threads,
        "conn_max_age": args.conn_max_age,
        "target": {
            "forecast_ratio": TARGET_RATIO,
            "forecast_p99_ms": TARGET_P99_MS,
            "candles_ratio": TARGET_CANDLES_RATIO,
        },
    }
    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
    proc = None
    try:
        print("Loading BTCUSDT 1h candles and storing a forecast ...", flush=True)
        setup = subprocess.run([sys.executable, __file__, "--setup"], env=env, cwd=ROOT, capture_output=True, text=True)
        if setup.returncode != 0:
            sys.exit(f"setup failed:\n{setup.stderr[-4000:]}")
        data = json.loads(setup.stdout.strip().splitlines()[-1])
        key = data.pop("key")
        results["data"] = data
        endpoints = {name: path.format(start=data["candles_start"]) for name, path in ENDPOINTS.items()}
        results["endpoints"] = endpoints
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="mur-bench-api-") as tmp:
            # gunicorn turns a sync worker given more than one thread into a gthread worker.
            threads = args.server_threads if args.worker_class == "gthread" else 1
            proc = start_gunicorn(env, port, args.workers, args.worker_class, threads, Path(tmp) / "gunicorn.log")
            base = f"http://127.0.0.1:{port}"
            body = check(base + endpoints["forecast"], key)
            assert body["symbol"] == "BTCUSDT" and body["steps"], body
            assert len(check(base + endpoints["candles"], key)["results"]) == 100
            print(
                f"gunicorn: {args.workers} {args.worker_class} workers on {base}; wrk: {CONNECTIONS} connections, "
                f"{args.threads} threads, {args.seconds} s per run, {args.rounds} rounds",
                flush=True,
            )
            runs = rounds(base, endpoints, key, args.rounds, args.seconds, args.threads, CONNECTIONS)
            # Latency below saturation: one connection per gunicorn worker, so no request waits for
            # another. At 32 connections every answer also waits its turn: by Little's law the
            # mean latency is 32 / throughput whatever the endpoint costs (the trivial view's too).
            calm = rounds(base, endpoints, key, args.rounds, args.seconds, 1, args.workers)
    finally:
        if proc is not None:
            stop(proc)
        pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    trivial_rps = statistics.median(r["rps"] for r in runs["trivial"])
    results["results"] = {}
    for name, rs in runs.items():
        rps = statistics.median(r["rps"] for r in rs)
        results["results"][name] = {
            "path": endpoints[name],
            "rps": round(rps, 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
            "ratio_to_trivial": round(rps / trivial_rps, 3),
            "requests": sum(r["requests"] for r in rs),
            "runs": rs,
        }
    results["unsaturated"] = {
        name: {
            "connections": args.workers,
            "rps": round(statistics.median(r["rps"] for r in rs), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in rs), 2),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
            "runs": rs,
        }
        for name, rs in calm.items()
    }
    fc = results["results"]["forecast"]
    results["target_met"] = {
        "forecast_ratio": fc["ratio_to_trivial"] >= TARGET_RATIO,
        "forecast_p99": results["unsaturated"]["forecast"]["p99_ms"] < TARGET_P99_MS,
        "candles_ratio": results["results"]["candles"]["ratio_to_trivial"] >= TARGET_CANDLES_RATIO,
    }
    report = markdown(results)
    publish("api", results, report)


def markdown(r: dict) -> str:
    m, d = r["machine"], r["data"]
    lines = [
        "# API benchmark: gunicorn + wrk, 32 connections",
        "",
        f"{m['date']}, {m['nproc']} CPUs (load {m['load_1m']} at start), Python {m['python']}, {m['platform']}, "
        f"commit {m['commit']}.",
        "",
        f"gunicorn with {r['workers']} {r['worker_class']} workers"
        f"{' x ' + str(r['server_threads']) + ' threads' if r['worker_class'] == 'gthread' else ''}, "
        "test settings (DEBUG off, locmem cache, throttling on with a "
        f"high rate), PostgreSQL with CONN_MAX_AGE={r['conn_max_age']}; wrk with {r['wrk_threads']} threads and "
        f"{r['connections']} connections on the same machine. Each endpoint ran {r['rounds']} x {r['seconds']} s in "
        f"turn, each run after {WARM_UP_SECONDS} unmeasured seconds of the same endpoint; medians of the runs. "
        f"Data: {d['candles']:,} BTCUSDT 1h candles, a {d['forecast_kind']} "
        f"forecast of {d['forecast_steps']} steps. Every answer was a 200.",
        "",
        "| endpoint | path | req/s | p50 ms | p99 ms | throughput vs trivial |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, s in r["results"].items():
        lines.append(
            f"| {name} | `{s['path']}` | {s['rps']:,.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
            f"{s['ratio_to_trivial']:.2f} |"
        )
    lines += ["", "Each run (req/s, p99 ms), in the order they ran: the spread is this machine's noise.", ""]
    for name, s in r["results"].items():
        lines.append(f"- {name}: " + ", ".join(f"{x['rps']:.0f} ({x['p99_ms']:.0f})" for x in s["runs"]))
    calm = r.get("unsaturated", {})
    if calm:
        n = next(iter(calm.values()))["connections"]
        lines += [
            "",
            f"Latency below saturation: {n} connections, one per gunicorn worker, so no request queues behind "
            f"another ({r['rounds']} x {r['seconds']} s each, medians). At {r['connections']} connections the "
            f"latencies above are mostly waiting: the mean is {r['connections']} / throughput whatever the endpoint "
            "costs, the trivial view's included.",
            "",
            "| endpoint | req/s | p50 ms | p99 ms | runs (p99 ms) |",
            "|---|---:|---:|---:|---|",
        ]
        for name, s in calm.items():
            lines.append(
                f"| {name} | {s['rps']:,.0f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | "
                + ", ".join(f"{x['p99_ms']:.0f}" for x in s["runs"])
                + " |"
            )
    t, fc = r["target_met"], r["results"]["forecast"]
    fc_p99 = calm["forecast"]["p99_ms"] if calm else fc["p99_ms"]
    lines += [
        "",
        f"Target: forecast at {r['target']['forecast_ratio']:.0%} or more of the trivial view's throughput: "
        f"{fc['ratio_to_trivial']:.2f}, {'met' if t['forecast_ratio'] else 'NOT met'}; forecast p99 under "
        f"{r['target']['forecast_p99_ms']:.0f} ms below saturation: {fc_p99:.1f} ms "
        f"({fc['p99_ms']:.1f} ms at {r['connections']} connections), {'met' if t['forecast_p99'] else 'NOT met'}; "
        f"candles at {r['target']['candles_ratio']:.0%} or more: {r['results']['candles']['ratio_to_trivial']:.2f}, "
        f"{'met' if t['candles_ratio'] else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
