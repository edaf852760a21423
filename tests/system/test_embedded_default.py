"""Smoke test of the embedded default: SQLite + filesystem broker, the real `runall` processes."""

import json
import signal
import subprocess
import sys
import urllib.request

from tests.support.processes import ROOT, clean_env, free_port, wait_for, write_klines


def _get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except OSError:
        return None, None


def test_runall_serves_and_its_worker_consumes_the_file_broker(tmp_path, data_dir):
    klines = tmp_path / "klines"
    klines.mkdir()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        write_klines(klines / f"{symbol}-1h.csv", data_dir / f"{symbol}-1h.csv", rows=100)
    db = tmp_path / "db.sqlite3"
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.local",
        DATABASE_URL=f"sqlite:///{db}",
        MUR_BROKER_DIR=str(tmp_path / "broker"),
        MUR_KLINES_DIR=str(klines),
        MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS="0",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    setup = subprocess.run(manage + ["demo_setup"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "username: demo" in setup.stdout
    assert "BTCUSDT: 100 new candles" in setup.stdout
    # The password is printed once only.
    again = subprocess.run(manage + ["demo_setup"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "password:" not in again.stdout and "BTCUSDT: 0 new candles" in again.stdout

    port = free_port()
    log = tmp_path / "runall.log"
    proc = subprocess.Popen(
        # The workers' own log lines (ready, beat starting) are this test's signals: info, not the
        # quiet default.
        manage + ["runall", "--addr", f"127.0.0.1:{port}", "--loglevel", "info"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        status, body = wait_for(
            lambda: (r := _get_json(f"http://127.0.0.1:{port}/healthz"))[0] and r, 60, "the web server", log
        )
        assert status == 200, body
        assert body["database"]["vendor"] == "sqlite" and body["broker"]["transport"] == "filesystem"
        assert {c["symbol"] for c in body["candles"]} == {"BTCUSDT", "ETHUSDT"}
        wait_for(lambda: "worker@" in log.read_text() and "ready." in log.read_text(), 60, "the worker", log)

        # New candles arrive in the kline folder; a task sent through the file broker imports them.
        write_klines(klines / "BTCUSDT-1h.csv", data_dir / "BTCUSDT-1h.csv", rows=150)
        send = (
            "from forecasting.models import Asset; from forecasting.tasks import candles_refresh_task; "
            "candles_refresh_task.delay(Asset.objects.get(symbol='BTCUSDT').id)"
        )
        subprocess.run(manage + ["shell", "-c", send], cwd=ROOT, env=env, check=True)
        count = "from forecasting.models import Candle; print(Candle.objects.filter(asset__symbol='BTCUSDT').count())"

        def stored():
            out = subprocess.run(manage + ["shell", "-c", count], cwd=ROOT, env=env, capture_output=True, text=True)
            return out.stdout.strip().splitlines()[-1:] == ["150"]

        wait_for(stored, 60, "the worker to import 50 new candles", log, interval=1)
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "beat: Starting" in text and "trainer@" in text
