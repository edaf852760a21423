"""Load benchmark: 50 people at once on the production shape (gunicorn, Celery workers, PostgreSQL,
Redis) for 60 s, then a check that every acknowledged write is stored once and nothing else is.
With --steps, several numbers of people one after another against the same servers (for example
50 100 200 500), each step checked the same way, with where the machine's CPU time went.

    .venv/bin/python bench/load.py [--users 50 | --steps 50 100 200 500] [--seconds 60] [--workers 3]
        [--pg-url postgres://postgres@127.0.0.1:5432] [--redis-url redis://127.0.0.1:6379/13]

On PostgreSQL this script creates and drops a database ("mur_bench_load"): BTCUSDT, ETHUSDT and
BNBUSDT tracked with every hourly candle of the real Binance files (the project's CSV import), a
stored forecast for each, and one person per simulated user with a password, an API token and a
portfolio of buys and sells of the three. The Redis database given is flushed: it is the cache, the
throttle counters and the Celery broker of this run.

gunicorn serves mur_site.wsgi as docker-compose.yml runs it (sync workers, 60 s timeout, access
log) with the test settings (DEBUG off, fast password hasher, Chart.js from the local copy) and the
API's default throttle rates; a Celery worker takes the ingest and forecast queues. While the load
runs, another process enqueues what beat would: a forecast of every asset every 10 s and one
candle refresh each.

The load is a second process (aiohttp): every simulated user signs in through the login form (with
its CSRF token), then until the time is up does one thing at a time with a pause of 2 to 6 s
between (--think): the dashboard, the portfolio page, its transactions filtered, an asset page and its
prices, the API's assets, a candles page, the latest forecast, the holdings and the transactions;
and it adds and deletes transactions through the API and through the page forms. Half the users
call the API with their token, half with their session and the CSRF header. Each added transaction
carries a unique note, so afterwards the database says which writes are there:
  - an acknowledged add (201, or the form's redirect) must be stored exactly once, unless an
    acknowledged delete (204, or the redirect) removed it, then it must be gone;
  - an add refused with a 4xx/5xx must not be stored; one that timed out may be, and is reported;
  - no row may carry a note the load did not send.
Targets: no 5xx, no lost and no duplicated write; every task enqueued ran. Writes
bench/results/load.json and load.md (load_steps.json and .md with --steps); process logs stay in
var/bench-load/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from ingest import data_dir, machine, pg_admin, publish  # noqa: E402
from servers import free_port, start_celery_worker, start_gunicorn, stop  # noqa: E402

RUN_DIR = ROOT / "var" / "bench-load"
BENCH_DB = "mur_bench_load"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
NOTE_PREFIX = "load:"
THINK_SECONDS = (2.0, 6.0)  # between one person's actions: reading the page, typing
REQUEST_TIMEOUT = 30.0
TICK_SECONDS = 10.0


# --- child: the database's content ----------------------------------------------------------------


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mur_site.settings.test")
    import django

    django.setup()


def setup_data(users: int) -> dict:
    """Assets with real candles and forecasts, and `users` people with a portfolio and a token."""
    _django()
    import secrets
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from accounts.services import token_create
    from forecasting.models import Asset, Candle
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_import_file
    from portfolio import services

    call_command("migrate", verbosity=0)
    assets, closes = [], {}
    for symbol in SYMBOLS:
        asset = asset_track(symbol=symbol)
        result = candles_import_file(asset=asset, path=data_dir() / f"{symbol}-1h.csv")
        forecast_make(asset=asset)
        newest = Candle.objects.filter(asset=asset).order_by("-open_time").first()
        closes[symbol] = list(
            Candle.objects.filter(asset=asset)
            .order_by("-open_time")
            .values_list("open_time", "close")[: 24 * 365 : 24 * 7]
        )
        assets.append(
            {
                "symbol": symbol,
                "id": asset.id,
                "candles": result.created,
                "newest": newest.open_time.isoformat(),
                "close": str(newest.close),
                "candles_start": (newest.open_time - 99 * asset.interval_delta).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    rng = random.Random(20221011)
    people = []
    for i in range(users):
        password = secrets.token_urlsafe(12)
        user = get_user_model().objects.create_user(username=f"load{i:03d}", password=password)
        portfolio = services.portfolio_create(owner=user, name="Main")
        for asset in assets:
            a = Asset.objects.get(id=asset["id"])
            # Weekly closes of the last year: three buys worth 5,000 to 20,000 USDT, then a sell of a
            # quarter; far more than the load's small sells, so deleting its buys never oversells.
            when = sorted(rng.sample(closes[asset["symbol"]], 4))
            held = Decimal(0)
            for t, price in when[:3]:
                qty = (Decimal(rng.randint(5_000, 20_000)) / price).quantize(Decimal("1e-8"))
                held += qty
                services.transaction_create(
                    portfolio=portfolio,
                    asset=a,
                    kind="buy",
                    quantity=qty,
                    unit_price=price,
                    fee=Decimal("1"),
                    executed_at=t + timedelta(minutes=5),
                )
            t, price = when[3]
            services.transaction_create(
                portfolio=portfolio,
                asset=a,
                kind="sell",
                quantity=(held / 4).quantize(Decimal("1e-8")),
                unit_price=price,
                fee=Decimal("1"),
                executed_at=t + timedelta(minutes=5),
            )
        _, key = token_create(user=user, name="load")
        people.append({"username": user.username, "password": password, "token": key, "portfolio": portfolio.id})
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # a database in use has planner statistics
    from forecasting.models import Forecast
    from portfolio.models import Transaction

    return {
        "assets": assets,
        "users": people,
        "forecasts": Forecast.objects.count(),
        "transactions": Transaction.objects.count(),
    }


# --- child: what beat would enqueue while the load runs ------------------------------------------------


def ticker(seconds: float) -> dict:
    """Forecasts every TICK_SECONDS and one candle refresh per asset, through the project's routing."""
    _django()
    from forecasting.models import Asset
    from forecasting.tasks import candles_refresh_task, forecast_task

    ids = list(Asset.objects.filter(tracked=True).order_by("id").values_list("id", flat=True))
    tick = min(TICK_SECONDS, seconds / 4)
    sent = Counter()
    start = time.monotonic()
    refreshed = False
    while (elapsed := time.monotonic() - start) < seconds:
        for asset_id in ids:
            forecast_task.delay(asset_id)
            sent["forecast_task"] += 1
        if not refreshed and elapsed >= seconds / 2:
            for asset_id in ids:
                candles_refresh_task.delay(asset_id)
                sent["candles_refresh_task"] += 1
            refreshed = True
        time.sleep(max(0.0, tick - (time.monotonic() - start - elapsed)))
    return dict(sent)


# --- child: the simulated users ----------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Recorder:
    def __init__(self):
        self.requests: list[tuple[str, str, float, bool]] = []  # kind, status, ms, expected
        self.writes: list[dict] = []
        self.events: Counter = Counter()


class User:
    def __init__(self, index: int, person: dict, plan: dict, rec: Recorder, rng: random.Random):
        self.i, self.p, self.plan, self.rec, self.rng = index, person, plan, rec, rng
        self.base = plan["base"]
        self.pk = person["portfolio"]
        self.api_auth = "token" if index % 2 == 0 else "session"
        self.live: list[dict] = []  # acknowledged adds not deleted yet
        self.seq = 0
        self.http = None

    # -- plumbing

    async def call(self, kind: str, method: str, path: str, expect: tuple[int, ...], **kw):
        import aiohttp

        start = time.perf_counter()
        body, headers = "", {}
        try:
            async with self.http.request(method, self.base + path, allow_redirects=False, **kw) as r:
                body = await r.text()
                status, headers = str(r.status), r.headers
        except TimeoutError:
            status = "timeout"
        except aiohttp.ClientError as exc:
            status = f"error:{type(exc).__name__}"
        ms = (time.perf_counter() - start) * 1000
        ok = status.isdigit() and int(status) in expect
        self.rec.requests.append((kind, status, ms, ok))
        return status, body, headers

    def api_headers(self, unsafe: bool = False) -> dict:
        if self.api_auth == "token":
            return {"Authorization": f"Token {self.p['token']}"}
        if not unsafe:
            return {}
        from yarl import URL

        cookie = self.http.cookie_jar.filter_cookies(URL(self.base)).get("csrftoken")
        return {"X-CSRFToken": cookie.value if cookie else ""}

    def marker(self) -> str:
        self.seq += 1
        return f"{NOTE_PREFIX}{self.plan['run']}:u{self.i}:{self.seq}"

    def new_tx(self) -> dict:
        from datetime import UTC, datetime, timedelta

        asset = self.rng.choice(self.plan["assets"])
        price = float(asset["close"]) * self.rng.uniform(0.95, 1.05)
        worth = self.rng.uniform(20, 200)
        when = datetime.now(UTC) - timedelta(minutes=self.rng.randint(5, 30 * 24 * 60))
        return {
            "symbol": asset["symbol"],
            "kind": self.rng.choice(["buy", "buy", "sell"]),
            "quantity": f"{worth / price:.8f}",
            "unit_price": f"{price:.2f}",
            "fee": "0.1",
            "executed_at": when.strftime("%Y-%m-%dT%H:%M:%S"),
            "note": self.marker(),
        }

    def write(self, op: str, via: str, marker: str, status: str, acked: bool, tx_id=None) -> dict:
        w = {"op": op, "via": via, "marker": marker, "status": status, "acked": acked, "tx_id": tx_id, "user": self.i}
        self.rec.writes.append(w)
        return w

    async def csrf_form(self, kind: str, path: str) -> str | None:
        status, body, _ = await self.call(kind, "GET", path, (200,))
        m = CSRF_RE.search(body) if status == "200" else None
        return m.group(1) if m else None

    # -- what people do

    async def sign_in(self) -> bool:
        token = await self.csrf_form("login_form", "/accounts/login/")
        if token is None:
            return False
        status, _, headers = await self.call(
            "login",
            "POST",
            "/accounts/login/",
            (302,),
            data={"username": self.p["username"], "password": self.p["password"], "csrfmiddlewaretoken": token},
            headers={"Referer": self.base + "/accounts/login/"},
        )
        return status == "302" and headers.get("Location", "").startswith("/portfolios/")

    async def dashboard(self):
        await self.call("page_dashboard", "GET", "/portfolios/", (200,))

    async def portfolio_page(self):
        await self.call("page_portfolio", "GET", f"/portfolios/{self.pk}/", (200,))

    async def transactions_page(self):
        kind = self.rng.choice(["buy", "sell", ""])
        symbol = self.rng.choice(SYMBOLS)
        await self.call("page_transactions", "GET", f"/portfolios/{self.pk}/?asset={symbol}&kind={kind}", (200,))

    async def asset_page(self):
        symbol = self.rng.choice(SYMBOLS)
        await self.call("page_asset", "GET", f"/assets/{symbol}/", (200,))
        # The page's chart script fetches the prices next.
        await self.call(
            "page_asset_prices",
            "GET",
            f"/assets/{symbol}/prices.json?range={self.rng.choice(['24h', '7d', '30d', '1y'])}",
            (200,),
        )

    async def api_assets(self):
        await self.call("api_assets", "GET", "/api/v1/assets/", (200,), headers=self.api_headers())

    async def api_candles(self):
        asset = self.rng.choice(self.plan["assets"])
        await self.call(
            "api_candles",
            "GET",
            f"/api/v1/assets/{asset['symbol']}/candles/?start={asset['candles_start']}&limit=100",
            (200,),
            headers=self.api_headers(),
        )

    async def api_forecast(self):
        await self.call(
            "api_forecast",
            "GET",
            f"/api/v1/assets/{self.rng.choice(SYMBOLS)}/forecasts/latest/",
            (200,),
            headers=self.api_headers(),
        )

    async def api_holdings(self):
        await self.call(
            "api_holdings", "GET", f"/api/v1/portfolios/{self.pk}/holdings/", (200,), headers=self.api_headers()
        )

    async def api_transactions(self):
        await self.call(
            "api_transactions",
            "GET",
            f"/api/v1/portfolios/{self.pk}/transactions/?limit=50",
            (200,),
            headers=self.api_headers(),
        )

    async def api_add(self):
        tx = self.new_tx()
        tx["executed_at"] += "Z"
        status, body, _ = await self.call(
            "api_tx_add",
            "POST",
            f"/api/v1/portfolios/{self.pk}/transactions/",
            (201,),
            json=tx,
            headers=self.api_headers(unsafe=True),
        )
        tx_id = None
        if status == "201":
            tx_id = json.loads(body)["id"]
        w = self.write("add", "api", tx["note"], status, status == "201", tx_id)
        if w["acked"]:
            self.live.append(w)

    async def form_add(self):
        token = await self.csrf_form("page_tx_add_form", f"/portfolios/{self.pk}/transactions/add/")
        if token is None:
            return
        tx = self.new_tx()
        status, _, headers = await self.call(
            "page_tx_add",
            "POST",
            f"/portfolios/{self.pk}/transactions/add/",
            (302,),
            data={**tx, "csrfmiddlewaretoken": token},
        )
        acked = status == "302" and headers.get("Location", "") == f"/portfolios/{self.pk}/"
        w = self.write("add", "form", tx["note"], status, acked)
        if acked:
            self.live.append(w)

    async def find_id(self, w: dict) -> int | None:
        """A form-added transaction's id, as a script would find it: the newest ones through the API."""
        status, body, _ = await self.call(
            "api_transactions",
            "GET",
            f"/api/v1/portfolios/{self.pk}/transactions/?ordering=-created_at&limit=100",
            (200,),
            headers=self.api_headers(),
        )
        if status != "200":
            return None
        for row in json.loads(body)["results"]:
            if row["note"] == w["marker"]:
                return row["id"]
        self.rec.events["acknowledged add not listed by the API"] += 1
        return None

    async def pick_live(self) -> dict | None:
        if not self.live:
            return None
        w = self.live.pop(self.rng.randrange(len(self.live)))
        if w["tx_id"] is None:
            w["tx_id"] = await self.find_id(w)
        return w if w["tx_id"] is not None else None

    async def api_delete(self):
        w = await self.pick_live()
        if w is None:
            return await self.api_add()
        status, _, _ = await self.call(
            "api_tx_delete",
            "DELETE",
            f"/api/v1/portfolios/{self.pk}/transactions/{w['tx_id']}/",
            (204,),
            headers=self.api_headers(unsafe=True),
        )
        self.write("delete", "api", w["marker"], status, status == "204", w["tx_id"])

    async def form_delete(self):
        w = await self.pick_live()
        if w is None:
            return await self.form_add()
        path = f"/portfolios/{self.pk}/transactions/{w['tx_id']}/delete/"
        token = await self.csrf_form("page_tx_delete_form", path)
        if token is None:
            self.write("delete", "form", w["marker"], "no form", False, w["tx_id"])
            return
        status, _, headers = await self.call(
            "page_tx_delete", "POST", path, (302,), data={"csrfmiddlewaretoken": token}
        )
        acked = status == "302" and headers.get("Location", "") == f"/portfolios/{self.pk}/"
        self.write("delete", "form", w["marker"], status, acked, w["tx_id"])

    ACTIONS = {  # name: weight; reads dominate, as on any site
        "dashboard": 10,
        "portfolio_page": 10,
        "transactions_page": 5,
        "asset_page": 8,
        "api_assets": 5,
        "api_candles": 8,
        "api_forecast": 8,
        "api_holdings": 8,
        "api_transactions": 4,
        "api_add": 6,
        "api_delete": 3,
        "form_add": 4,
        "form_delete": 2,
    }

    async def run(self, start_at: float, deadline: float):
        import asyncio

        import aiohttp

        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        names, weights = zip(*self.ACTIONS.items())
        # unsafe=True: cookies from an IP address (127.0.0.1) are kept, as a browser keeps them.
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        ) as self.http:
            while time.monotonic() < deadline and not await self.sign_in():
                await asyncio.sleep(self.rng.uniform(*self.plan["think"]))
            while time.monotonic() < deadline:
                await asyncio.sleep(self.rng.uniform(*self.plan["think"]))
                if time.monotonic() >= deadline:
                    break
                await getattr(self, self.rng.choices(names, weights)[0])()


async def _drive(plan: dict) -> Recorder:
    import asyncio

    rec = Recorder()
    now = time.monotonic()
    deadline = now + plan["seconds"]
    ramp = min(5.0, plan["seconds"] / 4)  # people arrive over the first seconds, not in one instant
    users = [User(i, p, plan, rec, random.Random(plan["seed"] * 1000 + i)) for i, p in enumerate(plan["users"])]
    async with asyncio.TaskGroup() as tg:
        for i, u in enumerate(users):
            tg.create_task(u.run(now + ramp * i / len(users), deadline))
    return rec


def drive(plan: dict) -> dict:
    import asyncio

    started = time.monotonic()
    rec = asyncio.run(_drive(plan))
    return {
        "elapsed": time.monotonic() - started,
        "requests": rec.requests,
        "writes": rec.writes,
        "events": dict(rec.events),
    }


# --- parent: the writes against the database ----------------------------------------------------------


def verify_writes(database_url: str, writes: list[dict], run: str) -> dict:
    """Every write's outcome in the database, by its note (the notes of this run, or step, only)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT note, count(*) FROM portfolio_transaction WHERE note LIKE %s GROUP BY note",
            (f"{NOTE_PREFIX}{run}:%",),
        ).fetchall()
    stored = dict(rows)
    adds = {w["marker"]: w for w in writes if w["op"] == "add"}
    deletes = defaultdict(list)
    for w in writes:
        if w["op"] == "delete":
            deletes[w["marker"]].append(w)
    out = {
        "lost": [],
        "duplicated": [],
        "not_deleted": [],
        "stored_despite_refusal": [],
        "unknown_outcome_stored": [],
        "unknown_outcome_absent": [],
        "unacknowledged_delete_applied": [],
        "unexpected_rows": [],
    }
    for marker, count in stored.items():
        if count > 1:
            out["duplicated"].append(marker)
        if marker not in adds:
            out["unexpected_rows"].append(marker)
    for marker, add in adds.items():
        count = stored.get(marker, 0)
        dels = deletes.get(marker, [])
        if add["acked"]:
            if any(d["acked"] for d in dels):
                if count:
                    out["not_deleted"].append(marker)
            elif dels:  # a delete without an answer: either state is honest
                if not count:
                    out["unacknowledged_delete_applied"].append(marker)
            elif not count:
                out["lost"].append(marker)
        elif add["status"] == "timeout" or add["status"].startswith("error:"):
            (out["unknown_outcome_stored"] if count else out["unknown_outcome_absent"]).append(marker)
        elif count:
            out["stored_despite_refusal"].append(marker)
    return out


# --- parent: numbers ------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def summarize(driven: dict, checked: dict, tasks: dict, args, data: dict, users: int | None = None) -> dict:
    """One run's (or step's) numbers; `users` is the step's count (default: --users)."""
    users = args.users if users is None else users
    reqs = driven["requests"]
    by_kind = defaultdict(list)
    for kind, status, ms, ok in reqs:
        by_kind[kind].append((status, ms, ok))
    kinds = {}
    for kind, rs in sorted(by_kind.items()):
        answered = [ms for status, ms, _ in rs if status.isdigit()]
        kinds[kind] = {
            "requests": len(rs),
            "errors": sum(1 for _, _, ok in rs if not ok),
            "p50_ms": percentile(answered, 50),
            "p99_ms": percentile(answered, 99),
        }
    answered = [ms for _, status, ms, _ in reqs if status.isdigit()]
    statuses = Counter(status for _, status, _, _ in reqs)
    errors = Counter(status for _, status, _, ok in reqs if not ok)
    five_xx = sum(n for s, n in statuses.items() if s.startswith("5"))
    writes = driven["writes"]

    def count(op, via=None, acked=None):
        return sum(
            1
            for w in writes
            if w["op"] == op and (via is None or w["via"] == via) and (acked is None or w["acked"] == acked)
        )

    integrity = {k: len(v) for k, v in checked.items()}
    lost = integrity["lost"] + integrity["not_deleted"]
    duplicated = integrity["duplicated"]
    wrong = integrity["stored_despite_refusal"] + integrity["unexpected_rows"]
    targets = {
        "no_5xx": five_xx == 0,
        "no_lost_writes": lost == 0,
        "no_duplicated_writes": duplicated == 0,
        "no_refused_write_stored": wrong == 0,
        "every_task_ran": tasks["lost"] == 0,
    }
    timeouts = sum(n for st, n in statuses.items() if not st.isdigit())
    return {
        "users": users,
        "seconds": args.seconds,
        "elapsed_s": round(driven["elapsed"], 1),
        "think_s": list(args.think),
        "gunicorn_workers": args.workers,
        "celery_concurrency": args.concurrency,
        "data": data,
        "requests": len(reqs),
        "answered": len(answered),
        "rps": round(len(reqs) / driven["elapsed"], 1),
        "p50_ms": percentile(answered, 50),
        "p99_ms": percentile(answered, 99),
        "statuses": dict(sorted(statuses.items())),
        "errors_by_status": dict(sorted(errors.items())),
        "five_xx": five_xx,
        "no_answer": timeouts,
        "kinds": kinds,
        "writes": {
            "adds": count("add"),
            "adds_acknowledged": count("add", acked=True),
            "adds_api": count("add", "api"),
            "adds_form": count("add", "form"),
            "deletes": count("delete"),
            "deletes_acknowledged": count("delete", acked=True),
            "deletes_api": count("delete", "api"),
            "deletes_form": count("delete", "form"),
            **integrity,
            "lost_total": lost,
            "examples": {k: v[:5] for k, v in checked.items() if v},
        },
        "events": driven["events"],
        "tasks": tasks,
        "targets": targets,
        "target_met": all(targets.values()),
    }


def worker_tasks(log: Path) -> Counter:
    text = log.read_text(errors="replace") if log.exists() else ""
    return Counter(m.group(1) for m in re.finditer(r"Task forecasting\.tasks\.(\w+)\[[^\]]+\] succeeded", text))


def markdown(r: dict) -> str:
    m, w, t = r["machine"], r["writes"], r["tasks"]
    mark = "MET" if r["target_met"] else "NOT MET"
    lines = [
        f"# Load benchmark: {r['users']} users for {r['seconds']} s",
        "",
        f"{m['date']}, {m['nproc']} CPUs shared with other work (load average {m['load_1m']} at start, "
        f"{r['load_1m_end']} at the end), Python {m['python']}, {m['platform']}, commit {m['commit']}.",
        "",
        f"gunicorn with {r['gunicorn_workers']} sync workers (as in docker-compose.yml), test settings (DEBUG off, "
        f"fast password hasher), PostgreSQL, Redis as cache, throttle store and Celery broker; one Celery worker "
        f"(concurrency {r['celery_concurrency']}) on the ingest and forecast queues. Data: "
        + ", ".join(f"{a['symbol']} ({a['candles']:,} hourly candles)" for a in r["data"]["assets"])
        + f", a forecast each, {r['users']} people with a portfolio of "
        f"{r['data']['transactions'] // max(r['users'], 1)} transactions and an API token. "
        "Each simulated user signs in through the form, then pauses "
        f"{r['think_s'][0]:g} to {r['think_s'][1]:g} s between actions; the client (aiohttp) runs in its own process "
        f"on the same machine. The machine is shared and noisy: latencies vary from run to run.",
        "",
        f"**{r['requests']:,} requests** in {r['elapsed_s']} s ({r['rps']} per second), p50 {r['p50_ms']} ms, "
        f"p99 {r['p99_ms']} ms. Answers: " + ", ".join(f"{s}: {n:,}" for s, n in r["statuses"].items()) + ".",
        "",
        "Unexpected answers: " + (", ".join(f"{s}: {n}" for s, n in r["errors_by_status"].items()) or "none") + ".",
        "",
        "| request | count | not as expected | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, k in r["kinds"].items():
        lines.append(f"| {kind} | {k['requests']:,} | {k['errors']} | {k['p50_ms']} | {k['p99_ms']} |")
    lines += [
        "",
        "## Writes",
        "",
        f"{w['adds']} transactions added ({w['adds_api']} through the API, {w['adds_form']} through the form), "
        f"{w['adds_acknowledged']} acknowledged; {w['deletes']} deleted ({w['deletes_api']} API, {w['deletes_form']} "
        f"form), {w['deletes_acknowledged']} acknowledged. Checked in the database by each write's note:",
        "",
        f"- acknowledged adds missing (lost): {w['lost']}",
        f"- acknowledged deletes not applied: {w['not_deleted']}",
        f"- stored more than once (duplicated): {w['duplicated']}",
        f"- refused (4xx/5xx) but stored: {w['stored_despite_refusal']}",
        f"- rows nobody sent: {w['unexpected_rows']}",
        f"- no answer (timeout or connection error): {w['unknown_outcome_stored']} stored, "
        f"{w['unknown_outcome_absent']} absent; deletes without an answer that were applied: "
        f"{w['unacknowledged_delete_applied']}",
        "",
        "Celery: "
        + ", ".join(f"{name} {n} enqueued, {t['succeeded'].get(name, 0)} ran" for name, n in t["enqueued"].items())
        + f"; {t['forecasts_after']} forecasts stored afterwards ({t['forecasts_before']} before: a forecast from "
        f"the same newest candle is stored once, however often it is asked for).",
        "",
    ]
    if r["events"]:
        lines += ["Also seen: " + ", ".join(f"{k}: {v}" for k, v in r["events"].items()) + ".", ""]
    targets = r["targets"]
    lines += [
        f"Targets: no 5xx ({r['five_xx']}), no lost write ({w['lost_total']}), no duplicated write "
        f"({w['duplicated']}), no refused write stored ({w['stored_despite_refusal'] + w['unexpected_rows']}), every "
        f"task ran ({t['lost']} missing): **{mark}**"
        + ("" if r["target_met"] else " (" + ", ".join(k for k, v in targets.items() if not v) + ")")
        + ".",
        "",
    ]
    return "\n".join(lines)


# --- parent ---------------------------------------------------------------------------------------------


def server_env(database_url: str, redis_url: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "MUR_", "CELERY_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mur_site.settings.test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            # Candle refreshes read the real files (no network); asset_track checks the symbol there too.
            "MUR_KLINES_DIR": str(data_dir()),
            # The real files end in 2022: /healthz would call every asset stale and answer 503.
            "MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS": "0",
            "PYTHONUNBUFFERED": "1",
            # Forecasts run small torch models: one thread per process, as in docker-compose.yml.
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "MUR_TORCH_THREADS": "1",
        }
    )
    return env


def child(flag: str, *extra: str, env: dict, capture: bool = True, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, __file__, flag, *extra],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else None,
        **kw,
    )


def last_json(proc: subprocess.Popen, what: str, timeout: float) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        sys.exit(f"{what} failed (exit {proc.returncode}); see the output above.")
    return json.loads(out.strip().splitlines()[-1])


def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="simulated users, each with its own account")
    parser.add_argument(
        "--steps",
        type=int,
        nargs="+",
        help="run these numbers of users one after another against the same servers (e.g. 50 100 200 500); "
        "writes bench/results/load_steps.json and .md",
    )
    parser.add_argument("--seconds", type=float, default=60, help="how long the load lasts")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers (docker-compose.yml: 3)")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes (ingest, forecast)")
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=THINK_SECONDS,
        metavar=("MIN", "MAX"),
        help="seconds each user pauses between actions (uniform between MIN and MAX)",
    )
    parser.add_argument("--seed", type=int, default=1, help="the users' choices follow this seed")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("MUR_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432"),
        help=f"PostgreSQL server (no database name); the script creates and drops {BENCH_DB} there",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("MUR_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        help="a Redis database for this run alone: it is flushed first",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database afterwards")
    parser.add_argument(
        "--db-conn-max-age",
        type=int,
        help="MUR_DB_CONN_MAX_AGE for the servers (seconds a database connection is kept; 0: one per request)",
    )
    parser.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ticker", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup is not None:
        print(json.dumps(setup_data(args.setup)))
        return
    if args.ticker is not None:
        print(json.dumps(ticker(args.ticker)))
        return
    if args.drive:
        plan = json.loads(Path(args.drive).read_text())
        Path(plan["out"]).write_text(json.dumps(drive(plan)))
        return

    if importlib.util.find_spec("aiohttp") is None:  # fail now, not after the setup
        sys.exit("aiohttp is missing: run scripts/setup (requirements-dev.txt).")

    started_machine = machine()
    pg_url = args.pg_url.rstrip("/")
    database_url = f"{pg_url}/{BENCH_DB}"
    env = server_env(database_url, args.redis_url)
    if args.db_conn_max_age is not None:
        env["MUR_DB_CONN_MAX_AGE"] = str(args.db_conn_max_age)
    if RUN_DIR.exists():
        shutil.rmtree(RUN_DIR)
    RUN_DIR.mkdir(parents=True)
    flush_redis(args.redis_url)
    pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    pg_admin(pg_url, f"CREATE DATABASE {BENCH_DB}")
    steps = args.steps or [args.users]
    procs: list[subprocess.Popen] = []
    results = []
    try:
        most = max(steps)
        print(f"Loading {', '.join(SYMBOLS)} candles, forecasts and {most} users ...", flush=True)
        data = last_json(child("--setup", str(most), env=env), "setup", timeout=1800)
        people = data.pop("users")
        port = free_port()
        procs.append(start_gunicorn(env, port, args.workers, log=RUN_DIR / "gunicorn.log", timeout=60, access_log=True))
        worker_log = RUN_DIR / "worker.log"
        procs.append(start_celery_worker(env, "ingest,forecast", args.concurrency, "load-worker", worker_log))
        base = f"http://127.0.0.1:{port}"
        for users in steps:
            results.append(
                run_step(
                    args,
                    users,
                    people[:users],
                    data,
                    base=base,
                    env=env,
                    database_url=database_url,
                    worker_log=worker_log,
                    servers=procs,
                    machine_at_start=started_machine if users == steps[0] else machine(),
                )
            )
    finally:
        for proc in reversed(procs):
            stop(proc)
        if not args.keep:
            pg_admin(pg_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    if len(results) == 1:
        publish("load", results[0], markdown(results[0]))
        met = results[0]["target_met"]
    else:
        stepped = {"machine": started_machine, "steps": results, "limits": limits(results)}
        publish("load_steps", stepped, steps_markdown(stepped))
        met = all(r["target_met"] for r in results)
    print(f"logs in {RUN_DIR}")
    print(f"Target (no 5xx, no lost or duplicated write): {'MET' if met else 'NOT MET'}")
    sys.exit(0 if met else 1)


def run_step(
    args, users: int, people: list, data: dict, *, base, env, database_url, worker_log, servers, machine_at_start
):
    """One step: `users` people for args.seconds against servers already running, then its writes
    and tasks accounted for (its own notes and its own share of the worker's log)."""
    print(
        f"{users} users for {args.seconds:g} s on {base} (load average {os.getloadavg()[0]:.2f}) ...",
        flush=True,
    )
    run = f"{int(time.time())}-{users}"
    plan = {
        "base": base,
        "seconds": args.seconds,
        "think": args.think,
        "seed": args.seed,
        "run": run,
        "users": people,
        "assets": data["assets"],
        "out": str(RUN_DIR / f"driven-{users}.json"),
    }
    plan_path = RUN_DIR / f"plan-{users}.json"
    plan_path.write_text(json.dumps(plan))
    before_tasks = worker_tasks(worker_log)
    import psycopg

    with psycopg.connect(database_url) as conn:
        forecasts_before = conn.execute("SELECT count(*) FROM forecasting_forecast").fetchone()[0]
    ticking = child("--ticker", str(args.seconds), env=env)
    cpu_before = cpu_by_part(servers)
    driving = child("--drive", str(plan_path), env=env, capture=False)
    if driving.wait(timeout=args.seconds + REQUEST_TIMEOUT + 120) != 0:
        sys.exit("the load process failed; see its output above")
    cpu_after = cpu_by_part(servers)
    load_end = round(os.getloadavg()[0], 2)
    enqueued = last_json(ticking, "the task ticker", timeout=60)
    driven = json.loads(Path(plan["out"]).read_text())

    def ran() -> Counter:
        now = worker_tasks(worker_log)
        return Counter({k: now[k] - before_tasks[k] for k in now})

    # The queue drains after the load: every task enqueued must have run once.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and any(ran()[k] < n for k, n in enqueued.items()):
        time.sleep(1)
    succeeded = ran()
    with psycopg.connect(database_url) as conn:
        forecasts = conn.execute("SELECT count(*) FROM forecasting_forecast").fetchone()[0]
    tasks = {
        "enqueued": enqueued,
        "succeeded": dict(succeeded),
        "lost": sum(max(0, n - succeeded[k]) for k, n in enqueued.items()),
        "forecasts_before": forecasts_before,
        "forecasts_after": forecasts,
    }
    checked = verify_writes(database_url, driven["writes"], run)
    out = {
        "machine": machine_at_start,
        "load_1m_end": load_end,
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after},
        **summarize(driven, checked, tasks, args, data, users),
    }
    print(
        f"  {out['requests']:,} requests, {out['rps']}/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, "
        f"5xx {out['five_xx']}, no answer {out['no_answer']}, lost {out['writes']['lost_total']}, "
        f"duplicated {out['writes']['duplicated']}; CPU s {out['cpu_seconds']}",
        flush=True,
    )
    return out


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command name, CPU seconds so far) for every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[1] is ppid; utime, stime, cutime, cstime are fields[11:15] (stat fields 14-17).
        cpu = sum(int(v) for v in fields[11:15]) / tick
        table[int(entry.name)] = (int(fields[1]), name, cpu)
    return table


def cpu_by_part(servers: list[subprocess.Popen]) -> dict[str, float]:
    """CPU seconds so far of gunicorn, the Celery worker (each with its children), PostgreSQL and
    Redis: the difference over a step says which part the machine's time went to."""
    table = _proc_table()
    children = defaultdict(list)
    for pid, (ppid, _, _) in table.items():
        children[ppid].append(pid)

    def tree(pid: int) -> float:
        total, todo = 0.0, [pid]
        while todo:
            p = todo.pop()
            if p in table:
                total += table[p][2]
            todo.extend(children.get(p, []))
        return total

    out = {"gunicorn": tree(servers[0].pid), "celery": tree(servers[1].pid)}
    out["postgres"] = sum(cpu for _, name, cpu in table.values() if name.startswith("postgres"))
    out["redis"] = sum(cpu for _, name, cpu in table.values() if name.startswith("redis-server"))
    return out


def limits(results: list[dict]) -> dict:
    """The first step whose p99 passes 1 s, and where the machine's time went at the largest step."""
    first_slow = next((r["users"] for r in results if (r["p99_ms"] or 0) > 1000), None)
    top = results[-1]
    cpu = top["cpu_seconds"]
    busiest = max(cpu, key=cpu.get) if cpu else None
    return {
        "first_step_p99_over_1s": first_slow,
        "busiest_part_at_top": busiest,
        "cpu_share_at_top": {k: round(v / max(sum(cpu.values()), 1e-9), 2) for k, v in cpu.items()},
        "cores_busy_at_top": round(sum(cpu.values()) / max(top["elapsed_s"], 1e-9), 2),
    }


def steps_markdown(r: dict) -> str:
    m, steps, lim = r["machine"], r["steps"], r["limits"]
    first = steps[0]
    lines = [
        "# Load benchmark: " + ", ".join(str(s["users"]) for s in steps) + " users, step by step",
        "",
        f"{m['date']}, {m['nproc']} CPUs shared with other work (load average {m['load_1m']} at start), Python "
        f"{m['python']}, {m['platform']}, commit {m['commit']}.",
        "",
        f"The docker-compose shape on one machine: gunicorn with {first['gunicorn_workers']} sync workers, "
        f"PostgreSQL, Redis (cache, throttle store, broker), one Celery worker (concurrency "
        f"{first['celery_concurrency']}) on the ingest and forecast queues, and the simulated users' client (aiohttp, "
        "one process) all on the same cores. Each step runs its users for "
        f"{first['seconds']:g} s with {first['think_s'][0]:g} to {first['think_s'][1]:g} s of thinking between "
        "actions, against the same servers and database; each step's writes are checked by their own notes.",
        "",
        "| users | requests | per second | p50 ms | p99 ms | 5xx | no answer | writes acknowledged | lost | "
        "duplicated | refused but stored | tasks missing | CPU s: gunicorn / Celery / PostgreSQL / Redis | load "
        "at end |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in steps:
        w, c = s["writes"], s["cpu_seconds"]
        lines.append(
            f"| {s['users']} | {s['requests']:,} | {s['rps']} | {s['p50_ms']} | {s['p99_ms']} | {s['five_xx']} | "
            f"{s['no_answer']} | {w['adds_acknowledged'] + w['deletes_acknowledged']} | {w['lost_total']} | "
            f"{w['duplicated']} | {w['stored_despite_refusal'] + w['unexpected_rows']} | {s['tasks']['lost']} | "
            f"{c.get('gunicorn', 0)} / {c.get('celery', 0)} / {c.get('postgres', 0)} / {c.get('redis', 0)} | "
            f"{s['load_1m_end']} |"
        )
    kinds = sorted({k for s in steps for k in s["kinds"]})
    lines += [
        "",
        "p50 / p99 ms per request kind and step:",
        "",
        "| request | " + " | ".join(f"{s['users']} users" for s in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for kind in kinds:
        cells = []
        for s in steps:
            k = s["kinds"].get(kind)
            cells.append(f"{k['p50_ms']} / {k['p99_ms']}" if k else "—")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    slow = lim["first_step_p99_over_1s"]
    share = ", ".join(f"{k} {v:.0%}" for k, v in lim["cpu_share_at_top"].items())
    lines += [
        "",
        (f"p99 first passes 1 s at {slow} users." if slow else "p99 stays under 1 s at every step."),
        f"At the largest step the servers kept {lim['cores_busy_at_top']} of the {m['nproc']} cores busy "
        f"({share} of their CPU time; the load client's own time is not counted).",
        "",
        "Targets per step: no 5xx, no lost or duplicated write, no refused write stored, every task ran: "
        + ", ".join(f"{s['users']} users {'MET' if s['target_met'] else 'NOT MET'}" for s in steps)
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
