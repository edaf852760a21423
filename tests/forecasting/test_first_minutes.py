"""A new asset forecasts from its first candles: the baseline at once, a first training queued,
and the pages say what serves, when the next runs are due and how old the prices are."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forecasting.ml.backtest import TRACK_AHEAD, track
from forecasting.models import BacktestTrack, Forecast, ModelVersion, TrainingRun
from forecasting.selectors.comparison import serving_comparison
from forecasting.selectors.market_data import DATA_OLD_AFTER_INTERVALS, prices_now
from forecasting.selectors.overview import assets_overview
from forecasting.selectors.schedules import asset_next_runs
from forecasting.services.first_forecast import FIRST_TRAINING, asset_forecasting_start, candles_needed_to_train
from forecasting.services.schedules import asset_schedules_ensure
from forecasting.tasks import candles_refresh_task
from portfolio.demo import SAMPLE_NAME
from portfolio.models import Portfolio
from tests.factories import NEWEST, AssetFactory, ForecastFactory, ModelVersionFactory, candles
from tests.support.processes import write_klines

HOUR = timedelta(hours=1)


def wave(n: int, start: float = 100.0) -> list[Decimal]:
    """n positive closes that move (a flat series has no volatility to build a band from)."""
    t = np.arange(n)
    return [Decimal(f"{v:.2f}") for v in start * np.exp(0.02 * np.sin(t / 7) + 0.01 * np.sin(t / 2.3))]


# --- the first forecast and the first training -------------------------------------------------------


def test_first_candles_make_the_baseline_forecast_at_once_and_only_once(btc, settings):
    settings.FIRST_TRAINING = False
    candles(btc, wave(500))
    first = asset_forecasting_start(asset=btc)
    assert first.forecast is not None and first.forecast.kind == Forecast.Kind.BASELINE
    assert "first forecast made" in first.note
    # Again (the next refresh): the forecast schedule makes the next forecasts, not this.
    again = asset_forecasting_start(asset=btc)
    assert again.forecast is None
    assert Forecast.objects.filter(asset=btc).count() == 1


def test_first_training_is_queued_once_when_the_history_allows(btc, settings, django_capture_on_commit_callbacks):
    settings.FIRST_TRAINING = True
    needed = candles_needed_to_train(btc)
    candles(btc, wave(needed - 1))
    short = asset_forecasting_start(asset=btc)
    assert short.run is None and f"waits for {needed} candles ({needed - 1} stored)" in short.note
    assert not TrainingRun.objects.exists()

    candles(btc, wave(1, 105), newest=NEWEST + HOUR)
    with django_capture_on_commit_callbacks(execute=False) as sent:
        started = asset_forecasting_start(asset=btc)
    assert started.run is not None and started.run.status == TrainingRun.Status.QUEUED
    assert started.run.triggered_by == FIRST_TRAINING
    assert len(sent) == 1  # the training task, sent once the run is committed
    # A run exists (whatever became of it): the nightly retrain takes over, no second first training.
    TrainingRun.objects.filter(id=started.run.id).update(status=TrainingRun.Status.FAILED)
    assert asset_forecasting_start(asset=btc).run is None
    assert TrainingRun.objects.count() == 1


def test_first_training_is_not_queued_for_an_asset_that_has_versions(btc, settings):
    settings.FIRST_TRAINING = True
    candles(btc, wave(candles_needed_to_train(btc)))
    ModelVersionFactory(asset=btc)
    assert asset_forecasting_start(asset=btc).run is None
    assert not TrainingRun.objects.exists()


def test_the_refresh_task_starts_forecasting_a_new_asset(btc, settings, tmp_path, data_dir):
    """New candles through the refresh task (offline: the kline folder) give the asset its forecast."""
    settings.FIRST_TRAINING = False
    write_klines(tmp_path / "BTCUSDT-1h.csv", data_dir / "BTCUSDT-1h.csv", rows=300)
    settings.KLINES_DIR = str(tmp_path)
    assert not Forecast.objects.exists()
    candles_refresh_task(btc.id)
    assert Forecast.objects.filter(asset=btc, kind=Forecast.Kind.BASELINE).count() == 1


def test_demo_setup_gives_a_forecast_and_a_sample_portfolio(db, settings, tmp_path, data_dir):
    settings.DEMO_ACCOUNT = True
    settings.DEMO_PORTFOLIO = True
    settings.FIRST_TRAINING = False
    for symbol in ("BTCUSDT", "ETHUSDT"):
        write_klines(tmp_path / f"{symbol}-1h.csv", data_dir / f"{symbol}-1h.csv", rows=400)
    settings.KLINES_DIR = str(tmp_path)
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    text = out.getvalue()
    assert "username: demo  password: " in text
    # 400 candles: too few for the seasonal band, so the naive band serves first.
    assert "BTCUSDT: first forecast made (naive-band" in text and "ETHUSDT: first forecast made" in text
    assert f"The demo account has a “{SAMPLE_NAME}”" in text
    assert Forecast.objects.filter(asset__symbol__in=["BTCUSDT", "ETHUSDT"]).count() == 2
    sample = Portfolio.objects.get(owner__username="demo", name=SAMPLE_NAME)
    kinds = sorted(sample.transactions.values_list("asset__symbol", "kind"))
    assert kinds == [
        ("BTCUSDT", "buy"),
        ("BTCUSDT", "buy"),
        ("BTCUSDT", "sell"),
        ("ETHUSDT", "buy"),
        ("ETHUSDT", "buy"),
    ]
    # Every price is the close of a stored candle at that time.
    for tx in sample.transactions.all():
        candle = tx.asset.candles.get(close_time=tx.executed_at)
        assert tx.unit_price == candle.close
    # A second run: no new password, no second sample (a deleted one is not brought back either).
    sample.delete()
    out = io.StringIO()
    call_command("demo_setup", stdout=out)
    assert "password:" not in out.getvalue()
    assert not Portfolio.objects.filter(name=SAMPLE_NAME).exists()


def test_demo_setup_makes_no_sample_portfolio_when_turned_off(db, settings, tmp_path, data_dir):
    settings.DEMO_ACCOUNT = True
    settings.DEMO_PORTFOLIO = False
    write_klines(tmp_path / "BTCUSDT-1h.csv", data_dir / "BTCUSDT-1h.csv", rows=200)
    settings.KLINES_DIR = str(tmp_path)
    call_command("demo_setup", "--symbols", "BTCUSDT", stdout=io.StringIO())
    assert not Portfolio.objects.exists()


# --- prices, their age and the next runs ---------------------------------------------------------------


def test_prices_now_gives_the_24_hour_change_and_flags_old_data(db):
    btc, eth = AssetFactory(symbol="BTCUSDT"), AssetFactory(symbol="ETHUSDT")
    candles(btc, [100 + i for i in range(30)])  # newest close 129, 24 hours before: 105
    candles(eth, [50, 60], newest=NEWEST)  # too short for a 24-hour change
    fresh_now = NEWEST + HOUR + timedelta(minutes=5)
    with CaptureQueriesContext(connection) as queries:
        prices = prices_now(assets=[btc, eth], now=fresh_now)
    assert len(queries.captured_queries) == 2
    p = prices[btc.id]
    assert p.close == Decimal("129") and p.open_time == NEWEST
    assert p.change == Decimal("24") and p.change_pct == pytest.approx(24 / 105)
    assert not p.old and p.age == timedelta(minutes=5, milliseconds=1)
    assert prices[eth.id].change is None
    late = NEWEST + HOUR * (DATA_OLD_AFTER_INTERVALS + 1) + timedelta(minutes=1)
    assert prices_now(assets=[btc], now=late)[btc.id].old


def test_next_runs_follow_the_beat_schedules(btc):
    asset_schedules_ensure(asset=btc)
    now = datetime(2026, 11, 28, 8, 38, 12, tzinfo=UTC)
    due = asset_next_runs(asset=btc, now=now)
    assert due == {
        "refresh": datetime(2026, 11, 28, 9, 1, tzinfo=UTC),
        "forecast": datetime(2026, 11, 28, 9, 3, tzinfo=UTC),
        "retrain": datetime(2026, 11, 29, 2, 30, tzinfo=UTC),
    }
    # A paused schedule has no next run.
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name="Retrain BTCUSDT").update(enabled=False)
    assert asset_next_runs(asset=btc, now=now)["retrain"] is None


# --- the plain verdict ---------------------------------------------------------------------------------


def _version(asset, status, pinball, mae, coverage=0.81):
    return ModelVersionFactory(
        asset=asset,
        status=status,
        metrics={"pinball": pinball, "mae": mae, "coverage": coverage, "band": 0.8},
        baseline_metrics={"seasonal_band": {"pinball": 1.0, "coverage": 0.79}, "naive": {"mae": 10.0}},
    )


def test_the_verdict_says_in_plain_words_what_the_numbers_mean(btc):
    champion = _version(btc, ModelVersion.Status.CHAMPION, pinball=0.97, mae=10.0)
    verdict = serving_comparison(asset=btc, champion=champion, newest_version=champion).verdict
    assert verdict.startswith("The model's range of likely prices is better than the plain statistical range (3.0%)")
    assert "it held the actual price 81 times in 100 in its backtest (it aims at 80)" in verdict
    assert "no better than “the price stays the same”: read the range, not the line" in verdict

    sharp = _version(AssetFactory(symbol="ETHUSDT"), ModelVersion.Status.CHAMPION, pinball=0.999, mae=9.0)
    verdict = serving_comparison(asset=btc, champion=sharp, newest_version=sharp).verdict
    assert "about as good as the plain statistical range" in verdict
    assert "Its middle line beat “the price stays the same” by 10.0%." in verdict

    rejected = _version(btc, ModelVersion.Status.REJECTED, pinball=1.02, mae=10.0)
    verdict = serving_comparison(asset=btc, champion=None, newest_version=rejected).verdict
    assert verdict == "The plain statistical range serves, because the latest model's range was not better."
    none = serving_comparison(asset=btc, champion=None, newest_version=None).verdict
    assert none.startswith("A statistical range of likely prices serves (no trained model yet)")


# --- past forecasts from the backtest --------------------------------------------------------------------


def test_the_backtest_track_holds_each_origins_band_and_what_followed():
    from forecasting.ml.backtest import Forecasts
    from forecasting.ml.data import Series

    n, horizon = 60, 24
    times = np.arange(n) * 3_600_000
    close = np.linspace(100, 159, n)
    series = Series.from_arrays(
        times=times, open=close, high=close + 1, low=close - 1, close=close, volume=np.ones(n), interval_ms=3_600_000
    )
    idx = np.array([10, 20, 30])
    point = np.tile(np.arange(1, horizon + 1, dtype=float), (3, 1)) + close[idx][:, None]
    quantiles = np.stack([point - 5, point, point + 5], axis=-1)
    out = track(series, idx, {"model": Forecasts(point, quantiles), "naive": Forecasts(point, None)}, horizon=horizon)
    assert out["origin_times"] == [int(t) for t in times[idx]]
    assert out["last_close"] == [float(close[i]) for i in idx]
    assert list(out["steps"]) == [str(k) for k in TRACK_AHEAD]
    six = out["steps"]["6"]
    assert six["actual"] == [float(close[i + 6]) for i in idx]
    assert six["model"][0] == [close[10] + 6 - 5, close[10] + 6, close[10] + 6 + 5]
    assert "naive" not in six  # a point forecast has no band to show


def test_the_asset_page_shows_the_backtests_past_forecasts_until_live_ones_resolve(btc, client, user):
    candles(btc, [100 + i for i in range(48)])
    champion = ModelVersionFactory(
        asset=btc, status=ModelVersion.Status.CHAMPION, hyperparameters={"quantiles": [0.1, 0.5, 0.9]}
    )
    origins = [int((NEWEST - (30 - k) * HOUR).timestamp() * 1000) for k in range(5)]
    BacktestTrack.objects.create(
        version=champion,
        data={
            "origin_times": origins,
            "last_close": [100.0] * 5,
            "steps": {"1": {"actual": [101.0, 99.0, 120.0, 100.0, 100.5], "model": [[99.0, 100.0, 102.0]] * 5}},
        },
    )
    ForecastFactory(asset=btc, model_version=champion, origin_time=NEWEST)  # not resolved: no later candle
    client.force_login(user)
    response = client.get(f"/assets/{btc.symbol}/")
    track_record = response.context["track"]
    assert track_record.backtest_of == (champion, "model")
    assert len(track_record.points) == 5 and track_record.inside == 4  # 120 fell outside the band
    html = " ".join(response.content.decode().split())
    assert 'id="track-backtest"' in html and f"what model v{champion.version} would have said" in html
    assert "The close landed inside the band <strong>4 of 5</strong> times" in html


# --- the asset list ---------------------------------------------------------------------------------------


def test_the_asset_list_shows_price_change_forecast_and_what_serves(db, client, user):
    btc, eth, bnb = (AssetFactory(symbol=s) for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT"))
    candles(btc, [100 + i for i in range(30)])  # +24 over 24 hours
    candles(eth, [200 - i for i in range(30)])  # −24
    candles(bnb, [50] * 30)
    version = ModelVersionFactory(asset=btc, status=ModelVersion.Status.CHAMPION)
    ForecastFactory(asset=btc, model_version=version, origin_time=NEWEST)
    ForecastFactory(asset=eth, origin_time=NEWEST)
    TrainingRun.objects.create(asset=bnb, triggered_by=FIRST_TRAINING)
    with CaptureQueriesContext(connection) as queries:
        rows = assets_overview(sort="-change")
    assert len(queries.captured_queries) == 7
    assert [r.asset.symbol for r in rows] == ["BTCUSDT", "BNBUSDT", "ETHUSDT"]
    assert [r.asset.symbol for r in assets_overview(sort="change")] == ["ETHUSDT", "BNBUSDT", "BTCUSDT"]
    # Without a forecast, last whichever the direction.
    assert [r.asset.symbol for r in assets_overview(sort="-forecast")][-1] == "BNBUSDT"
    assert [r.asset.symbol for r in assets_overview(query="eth")] == ["ETHUSDT"]

    client.force_login(user)
    html = client.get("/assets/", {"sort": "-change"}).content.decode()
    btc_row = html[html.index('data-symbol="BTCUSDT"') : html.index('data-symbol="BNBUSDT"')]
    assert "129.00 USDT" in btc_row and "+24.00 (+22.86%)" in btc_row
    # The forecast's furthest step (the horizon is shorter than a day): median 132 and its band.
    assert "132.00" in btc_row and "80%: 122.00 – 142.50" in btc_row and "model v" in btc_row
    bnb_row = html[html.index('data-symbol="BNBUSDT"') : html.index('data-symbol="ETHUSDT"')]
    assert "no forecast yet" in bnb_row and "training queued" in bnb_row
    assert 'aria-sort="descending" data-sort="change"' in html
    assert "Old prices." in html  # NEWEST is in 2022
    assert 'id="no-match"' in client.get("/assets/", {"q": "doge"}).content.decode()


def test_pages_with_prices_say_how_old_the_newest_candle_is(btc, client, user):
    candles(btc, [100, 101])
    client.force_login(user)
    for url in ("/assets/BTCUSDT/", "/assets/"):
        html = client.get(url).content.decode()
        assert 'id="data-age"' in html and "Old prices." in html, url
        assert f'<time datetime="{NEWEST.isoformat()}">{NEWEST:%Y-%m-%d %H:%M} UTC</time>' in html, url
    fresh = timezone.now().replace(minute=0, second=0, microsecond=0) - HOUR
    candles(btc, [102], newest=fresh)
    # Fresh prices: the age is still said (the list names its one asset), only the warning goes.
    for url in ("/assets/BTCUSDT/", "/assets/"):
        html = client.get(url).content.decode()
        assert 'id="data-age"' in html and "Old prices." not in html, url
        assert f'<time datetime="{fresh.isoformat()}">{fresh:%Y-%m-%d %H:%M} UTC</time>' in html, url
    assert "Newest candle (BTCUSDT):" in " ".join(client.get("/assets/").content.decode().split())


def test_training_progress_is_served_for_the_page_to_poll(btc, client, user):
    client.force_login(user)
    assert client.get("/assets/BTCUSDT/training.json").json() == {"status": None}
    TrainingRun.objects.create(asset=btc, triggered_by="schedule", status="running", epoch=3, max_epochs=40)
    assert client.get("/assets/BTCUSDT/training.json").json() == {
        "status": "running",
        "active": True,
        "epoch": 3,
        "max_epochs": 40,
        "label": "epoch 3 of 40",
    }
    assert client.get("/assets/NOPE/training.json").status_code == 404
