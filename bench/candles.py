"""Candles API in-process: the time of one request for 100 and 1,000 candles and its ratio to the
trivial view's, for this checkout and (with `--against`) another, side by side in one run.

    .venv/bin/python bench/candles.py [--against ../other-checkout] [--requests 200]
                                      [--pg-url postgres://postgres@127.0.0.1:5432]

On PostgreSQL the script creates and drops "mur_bench_candles": BTCUSDT with every hourly candle of
the real Binance file, a stored forecast, a user with an API token (both checkouts share it: the
candles schema is the same). Each checkout runs in a child process with the test settings and sends,
through Django's test client (the whole middleware and DRF stack, token-authenticated):

  - trivial: GET /api/v1/ping/
  - candles 100: the newest 100 candles by time range (`start=<99 hours before the newest>&limit=100`)
  - candles 1000: the newest 1,000 the same way
  - candles 1000 from the start: `limit=1000` with no range, the first page of 45,000 (its count is
    the whole asset's)
  - forecast: GET /api/v1/assets/BTCUSDT/forecasts/latest/

Each endpoint gets 20 unmeasured requests, then `--requests` timed one by one (wall time); the
median is kept. The children alternate, three rounds each; medians of the rounds are reported with
each endpoint's throughput relative to the trivial view's (trivial time / endpoint time), all from
the same process. Writes bench/results/candles.json and .md.
Targets (issue #15): 1,000 candles under 25 ms; 100 candles at 0.5 x the trivial view or better.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from checkout import checkouts, django_in_checkout, run_child  # noqa: E402
from ingest import data_dir, machine, pg_admin, publish  # noqa: E402

BENCH_DB = "mur_bench_candles"
ROUNDS = 3
WARM_UP = 20
TARGET_1000_MS = 25.0
TARGET_100_RATIO = 0.5


def child(tree: str, database_url: str, requests: int) -> None:
    """Runs inside the checkout `tree`; prints one JSON line of median milliseconds per endpoint."""
    import time

    django_in_checkout(tree, database_url)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from accounts.services import token_create
    from forecasting.models import Asset, Candle
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_import_file

    if not Asset.objects.filter(symbol="BTCUSDT").exists():
        asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
        candles_import_file(asset=asset, path=data_dir() / "BTCUSDT-1h.csv")
        forecast_make(asset=asset)
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    asset = Asset.objects.get(symbol="BTCUSDT")
    user, _ = get_user_model().objects.get_or_create(username="bench-candles")
    _, key = token_create(user=user, name="bench-candles")
    newest = Candle.objects.filter(asset=asset).order_by("-open_time").values_list("open_time", flat=True).first()

    def since(n: int) -> str:
        return (newest - (n - 1) * asset.interval_delta).strftime("%Y-%m-%dT%H:%M:%SZ")

    paths = {
        "trivial": "/api/v1/ping/",
        "candles_100": f"/api/v1/assets/BTCUSDT/candles/?start={since(100)}&limit=100",
        "candles_1000": f"/api/v1/assets/BTCUSDT/candles/?start={since(1000)}&limit=1000",
        "candles_1000_first": "/api/v1/assets/BTCUSDT/candles/?limit=1000",
        "forecast": "/api/v1/assets/BTCUSDT/forecasts/latest/",
    }
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
    out = {}
    for name, path in paths.items():
        for _ in range(WARM_UP):
            response = client.get(path)
            if response.status_code != 200:
                sys.exit(f"{path} answered {response.status_code} in {tree}: {response.content[:200]!r}")
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times) * 1000
    print(json.dumps({"ms": out, "candles": Candle.objects.filter(asset=asset).count(), "paths": paths}))


def measure(tree: Path, database_url: str, requests: int) -> dict:
    return run_child(__file__, tree, database_url, requests, timeout=1800)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg-url", default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    data_dir()
    trees = checkouts(ROOT, args.against)
    pg_url = args.pg_url.rstrip("/")
    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        for round_ in range(ROUNDS):
            for name, tree in trees.items():
                result = measure(tree, f"{pg_url}/{BENCH_DB}", args.requests)
                runs[name].append(result)
                print(f"round {round_ + 1} {name}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in result["ms"].items()))
    finally:
        pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    first = runs["this"][0]
    results = {
        "machine": machine(),
        "requests": args.requests,
        "rounds": ROUNDS,
        "candles": first["candles"],
        "paths": first["paths"],
        "target": {"candles_1000_ms": TARGET_1000_MS, "candles_100_ratio": TARGET_100_RATIO},
        "checkouts": {},
    }
    for name, rs in runs.items():
        ms = {k: statistics.median(r["ms"][k] for r in rs) for k in first["ms"]}
        results["checkouts"][name] = {
            "tree": str(trees[name]),
            "median_ms": {k: round(v, 3) for k, v in ms.items()},
            "ratio_to_trivial": {k: round(ms["trivial"] / v, 3) for k, v in ms.items()},
            "runs_ms": [{k: round(v, 3) for k, v in r["ms"].items()} for r in rs],
        }
    this = results["checkouts"]["this"]
    results["target_met"] = {
        "candles_1000_ms": this["median_ms"]["candles_1000"] < TARGET_1000_MS,
        "candles_100_ratio": this["ratio_to_trivial"]["candles_100"] >= TARGET_100_RATIO,
    }
    publish("candles", results, markdown(results))


def markdown(r: dict) -> str:
    m = r["machine"]
    names = list(r["paths"])
    lines = [
        "# Candles API in-process (Django test client)",
        "",
        f"{m['date']}, {m['nproc']} CPUs (load {m['load_1m']} at start), Python {m['python']}, commit {m['commit']}.",
        "",
        f"{r['candles']:,} BTCUSDT 1h candles; {r['requests']} timed requests per endpoint after {WARM_UP} "
        f"unmeasured, median wall time; {r['rounds']} rounds, checkouts alternating; medians of the rounds. "
        "Ratio: the trivial view's time over the endpoint's (its throughput relative to the trivial view's).",
        "",
        "| endpoint | path |",
        "|---|---|",
        *(f"| {n} | `{r['paths'][n]}` |" for n in names),
        "",
        "| checkout | " + " | ".join(f"{n} ms (ratio)" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for name, c in r["checkouts"].items():
        cells = [f"{c['median_ms'][n]:.2f} ({c['ratio_to_trivial'][n]:.2f})" for n in names]
        lines.append(f"| {name} (`{c['tree']}`) | " + " | ".join(cells) + " |")
    lines += ["", "Each round (ms), in the order they ran:", ""]
    for name, c in r["checkouts"].items():
        for i, run in enumerate(c["runs_ms"]):
            lines.append(f"- {name} round {i + 1}: " + ", ".join(f"{n} {run[n]:.2f}" for n in names))
    this, t = r["checkouts"]["this"], r["target_met"]
    lines += [
        "",
        f"Targets: 1,000 candles under {r['target']['candles_1000_ms']:.0f} ms: "
        f"{this['median_ms']['candles_1000']:.1f} ms, {'met' if t['candles_1000_ms'] else 'NOT met'}; "
        f"100 candles at {r['target']['candles_100_ratio']} x the trivial view or better: "
        f"{this['ratio_to_trivial']['candles_100']:.2f}, {'met' if t['candles_100_ratio'] else 'NOT met'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
