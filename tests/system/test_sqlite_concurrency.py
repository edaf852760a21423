"""The embedded default (SQLite) under concurrent writes through the real server: every request is
answered as it would be alone (created, or refused with a 4xx), never a 500 "database is locked"."""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

from tests.reliability import record
from tests.support.processes import ROOT, clean_env, free_port, wait_for

PAIRS = 100
SETUP = """
from django.contrib.auth import get_user_model
from accounts.services import token_create
from forecasting.models import Asset
from portfolio.services import portfolio_create
user = get_user_model().objects.create_user(username="racer", password="a-long-passphrase-1")
btc = Asset.objects.create(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT")
from datetime import UTC, datetime, timedelta
from forecasting.models import Candle
for h in range(3):
    t = datetime(2022, 6, 30, 20 + h, tzinfo=UTC)
    Candle.objects.create(asset=btc, interval="1h", open_time=t, close_time=t + timedelta(minutes=59, seconds=59.999),
        open="20000.5", high="20100", low="19900.25", close="20050.10000000", volume="12.5")
p = portfolio_create(owner=user, name="Race")
print("KEY", token_create(user=user, name="race")[1], p.id)
"""


def _request(url, *, key=None, body=None, method="GET"):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Token {key}")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None  # not listening yet


def test_racing_writes_on_sqlite_get_no_500(tmp_path):
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MUR_BROKER_DIR=str(tmp_path / "broker"),
        MUR_API_USER_RATE="100000/min",
        MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS="0",
        DJANGO_DEBUG="false",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(manage + ["shell", "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    key, portfolio_id = out.stdout.split("KEY", 1)[1].split()
    port = free_port()
    log = tmp_path / "web.log"
    # The web process as `runall` starts it: threaded runserver, one request per thread.
    web = subprocess.Popen(
        manage + ["runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    statuses, lock = [], threading.Lock()
    try:
        wait_for(lambda: _request(f"{base}/healthz") == 200, 60, "the web server", log)

        def pair(i):
            # Two writes at once on one portfolio: a transaction and an edit of the portfolio.
            got = [
                _request(
                    f"{base}/api/v1/portfolios/{portfolio_id}/transactions/",
                    key=key,
                    method="POST",
                    body={
                        "symbol": "BTCUSDT",
                        "kind": "buy",
                        "quantity": "1",
                        "unit_price": str(100 + i),
                        "executed_at": f"2022-06-{i % 28 + 1:02d}T{i % 24:02d}:00:00Z",
                    },
                ),
                _request(
                    f"{base}/api/v1/portfolios/{portfolio_id}/",
                    key=key,
                    method="PATCH",
                    body={"description": f"edit {i}"},
                ),
            ]
            with lock:
                statuses.extend(got)

        for start in range(0, PAIRS, 10):
            threads = [threading.Thread(target=pair, args=(i,)) for i in range(start, start + 10)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        # The local run as a person sees it with debug off: static files and the favicon are served
        # without collectstatic, and a missing page is the site's 404, not Django's debug page.
        # The candles API (its fast path is PostgreSQL's SQL) answers on SQLite with the same body.
        req = urllib.request.Request(f"{base}/api/v1/assets/BTCUSDT/candles/?limit=2&ordering=-open_time")
        req.add_header("Authorization", f"Token {key}")
        with urllib.request.urlopen(req, timeout=10) as r:
            page = json.loads(r.read())
        assert page["count"] == 3 and len(page["results"]) == 2, page
        assert page["results"][0] == {
            "open_time": "2022-06-30T22:00:00.000000Z",
            "close_time": "2022-06-30T22:59:59.999000Z",
            "open": "20000.5",
            "high": "20100",
            "low": "19900.25",
            "close": "20050.1",
            "volume": "12.5",
        }
        assert _request(f"{base}/static/css/site.css") == 200
        with urllib.request.urlopen(f"{base}/favicon.ico", timeout=10) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("image/svg")
        try:
            urllib.request.urlopen(f"{base}/no-such-page/", timeout=10)
            raise AssertionError("an unknown page answered 200")
        except urllib.error.HTTPError as e:
            page = e.read().decode()
            assert e.code == 404 and "Not found" in page and "URLconf" not in page
    finally:
        web.terminate()
        web.wait(timeout=30)
    assert len(statuses) == 2 * PAIRS
    assert not [s for s in statuses if s >= 500], log.read_text()[-3000:]
    assert statuses.count(201) == PAIRS and statuses.count(200) == PAIRS
    record(
        "faults",
        "SQLite default: racing writes through the real server",
        pairs=PAIRS,
        server_errors=sum(s >= 500 for s in statuses),
    )
