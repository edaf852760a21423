"""What one API request costs in Python, counted rather than timed: a number that a busy machine
cannot blur, for comparing two checkouts of the project side by side.

    .venv/bin/python bench/request_cost.py [--against ../other-checkout] [--requests 2000]
                                           [--pg-url postgres://postgres@127.0.0.1:5432]

For each checkout (this one, and `--against` if given) a child process runs the project from that
folder on its own PostgreSQL database (created and dropped), with the test settings, a user and an
API token, and sends the trivial view (GET /api/v1/ping/, token-authenticated through the whole
middleware and DRF stack) through Django's test client: first 300 unmeasured requests, then
`--requests` under cProfile, counting Python function calls per request (the same for the same
code, whatever else the machine does), then the same number timed by CPU time of the process
(process_time, less sensitive to other processes than wall time, still noisy when the cores are
shared). The children alternate, three rounds each, and the medians are reported with the ratio.
Writes bench/results/request_cost.json and .md.
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
from ingest import machine, pg_admin, publish  # noqa: E402

PATH = "/api/v1/ping/"
ROUNDS = 3
WARM_UP = 300


def child(tree: str, database_url: str, requests: int) -> None:
    """Runs inside the checkout `tree`; prints one JSON line."""
    import cProfile
    import pstats
    import time

    django_in_checkout(tree, database_url)
    from django.contrib.auth import get_user_model
    from django.test import Client

    try:
        from accounts.services import token_create
    except ImportError:  # a checkout from before the accounts app
        from mur_site.api.authentication import token_create
    user, _ = get_user_model().objects.get_or_create(username="request-cost")
    _, key = token_create(user=user, name="request-cost")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")
    for _ in range(WARM_UP):
        response = client.get(PATH)
        if response.status_code != 200:
            sys.exit(f"{PATH} answered {response.status_code} in {tree}: {response.content[:200]!r}")
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(requests):
        client.get(PATH)
    profile.disable()
    calls = pstats.Stats(profile).total_calls
    start = time.process_time()
    for _ in range(requests):
        client.get(PATH)
    cpu_us = (time.process_time() - start) / requests * 1e6
    print(json.dumps({"calls_per_request": calls / requests, "cpu_us_per_request": cpu_us}))


def measure(tree: Path, pg_url: str, db: str, requests: int) -> dict:
    return run_child(__file__, tree, f"{pg_url}/{db}", requests, timeout=900)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", type=Path, help="another checkout of the project to compare with")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pg-url", default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"))
    args = parser.parse_args()
    trees = checkouts(ROOT, args.against)
    runs: dict[str, list[dict]] = {name: [] for name in trees}
    for name in trees:
        pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS mur_bench_cost_{name}")
        pg_admin(args.pg_url, f"CREATE DATABASE mur_bench_cost_{name}")
    try:
        for round_ in range(ROUNDS):
            for name, tree in trees.items():
                result = measure(tree, args.pg_url, f"mur_bench_cost_{name}", args.requests)
                runs[name].append(result)
                print(f"round {round_ + 1} {name}: {result}", flush=True)
    finally:
        for name in trees:
            pg_admin(args.pg_url, f"DROP DATABASE IF EXISTS mur_bench_cost_{name}")
    summary = {
        name: {
            "tree": str(trees[name]),
            "calls_per_request": statistics.median(r["calls_per_request"] for r in rs),
            "cpu_us_per_request": statistics.median(r["cpu_us_per_request"] for r in rs),
            "cpu_us_runs": [round(r["cpu_us_per_request"], 1) for r in rs],
        }
        for name, rs in runs.items()
    }
    lines = [
        "# Cost of one trivial API request (GET /api/v1/ping/), in-process",
        "",
        f"{args.requests} requests per measurement, {ROUNDS} alternating rounds; machine: {machine()}",
        "",
        "| checkout | Python calls / request | CPU µs / request (median) | CPU µs runs |",
        "|---|---|---|---|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} ({s['tree']}) | {s['calls_per_request']:.1f} "
            f"| {s['cpu_us_per_request']:.0f} | {s['cpu_us_runs']} |"
        )
    if "against" in summary:
        this, against = summary["this"], summary["against"]
        lines += [
            "",
            f"this / against: calls {this['calls_per_request'] / against['calls_per_request']:.3f}, "
            f"CPU time {this['cpu_us_per_request'] / against['cpu_us_per_request']:.3f}",
        ]
    results = {"machine": machine(), "requests": args.requests, "summary": summary}
    publish("request_cost", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
