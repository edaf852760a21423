"""The first minutes of a fresh offline start, as the README runs it (`demo_setup`, then `runall`:
SQLite, the file broker, real worker, trainer and beat processes), seen in headless Chromium: a
forecast band on the asset page and on the demo's sample portfolio at once, the first training's
progress, and its model (or the gate's verdict) minutes later. The epoch cap is lowered to keep
the test short; everything else is the local default. The terminal stays quiet and says what
matters."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from tests.support.browser import launch
from tests.support.processes import ROOT, clean_env, free_port, wait_for, write_klines


@pytest.fixture
def offline_site(tmp_path, data_dir):
    """A fresh local instance on kline files just long enough for a first training."""
    from forecasting.models import Asset
    from forecasting.services.first_forecast import candles_needed_to_train

    rows = candles_needed_to_train(Asset(symbol="BTCUSDT", interval="1h")) + 100
    klines = tmp_path / "klines"
    klines.mkdir()
    for symbol in ("BTCUSDT", "ETHUSDT"):
        write_klines(klines / f"{symbol}-1h.csv", data_dir / f"{symbol}-1h.csv", rows=rows)
    env = clean_env(
        DJANGO_SETTINGS_MODULE="mur_site.settings.local",
        DJANGO_DEBUG="false",  # as scripts/run starts it
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MUR_BROKER_DIR=str(tmp_path / "broker"),
        MUR_MEDIA_ROOT=str(tmp_path / "media"),
        MUR_KLINES_DIR=str(klines),
        MUR_HEALTH_MAX_CANDLE_AGE_INTERVALS="0",
        MUR_TRAIN_MAX_EPOCHS="3",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(manage + ["migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    setup = subprocess.run(manage + ["demo_setup"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    password = re.search(r"username: demo  password: (\S+)", setup.stdout)[1]
    port = free_port()
    log = tmp_path / "runall.log"
    proc = subprocess.Popen(
        manage + ["runall", "--addr", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )

    def stop() -> int:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return proc.wait(timeout=30)

    try:
        yield {"url": f"http://127.0.0.1:{port}", "password": password, "setup": setup.stdout, "log": log, "stop": stop}
    finally:
        stop()


def test_a_fresh_offline_start_shows_forecast_bands_at_once_and_a_model_within_minutes(
    offline_site, playwright, tmp_path
):
    site, log = offline_site, offline_site["log"]
    # Setup made each asset's first forecast and queued its first training.
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert re.search(rf"{symbol}: first forecast made \(baseline, .*\); first training queued\.", site["setup"])
    assert "Sample portfolio" in site["setup"]

    context = launch(playwright, tmp_path / "profile", timeout_ms=20_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = site["url"]
    wait_for(lambda: "running at" in log.read_text(), 60, "runall to start", log)
    wait_for(lambda: _answers(f"{url}/healthz"), 60, "the web server", log)
    page.goto(f"{url}/accounts/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", site["password"])
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{url}/portfolios/")

    # At once: the asset page draws the baseline's band after the price history.
    page.goto(f"{url}/assets/BTCUSDT/")
    canvas = page.locator("#price-chart[data-painted='true']")
    canvas.wait_for()
    assert int(canvas.get_attribute("data-band-points")) > 0
    assert "Old prices." in page.inner_text("#data-age")  # the kline files end years ago
    assert page.locator("#next-runs").inner_text().startswith("Next forecast")

    # The sample portfolio projects its value with a band too.
    page.goto(f"{url}/portfolios/")
    page.click("text=Sample portfolio")
    page.locator("#forecast-chart[data-painted='true']").wait_for()
    assert "covers" in page.inner_text("#forecast-cover") or "every holding" in page.inner_text("#forecast-cover")
    assert _portfolio_band(page) > 0

    # Within minutes: both first trainings end, and the asset page says what came of them.
    def trained(symbol):
        answer = page.request.get(f"{url}/assets/{symbol}/training.json").json()
        return answer["status"] in ("succeeded", "failed") and answer

    for symbol in ("BTCUSDT", "ETHUSDT"):
        run = wait_for(lambda s=symbol: trained(s), 300, f"the first training of {symbol}", log, interval=2)
        assert run["status"] == "succeeded", run
        page.goto(f"{url}/assets/{symbol}/")
        model = page.inner_text("#model")
        assert "v1" in model, model
        assert page.locator("#training-status").count() == 0
        if "Serving: model v1" in model:
            # Promoted: the forecast task sent after it makes the model's band within seconds.
            def drawn_by_model(s=symbol):
                page.goto(f"{url}/assets/{s}/")
                return "model v1" in page.inner_text("#forecast-source")

            wait_for(drawn_by_model, 60, f"{symbol}'s model forecast", log, interval=2)
        canvas = page.locator("#price-chart[data-painted='true']")
        canvas.wait_for()
        assert int(canvas.get_attribute("data-band-points")) > 0
    # A page that is not there: the site's 404, told once in the terminal (the request line).
    assert page.goto(f"{url}/portfolios/999999/").status == 404
    # The sample portfolio still projects a band, whichever forecasts serve now.
    page.goto(f"{url}/portfolios/")
    page.click("text=Sample portfolio")
    page.locator("#forecast-chart[data-painted='true']").wait_for()
    assert _portfolio_band(page) > 0
    context.close()
    assert errors == []

    # The terminal said what happened (it polls every 2 s: the last line may still be coming), and
    # nothing of the workers' own chatter. A training shorter than the poll is told by its result.
    for symbol in ("BTCUSDT", "ETHUSDT"):
        told = re.compile(rf"{symbol}: model v1 trained in [\d.]+ s: (promoted|not promoted)")
        wait_for(lambda t=told: t.search(log.read_text()), 15, f"the terminal to tell {symbol}'s result", log)
        assert f"{symbol}: training queued (first candles)." in log.read_text()
    text = log.read_text()
    assert "training started." in text
    for noise in ("superuser privileges", "No hostname was supplied", "-------------- ", "development server"):
        assert noise not in text, text
    assert text.count("/portfolios/999999/") == 1 and '"GET /portfolios/999999/ HTTP/1.1" 404' in text, text

    # Ctrl-C: one line says everything stopped, without each worker's own shutdown notice.
    assert site["stop"]() == 0
    text = log.read_text()
    assert text.rstrip().endswith("Stopped web, worker, trainer and beat."), text
    assert "Warm shutdown" not in text, text


def _portfolio_band(page) -> int:
    """Steps of the projected value whose 90% quantile is above its 10%: a band, not a line."""
    return page.locator("#forecast-chart").evaluate(
        """canvas => {
          const [low, high] = Chart.getChart(canvas).data.datasets.slice(1, 3).map(d => d.data);
          return high.filter((p, i) => p.y > low[i].y).length;
        }"""
    )


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
