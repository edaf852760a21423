"""Training registry, promotion gate, artifacts and forecasts on real BTCUSDT candles."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import threading
from collections import OrderedDict
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from forecasting.ml.backtest import backtest, naive_band_forecast
from forecasting.ml.data import Series
from forecasting.ml.seasonal import fit_seasonal_band
from forecasting.ml.train import TrainConfig, split_points, train
from forecasting.models import Forecast, ModelVersion, StoredFile, TrainingRun
from forecasting.selectors.market_data import candle_series
from forecasting.services.artifacts import ArtifactError
from forecasting.services.forecasts import FORECAST_CANDLES, forecast_make
from forecasting.services.market_data import asset_track, candles_import_file
from forecasting.services.model_versions import (
    gate_decision,
    model_version_load,
    model_version_promote,
    model_version_register,
)
from forecasting.services.training_runs import (
    train_config,
    training_run_claim,
    training_run_execute,
    training_run_request,
    training_runs_reap,
)

YEAR = 365 * 24


@pytest.fixture(scope="module")
def btc_year_file(data_dir, tmp_path_factory):
    """The last year of real BTCUSDT 1h candles, as a kline file in a temp folder."""
    df = pd.read_csv(data_dir / "BTCUSDT-1h.csv", dtype=str).tail(YEAR)
    path = tmp_path_factory.mktemp("klines") / "BTCUSDT-1h.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def band_widths(btc_year_file):
    """A trained model with its band adaptation off, and the backtest of each fixed width change.

    What the gate does with a real model trained on a year is a matter of the month
    (bench/forecast_grid.py measures it over many); these tests need models whose place against
    the seasonal band is known. With adaptation on, a fixed width change would be undone within
    days, before the backtest starts."""
    df = pd.read_csv(btc_year_file)
    series = Series.from_arrays(
        times=df.open_time,
        open=df.open,
        high=df.high,
        low=df.low,
        close=df.close,
        volume=df.volume,
        interval_ms=3_600_000,
    )
    _, test_start = split_points(len(series), test_steps=720, val_steps=720)
    model = dataclasses.replace(train(series, TrainConfig(threads=1), train_end=test_start), aci_rate=0.0)
    shifts = np.round(np.linspace(-0.6, 2.4, 61), 3)
    return model, {float(d): backtest(widened(model, d), series, test_start=test_start)["methods"] for d in shifts}


@pytest.fixture(scope="module")
def good_model(band_widths):
    """The width that scores best on the backtest month, in hindsight: better than the seasonal band."""
    model, scored = band_widths
    best = min(scored, key=lambda d: scored[d]["model"]["pinball"])
    return widened(model, best)


@pytest.fixture(scope="module")
def between_bands_model(band_widths):
    """Wider than the best width until it no longer beats the seasonal band, yet still beats the
    naive band: the one the seasonal band keeps out."""
    model, scored = band_widths
    best = min(scored, key=lambda d: scored[d]["model"]["pinball"])
    for d in sorted(d for d in scored if d > best):
        m = scored[d]
        if m["seasonal_band"]["pinball"] <= m["model"]["pinball"] < m["naive_band"]["pinball"]:
            return widened(model, d)
    raise AssertionError("no width lies between the seasonal and the naive band on this month")


def widened(model, by: float):
    """The same model with its 80% band `by` scaled units wider at every step: worse pinball."""
    other = copy.copy(model)
    other.calibration = model.calibration + by
    return other


@pytest.fixture
def btc(db, btc_year_file):
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    candles_import_file(asset=asset, path=btc_year_file)
    return asset


def register(asset, model):
    series, digest = candle_series(asset=asset, days=365)
    _, test_start = split_points(len(series), test_steps=720, val_steps=720)
    run = TrainingRun.objects.create(asset=asset, triggered_by="test")
    run = training_run_claim(run_id=run.id, worker="test")
    version = model_version_register(run=run, model=model, series=series, digest=digest, test_start=test_start)
    version.refresh_from_db()
    return version


def champion(asset):
    return ModelVersion.objects.filter(asset=asset, status=ModelVersion.Status.CHAMPION).first()


def test_gate_promotes_only_a_model_that_beats_the_seasonal_band_and_the_champion(
    btc, good_model, between_bands_model, django_capture_on_commit_callbacks
):
    # No champion yet: the baseline serves, labelled as such.
    first = forecast_make(asset=btc)
    assert first.kind == Forecast.Kind.BASELINE and first.model_version is None and first.source == "baseline"

    # A band wide enough to lose to the seasonal band, yet still better than the naive band: the
    # seasonal band is the one to beat, so it is kept as rejected.
    bad = register(btc, between_bands_model)
    assert bad.status == ModelVersion.Status.REJECTED and bad.version == 1
    pinball = bad.metrics["pinball"]
    assert bad.baseline_metrics["seasonal_band"]["pinball"] <= pinball < bad.baseline_metrics["naive_band"]["pinball"]
    assert bad.metrics["mae"] <= bad.baseline_metrics["naive"]["mae"] * 1.005  # only the band failed
    assert re.search(r"pinball loss [\d.]+ is not below the statistical band's [\d.]+", bad.decision)
    assert champion(btc) is None

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        good = register(btc, good_model)
    assert good.status == ModelVersion.Status.CHAMPION and good.version == 2, good.decision
    assert good.metrics["pinball"] < good.baseline_metrics["seasonal_band"]["pinball"]
    assert good.metrics["pinball"] < good.baseline_metrics["naive_band"]["pinball"]
    assert good.metrics["mae"] <= good.baseline_metrics["naive"]["mae"] * 1.005
    assert good.decision.startswith("Promoted: pinball loss ") and "below the statistical band's" in good.decision
    assert callbacks, "a promotion enqueues a forecast"
    # The version records what it was trained on and a complete, checksummed artifact.
    series, digest = candle_series(asset=btc, days=365)
    assert good.data_digest == digest and good.data_candles == len(series) == YEAR
    data = default_storage.open(good.artifact.name).read()
    assert hashlib.sha256(data).hexdigest() == good.artifact_sha256 and len(data) == good.artifact_size
    assert set(good.baseline_metrics) == {"seasonal_band", "naive", "drift", "naive_band"}
    assert good.hyperparameters["horizon"] == 24 and good.hyperparameters["quantiles"] == [0.1, 0.5, 0.9]

    # Slightly worse than the champion on the same backtest: rejected, champion unchanged.
    worse = register(btc, widened(good_model, 0.3))
    assert worse.status == ModelVersion.Status.REJECTED
    assert worse.baseline_metrics["champion"]["version"] == good.version
    assert worse.metrics["pinball"] >= worse.baseline_metrics["champion"]["pinball"]
    assert f"pinball loss is not below champion v{good.version}'s" in worse.decision
    assert champion(btc) == good

    served = forecast_make(asset=btc)
    assert served.kind == Forecast.Kind.MODEL and served.model_version == good and served.source == "v2"
    assert len(served.steps) == 24 and served.quantiles == [0.1, 0.5, 0.9]
    last_open = series.times[-1]
    assert served.origin_time == timezone.datetime.fromtimestamp(last_open / 1000, tz=timezone.get_fixed_timezone(0))
    for i, step in enumerate(served.steps, start=1):
        lo, mid, hi = (float(v) for v in step["values"])
        assert lo <= mid <= hi
        assert pd.Timestamp(step["target_time"]).value // 10**6 == last_open + i * 3_600_000
    assert not served.stale
    # Idempotent: the same origin and source give the same row.
    assert forecast_make(asset=btc).id == served.id


# Backtest metrics as gate_decision reads them: the seasonal band beats the naive band, as it does
# on real candles, so a model can fall between the two.
GATE_BASELINES = {"naive": {"mae": 100.0}, "naive_band": {"pinball": 50.0}, "seasonal_band": {"pinball": 48.0}}


def test_gate_rejects_a_model_that_beats_the_naive_band_but_not_the_seasonal_band():
    ok, reasons = gate_decision(metrics={"pinball": 49.0, "mae": 99.0}, baselines=GATE_BASELINES, champion=None)
    assert not ok
    assert reasons == [
        "pinball loss 49 is not below the statistical band's 48",
        "MAE 99 is within 0.5% of the naive forecast's 100",
    ]


def test_gate_promotes_a_model_that_beats_the_seasonal_band_and_the_champion():
    ok, reasons = gate_decision(
        metrics={"pinball": 47.0, "mae": 100.4}, baselines=GATE_BASELINES, champion={"pinball": 47.5, "version": 3}
    )
    assert ok
    assert reasons == [
        "pinball loss 47 is 2.1% below the statistical band's 48",
        "MAE 100.4 is within 0.5% of the naive forecast's 100",
        "pinball loss is below champion v3's 47.5",
    ]


def test_gate_numbers_read_as_the_tables_round_them_yet_never_tie():
    baselines = {"naive": {"mae": 25.62914}, "seasonal_band": {"pinball": 8.734681}}
    _, reasons = gate_decision(metrics={"pinball": 8.712053, "mae": 25.629139}, baselines=baselines, champion=None)
    # Four significant digits, as the metrics tables show them (also for values six digits cannot part).
    assert reasons == [
        "pinball loss 8.712 is 0.3% below the statistical band's 8.735",
        "MAE 25.63 is within 0.5% of the naive forecast's 25.63",
    ]
    # Two different values never read the same: as many more digits as that takes.
    _, reasons = gate_decision(
        metrics={"pinball": 8.7346, "mae": 25.0}, baselines=baselines, champion={"pinball": 8.7, "version": 2}
    )
    # A gain too small for one decimal is not written as none.
    assert reasons[0] == "pinball loss 8.7346 is less than 0.1% below the statistical band's 8.7347"
    assert reasons[2] == "pinball loss is not below champion v2's 8.7"


@pytest.mark.parametrize(
    "metrics, champion, reason",
    [
        ({"pinball": 47.0, "mae": 100.6}, None, "MAE 100.6 is more than 0.5% above the naive forecast's 100"),
        ({"pinball": 47.0, "mae": 99.0}, {"pinball": 46.0, "version": 3}, "pinball loss is not below champion v3's 46"),
    ],
)
def test_gate_rejects_a_model_that_fails_any_one_condition(metrics, champion, reason):
    ok, reasons = gate_decision(metrics=metrics, baselines=GATE_BASELINES, champion=champion)
    assert not ok and reason in reasons


@pytest.mark.parametrize("storage", ["database", "files"])
def test_corrupted_champion_artifact_is_refused_and_the_previous_champion_serves(
    btc, good_model, storage, settings, tmp_path
):
    if storage == "files":
        settings.MEDIA_ROOT = tmp_path
        settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}
    older = register(btc, good_model)
    newer = register(btc, widened(good_model, 0.0))
    model_version_promote(version=older)
    model_version_promote(version=newer)
    assert champion(btc) == newer
    raw = bytearray(default_storage.open(newer.artifact.name).read())
    raw[len(raw) // 2] ^= 0xFF
    if storage == "files":
        with open(default_storage.path(newer.artifact.name), "wb") as f:
            f.write(bytes(raw))
    else:
        # Nothing on disk: the artifact is a row every process reads.
        assert not list(tmp_path.iterdir())
        assert StoredFile.objects.filter(name=newer.artifact.name).update(data=bytes(raw)) == 1

    with pytest.raises(ArtifactError, match="checksum"):
        model_version_load(newer)
    newer.refresh_from_db()
    assert "checksum mismatch" in newer.artifact_broken
    assert newer.status == ModelVersion.Status.RETIRED
    assert champion(btc) == older
    forecast = forecast_make(asset=btc)
    assert forecast.model_version == older and forecast.source == f"v{older.version}"
    # A broken version cannot be promoted again.
    from forecasting.services.model_versions import ModelVersionError

    with pytest.raises(ModelVersionError):
        model_version_promote(version=newer)


@pytest.fixture
def parses(monkeypatch):
    """Counts the models read back from artifact bytes, with none kept from earlier tests."""
    from forecasting.ml.train import TrainedModel
    from forecasting.services import model_versions

    monkeypatch.setattr(model_versions, "_loaded", OrderedDict(), raising=False)
    counted, parse = [], TrainedModel.from_bytes.__func__
    monkeypatch.setattr(
        TrainedModel, "from_bytes", classmethod(lambda cls, data: counted.append(1) or parse(cls, data))
    )
    return counted


def test_a_champion_is_parsed_once_per_process_yet_verified_on_every_load(btc, good_model, parses):
    version = register(btc, good_model)
    assert version.status == ModelVersion.Status.CHAMPION
    first = forecast_make(asset=btc)
    Forecast.objects.all().delete()
    second = forecast_make(asset=btc)
    assert len(parses) == 1
    # The kept model forecasts exactly as the one parsed afresh did: forecasting changed nothing in it.
    assert second.source == first.source and second.steps == first.steps

    raw = bytearray(default_storage.open(version.artifact.name).read())
    raw[len(raw) // 2] ^= 0xFF
    assert StoredFile.objects.filter(name=version.artifact.name).update(data=bytes(raw)) == 1
    with pytest.raises(ArtifactError, match="checksum"):
        model_version_load(version)
    version.refresh_from_db()
    assert "checksum mismatch" in version.artifact_broken
    assert forecast_make(asset=btc).kind == Forecast.Kind.BASELINE


def test_the_models_kept_are_bounded_and_the_least_recently_used_goes_first(btc, good_model, parses, monkeypatch):
    from forecasting.services import model_versions

    monkeypatch.setattr(model_versions, "LOADED_MODELS_KEPT", 1, raising=False)
    older = register(btc, good_model)
    newer = register(btc, widened(good_model, 0.5))
    assert older.artifact_sha256 != newer.artifact_sha256
    model_version_load(older)
    model_version_load(older)
    assert len(parses) == 1
    model_version_load(newer)
    assert list(model_versions._loaded) == [newer.artifact_sha256]
    model_version_load(older)
    assert len(parses) == 3


def test_forecast_from_an_expired_model_is_marked_stale(btc, good_model, settings):
    version = register(btc, good_model)
    assert version.status == ModelVersion.Status.CHAMPION
    settings.MODEL_MAX_AGE_HOURS = 1
    ModelVersion.objects.filter(id=version.id).update(created_at=timezone.now() - timedelta(hours=2))
    assert forecast_make(asset=btc).stale is True


@pytest.mark.parametrize("ensemble", [1, 2])
def test_training_run_end_to_end_records_progress_and_a_version(btc, settings, ensemble):
    settings.TRAIN_MAX_EPOCHS, settings.TRAIN_ENSEMBLE = 3, ensemble
    seen = []
    run = TrainingRun.objects.create(asset=btc, triggered_by="test")
    version = training_run_execute(run_id=run.id, worker="w1", on_progress=lambda e, n: seen.append((e, n)))
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.SUCCEEDED and run.error == ""
    # All LSTMs count on one bar: each goes on where the one before stopped.
    epochs = 3 * ensemble
    assert seen == [(e, epochs) for e in range(1, epochs + 1)] and (run.epoch, run.max_epochs) == (epochs, epochs)
    assert version.hyperparameters["ensemble"] == ensemble and version.hyperparameters["max_epochs"] == 3
    assert run.started_at <= run.finished_at and run.duration is not None and run.worker == "w1"
    assert version.training_run == run and version.status in (
        ModelVersion.Status.CHAMPION,
        ModelVersion.Status.REJECTED,
    )
    # The backtest's forecasts are kept for the asset page, one per origin, beside the closes.
    track = version.backtest_track.data
    assert len(track["origin_times"]) == version.backtest["origins"]
    assert len(track["steps"]["24"]["model"]) == len(track["steps"]["24"]["seasonal_band"]) == len(track["last_close"])
    # A second execution of the same run does nothing (it is not queued any more).
    assert training_run_execute(run_id=run.id) is None
    assert ModelVersion.objects.filter(asset=btc).count() == 1


def test_training_with_too_little_history_fails_with_a_clear_error(db, data_dir, tmp_path):
    from tests.support.processes import write_klines

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    path = tmp_path / "BTCUSDT-1h.csv"
    write_klines(path, data_dir / "BTCUSDT-1h.csv", rows=500)
    candles_import_file(asset=asset, path=path)
    run = TrainingRun.objects.create(asset=asset, triggered_by="test")
    assert training_run_execute(run_id=run.id) is None
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "too little history" in run.error
    assert not ModelVersion.objects.exists()


def test_request_is_idempotent_and_reaper_fails_only_lost_runs(btc, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        first = training_run_request(asset=btc, triggered_by="admin:alice")
        again = training_run_request(asset=btc, triggered_by="schedule")
    assert first == again and len(callbacks) == 1
    assert TrainingRun.objects.filter(asset=btc).count() == 1

    claimed = training_run_claim(run_id=first.id, worker="w1")
    assert claimed.status == TrainingRun.Status.RUNNING
    assert training_runs_reap() == 0  # fresh heartbeat
    later = timezone.now() + timedelta(seconds=settings.TRAINING_HEARTBEAT_TIMEOUT + 1)
    assert training_runs_reap(now=later) == 1
    first.refresh_from_db()
    assert first.status == TrainingRun.Status.FAILED and "worker was lost" in first.error


def test_train_asset_command_prints_the_backtest_table(btc, settings, capsys):
    settings.TRAIN_MAX_EPOCHS = 2
    call_command("train_asset", "btcusdt")
    out = capsys.readouterr().out
    for row in ("model v1", "naive (last price)", "drift", "naive band"):
        assert f"\n{row} " in out
    assert "pinball" in out and "80% coverage" in out and "Forecast from" in out


@pytest.mark.parametrize("epochs", ["0", "-3", "many"])
def test_train_asset_command_refuses_a_bad_epoch_cap_before_starting_a_run(btc, epochs):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--max-epochs: must be a whole number of at least 1"):
        call_command("train_asset", "btcusdt", "--max-epochs", epochs)
    assert not TrainingRun.objects.exists()


def test_train_asset_command_refuses_an_untracked_symbol(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not tracked"):
        call_command("train_asset", "NOPEUSDT")


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_postgres_let_exactly_one_worker_train(on_postgres, btc_year_file):
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    run = TrainingRun.objects.create(asset=asset, triggered_by="test")
    results, barrier = [], threading.Barrier(4)

    def claim(name):
        barrier.wait()
        try:
            results.append(training_run_claim(run_id=run.id, worker=name))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(results) == 4 and len(winners) == 1

    # A second queued run of the same asset cannot run beside it: the database refuses it.
    other = TrainingRun.objects.create(asset=asset, triggered_by="test")
    assert training_run_claim(run_id=other.id, worker="w9") is None
    other.refresh_from_db()
    assert other.status == TrainingRun.Status.FAILED and "already running" in other.error
    assert TrainingRun.objects.filter(asset=asset, status=TrainingRun.Status.RUNNING).count() == 1


def step_values(out: dict) -> list[list[str]]:
    """A forecast's prices as forecast_make stores them: decimal strings with 8 places."""
    return [[f"{float(np.round(v, 8)):.8f}" for v in values] for values in out["prices"]]


def test_with_no_champion_the_seasonal_band_serves_fitted_as_the_backtest_fits_it(btc, settings):
    forecast = forecast_make(asset=btc)
    assert (forecast.kind, forecast.source, forecast.model_version) == (Forecast.Kind.BASELINE, "baseline", None)

    # By hand, on the same candles: fitted on all but the backtest month, which its adaptive
    # updates then cover, and forecast from the newest candle.
    series, _ = candle_series(asset=btc, days=settings.TRAIN_DAYS)
    band = fit_seasonal_band(series, train_config(btc), train_end=len(series) - 720)
    expected = band.forecast(series)
    assert [step["values"] for step in forecast.steps] == step_values(expected)
    assert forecast.quantiles == [0.1, 0.5, 0.9] and len(forecast.steps) == 24
    assert forecast.origin_time.timestamp() * 1000 == expected["origin_time"] == series.times[-1]
    # Not the naive band it replaced.
    naive = naive_band_forecast(series.tail(FORECAST_CANDLES), horizon=24, levels=(0.1, 0.5, 0.9))
    assert step_values(naive) != step_values(expected)


def test_with_too_little_history_for_the_seasonal_band_the_naive_band_serves(db, data_dir, tmp_path):
    from tests.support.processes import write_klines

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    path = tmp_path / "BTCUSDT-1h.csv"
    write_klines(path, data_dir / "BTCUSDT-1h.csv", rows=1000)
    candles_import_file(asset=asset, path=path)
    forecast = forecast_make(asset=asset)
    assert (forecast.kind, forecast.source) == (Forecast.Kind.BASELINE, Forecast.NAIVE_SOURCE)
    series, _ = candle_series(asset=asset, limit=FORECAST_CANDLES)
    naive = naive_band_forecast(series, horizon=24, levels=(0.1, 0.5, 0.9))
    assert [step["values"] for step in forecast.steps] == step_values(naive)


def test_quantiles_in_price_space_are_decimal_strings(btc, good_model):
    register(btc, good_model)
    forecast = forecast_make(asset=btc)
    for step in forecast.steps:
        for value in step["values"]:
            assert isinstance(value, str) and len(value.split(".")[1]) == 8
    assert np.isfinite(float(forecast.last_close))


def _version(asset, n):
    return ModelVersion.objects.create(
        asset=asset,
        version=n,
        data_start=timezone.now(),
        data_end=timezone.now(),
        data_digest="d" * 64,
        artifact=f"models/{asset.symbol}/v{n}.pt",
        artifact_sha256="a" * 64,
    )


def test_each_rollback_goes_one_champion_further_back_and_withdrawn_versions_stay_out(db):
    from forecasting.services.model_versions import ModelVersionError, model_version_retire, model_version_rollback

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    v1, v2, v3 = (_version(asset, n) for n in (1, 2, 3))
    for v in (v1, v2, v3):
        model_version_promote(version=v)
    assert champion(asset) == v3
    assert model_version_rollback(asset=asset) == v2
    assert model_version_rollback(asset=asset) == v1  # not back to v3
    # Nothing earlier than v1: the only model stays unless the caller accepts the baseline.
    with pytest.raises(ModelVersionError, match="BTCUSDT v1 has no earlier version to roll back to"):
        model_version_rollback(asset=asset)
    assert champion(asset) == v1
    assert model_version_rollback(asset=asset, to_baseline=True) is None and champion(asset) is None

    # Staff withdraw v2: when v3's successor is rolled back, v2 is skipped.
    model_version_promote(version=v2)
    model_version_promote(version=v3)
    model_version_retire(version=v1)
    v4 = _version(asset, 4)
    model_version_promote(version=v4)
    model_version_retire(version=v3)  # v4 replaced v3, v3 is withdrawn: back to what v3 replaced
    assert champion(asset) == v4
    model_version_retire(version=v4)
    assert champion(asset) == v2
    model_version_retire(version=v2)  # v2 replaced v1, which staff withdrew
    assert champion(asset) is None
    assert ModelVersion.objects.filter(asset=asset, status="champion").count() == 0


def test_retire_and_promote_act_on_the_stored_state_not_a_stale_copy(db):
    from forecasting.services.model_versions import ModelVersionError, model_version_retire

    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    v1, v2 = _version(asset, 1), _version(asset, 2)
    model_version_promote(version=v1)
    stale_copy = ModelVersion.objects.get(id=v2.id)
    model_version_promote(version=v2)
    model_version_retire(version=stale_copy)  # the copy still says "candidate"
    assert champion(asset) == v1  # v2 was champion: it handed back to v1
    ModelVersion.objects.filter(id=v2.id).update(artifact_broken="checksum mismatch")
    with pytest.raises(ModelVersionError, match="broken"):
        model_version_promote(version=stale_copy)
    assert champion(asset) == v1
