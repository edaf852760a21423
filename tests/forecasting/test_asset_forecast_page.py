"""The asset page's forecast parts through the Django test client: which forecast serves and how it
is labelled, staleness, the champion's backtest beside the baselines, training and empty states,
and past forecasts against the closes that followed (checked against the kline file itself)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from forecasting.models import Forecast, ModelVersion, TrainingRun
from forecasting.selectors.forecasts import forecast_track_record
from forecasting.services.forecasts import forecast_make
from forecasting.services.market_data import asset_track, candles_import_file
from portfolio.services import portfolio_state_rebuild
from tests.factories import ModelVersionFactory

HOUR = timedelta(hours=1)
ROWS = 400  # the newest rows of the real file: no gap among them
HELD_BACK = 10  # rows left out of the "older" file, to move the newest candle on later


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def at(ms_value: int) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, tz=UTC)


@pytest.fixture(scope="module")
def klines(data_dir, tmp_path_factory):
    """The newest rows of BTCUSDT-1h.csv as two files (all of them; all but the last HELD_BACK)
    and, read straight from the text, open time (ms) -> close."""
    lines = (data_dir / "BTCUSDT-1h.csv").read_text().splitlines()
    header, rows = lines[0], lines[-ROWS:]
    folder = tmp_path_factory.mktemp("klines")
    full, older = folder / "full" / "BTCUSDT-1h.csv", folder / "older" / "BTCUSDT-1h.csv"
    for path, part in ((full, rows), (older, rows[:-HELD_BACK])):
        path.parent.mkdir()
        path.write_text("\n".join([header, *part]) + "\n")
    closes = {}
    for row in rows:
        fields = row.split(",")
        closes[int(fields[0])] = fields[4]
    return {"full": full, "older": older, "closes": closes, "times": sorted(closes)}


@pytest.fixture
def btc(db, klines):
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    candles_import_file(asset=asset, path=klines["full"])
    return asset


def page(client, **params) -> str:
    response = client.get("/assets/BTCUSDT/", params)
    assert response.status_code == 200
    return response.content.decode()


def json_script(html: str, element_id: str):
    opening = f'<script id="{element_id}" type="application/json">'
    start = html.index(opening) + len(opening)
    return json.loads(html[start : html.index("</script>", start)])


def text(html: str) -> str:
    """The page's words with tags dropped and white space collapsed, as a person reads them."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", html)))


def add_forecast(
    asset,
    origin: datetime,
    closes: dict,
    *,
    source: str = "baseline",
    version=None,
    horizon: int = 24,
    stale: bool = False,
) -> Forecast:
    """A forecast from `origin`: the median drifts up 0.1% a step from the close at the origin, the
    band is +-0.4% times sqrt(step) around it (wide enough to hold some closes and miss others)."""
    last = Decimal(closes[ms(origin)])
    steps = []
    for k in range(1, horizon + 1):
        m = last * (1 + Decimal("0.001") * k)
        w = last * Decimal("0.004") * Decimal(k).sqrt()
        steps.append(
            {"target_time": (origin + k * HOUR).isoformat(), "values": [f"{m - w:.8f}", f"{m:.8f}", f"{m + w:.8f}"]}
        )
    return Forecast.objects.create(
        asset=asset,
        model_version=version,
        kind=Forecast.Kind.MODEL if version else Forecast.Kind.BASELINE,
        source=source,
        origin_time=origin,
        last_close=last,
        quantiles=[0.1, 0.5, 0.9],
        steps=steps,
        stale=stale,
    )


METRICS = {
    "model": {
        "mae": 123.456,
        "mae_h1": 45.678,
        "mase": 1.01234,
        "directional_accuracy": 0.5234,
        "pinball": 40.1234,
        "coverage": 0.8123,
        "width": 1234.6,
        "band": 0.8,
    },
    "seasonal_band": {
        "mae": 129.0,
        "mae_h1": 47.0,
        "mase": 1.06,
        "directional_accuracy": None,
        "pinball": 41.0,
        "coverage": 0.805,
        "width": 1300.2,
        "band": 0.8,
    },
    "naive": {
        "mae": 130.0,
        "mae_h1": 47.25,
        "mase": 1.06789,
        "directional_accuracy": None,
        "pinball": None,
        "coverage": None,
        "width": None,
    },
    "drift": {
        "mae": 131.5,
        "mae_h1": 47.5,
        "mase": 1.07,
        "directional_accuracy": 0.49,
        "pinball": None,
        "coverage": None,
        "width": None,
    },
    "naive_band": {
        "mae": 130.0,
        "mae_h1": 47.25,
        "mase": 1.06789,
        "directional_accuracy": None,
        "pinball": 44.5,
        "coverage": 0.861,
        "width": 1500.4,
    },
}
# The same numbers as a person reads them in the table, written out by hand.
METRIC_CELLS = {
    "model": ["123.5", "45.68", "1.012", "52.3%", "40.12", "81.2%", "1,235"],
    "seasonal_band": ["129", "47", "1.06", "—", "41", "80.5%", "1,300"],
    "naive": ["130", "47.25", "1.068", "—", "—", "—", "—"],
    "drift": ["131.5", "47.5", "1.07", "49.0%", "—", "—", "—"],
    "naive_band": ["130", "47.25", "1.068", "—", "44.5", "86.1%", "1,500"],
}
METRIC_KEYS = ["mae", "mae_h1", "mase", "directional_accuracy", "pinball", "coverage", "width"]


GATE_PASSED = (
    "Promoted: pinball loss 40.1234 is 2.1% below the statistical band's 41; MAE 123.456 is within "
    "0.5% of the naive forecast's 130."
)


def make_version(
    asset,
    number: int,
    *,
    status=ModelVersion.Status.CHAMPION,
    decision: str = GATE_PASSED,
    metrics: dict | None = None,
    baselines: dict | None = None,
) -> ModelVersion:
    """A version whose backtest ran from 2022-09-11 01:00 to the end of its last candle, 2022-10-11
    00:00: 30 days."""
    return ModelVersionFactory(
        asset=asset,
        version=number,
        status=status,
        data_start=datetime(2021, 10, 11, tzinfo=UTC),
        data_end=datetime(2022, 10, 11, tzinfo=UTC),
        data_candles=8760,
        artifact_sha256="0" * 64,
        metrics=metrics or METRICS["model"],
        baseline_metrics=baselines if baselines is not None else {k: v for k, v in METRICS.items() if k != "model"},
        backtest={
            "origins": 696,
            "horizon": 24,
            "first_origin_time": ms(datetime(2022, 9, 11, 1, tzinfo=UTC)),
            "last_origin_time": ms(datetime(2022, 10, 10, tzinfo=UTC)),
            "test_start": ms(datetime(2022, 9, 11, 1, tzinfo=UTC)),
        },
        decision=decision,
        promoted_at=timezone.now() if status == ModelVersion.Status.CHAMPION else None,
    )


def newest(klines) -> datetime:
    return at(klines["times"][-1])


# --- the forecast serving now ---------------------------------------------------------------------


def test_baseline_forecast_is_drawn_after_the_last_candle_and_labelled_as_the_baseline(signed_in, btc, klines):
    forecast = forecast_make(asset=btc)  # 400 candles: too few for the seasonal band
    assert forecast.kind == Forecast.Kind.BASELINE

    html = page(signed_in)
    words = text(html)
    assert (
        "Forecast from the baseline (naive volatility band: too little history for the statistical band); no model "
        "is trained yet."
    ) in words
    origin = newest(klines)
    assert f"It starts from the candle at {origin:%Y-%m-%d %H:%M} UTC" in words
    assert f"was made {forecast.made_at:%Y-%m-%d %H:%M} UTC" in words
    assert 'id="forecast-stale"' not in html

    data = json_script(html, "forecast-data")
    prices = json_script(html, "price-data")
    assert len(data["points"]) == 24
    # Step k targets the candle k hours after the origin, which is the newest candle drawn.
    assert prices[-1]["t"] == ms(origin)
    assert [p["t"] for p in data["points"]] == [ms(origin + k * HOUR) for k in range(1, 25)]
    assert [[p["lo"], p["m"], p["hi"]] for p in data["points"]] == [s["values"] for s in forecast.steps]
    assert all(Decimal(p["lo"]) < Decimal(p["m"]) < Decimal(p["hi"]) for p in data["points"])
    # The end of the horizon in words: median and band of step 24.
    lo, m, hi = (Decimal(v) for v in forecast.steps[-1]["values"])
    assert (
        f"In 1 day: median {m:,.2f} USDT, and 8 times in 10 the close lands between {lo:,.2f} and {hi:,.2f}."
    ) in words

    # No champion: the model section says which baseline serves, and there is no backtest table.
    assert 'id="no-champion"' in html
    assert "The naive volatility band is served: the history is still too short for the statistical band." in words
    assert 'id="metrics-table"' not in html


def test_with_no_model_trained_the_page_says_the_statistical_band_serves(signed_in, btc, klines):
    add_forecast(btc, newest(klines), klines["closes"])
    words = text(page(signed_in))
    assert "Forecast from the baseline (statistical seasonal band); no model is trained yet." in words
    assert re.search(
        r"The statistical band is served: no model has been trained yet\. The next training starts "
        r"\d{4}-\d\d-\d\d 02:30 UTC\.",
        words,
    ), words
    # A person who is not staff sees when the schedules run next, and is not sent to admin.
    assert re.search(r"Next forecast \d{4}-\d\d-\d\d \d\d:03 UTC; next retraining \d{4}-\d\d-\d\d 02:30 UTC", words), (
        words
    )
    assert "Retrain now" not in words


def test_a_paused_retrain_schedule_is_said_and_no_time_is_promised(signed_in, btc, klines):
    from django_celery_beat.models import PeriodicTask

    add_forecast(btc, newest(klines), klines["closes"])
    PeriodicTask.objects.filter(name="Retrain BTCUSDT").update(enabled=False)
    words = text(page(signed_in))
    assert "retraining is paused" in words and "Scheduled training is paused." in words
    assert "02:30" not in words


def test_champion_forecast_shows_version_backtest_table_and_gate_decision(signed_in, btc, klines):
    origin = newest(klines)
    version = make_version(btc, 3)
    # The baseline made first at the same origin; the champion's forecast replaces it on the page.
    add_forecast(btc, origin, klines["closes"])
    forecast = add_forecast(btc, origin, klines["closes"], source="v3", version=version)

    html = page(signed_in)
    words = text(html)
    assert f"Forecast from model v3, trained {version.created_at:%Y-%m-%d %H:%M} UTC." in words
    assert json_script(html, "forecast-data")["points"][0]["m"] == forecast.steps[0]["values"][1]
    assert 'id="no-champion"' not in html
    assert (
        f"Serving: model v3, trained {version.created_at:%Y-%m-%d %H:%M} UTC on 8760 candles (2021-10-11 to 2022-10-11)"
    ) in words
    assert (
        "Backtest: 696 forecasts, each 24 steps ahead, from origins between 2022-09-11 01:00 and "
        "2022-10-10 00:00 UTC; the baselines are scored on the same origins."
    ) in words
    assert f"Promotion gate: passed: {GATE_PASSED.removeprefix('Promoted: ')}" in words
    # How it compares with the statistical band, from the same backtest.
    assert (
        "Over the last 30 days of its backtest model v3's band was 2.1% sharper than the statistical band "
        "(by pinball loss), at 81.2% coverage against the statistical band's 80.5% (the aim is 80%)."
    ) in words

    table = html[html.index('id="metrics-table"') : html.index("</table>")]
    heads = re.findall(r'<th scope="col">([^<]*)</th>', table)
    assert heads == ["forecast", "MAE", "MAE 1h", "MASE", "direction", "pinball", "80% coverage", "80% width"]
    rows = re.findall(r'<tr data-method="(\w+)"[^>]*><th scope="row">([^<]*)</th>(.*?)</tr>', table)
    assert [(key, label) for key, label, _ in rows] == [
        ("model", "model v3"),
        ("seasonal_band", "statistical baseline (seasonal band)"),
        ("naive", "naive (last price)"),
        ("drift", "drift"),
        ("naive_band", "naive band"),
    ]
    for key, _, cells in rows:
        found = re.findall(r'<td data-metric="(\w+)">([^<]*)</td>', cells)
        assert found == list(zip(METRIC_KEYS, METRIC_CELLS[key])), key


def test_after_a_roll_back_the_baseline_at_the_same_origin_serves_again(signed_in, btc, klines):
    origin = newest(klines)
    version = make_version(btc, 1, status=ModelVersion.Status.RETIRED, decision="")
    add_forecast(btc, origin, klines["closes"])  # made first, yet the one serving with no champion
    add_forecast(btc, origin, klines["closes"], source="v1", version=version)
    words = text(page(signed_in))
    assert "Forecast from the baseline (statistical seasonal band); no model is trained yet." in words
    assert "The statistical band is served: no model is champion (the latest, v1, is retired)." in words
    assert "The newest model, v1 (trained" in words and "is retired." in words


def test_a_retired_version_says_retired_and_when_never_promoted(signed_in, btc, klines):
    """The gate passed v1 once; staff retired it since. The page states what it is now."""
    version = make_version(btc, 1, status=ModelVersion.Status.RETIRED)
    retired_at = datetime(2022, 10, 12, 9, 30, tzinfo=UTC)
    ModelVersion.objects.filter(id=version.id).update(retired_at=retired_at, withdrawn=True)
    add_forecast(btc, newest(klines), klines["closes"])
    words = text(page(signed_in))
    assert "is retired (since 2022-10-12 09:30 UTC, withdrawn by staff)." in words
    assert "Promoted" not in words and "passed" not in words


def test_a_champion_staff_promoted_against_the_gate_says_so(signed_in, btc, klines):
    decision = "Rejected: pinball loss 41.5 is not below the statistical band's 41."
    version = make_version(btc, 2, decision=decision)
    add_forecast(btc, newest(klines), klines["closes"], source="v2", version=version)
    words = text(page(signed_in))
    assert (
        "Promotion gate: rejected, and staff promoted it anyway: pinball loss 41.5 is not below the "
        "statistical band's 41."
    ) in words


@pytest.mark.parametrize("case", ["rolled back to the baseline", "rolled back to v1", "v2 promoted"])
def test_the_asset_page_and_the_portfolio_serve_the_same_forecast(btc, klines, case):
    """One rule for "the latest forecast": the portfolio projection once picked a model's forecast
    over the baseline at one origin (by kind) while the asset page showed the champion's."""
    from forecasting.selectors.forecasts import forecast_latest, forecasts_latest
    from portfolio.models import Portfolio, Transaction
    from portfolio.selectors import portfolio_projection

    origin = newest(klines)
    v1 = make_version(btc, 1, status=ModelVersion.Status.RETIRED, decision="")
    v2 = make_version(btc, 2, status=ModelVersion.Status.RETIRED, decision="")
    made = {
        "baseline": add_forecast(btc, origin, klines["closes"]),
        "v1": add_forecast(btc, origin, klines["closes"], source="v1", version=v1),
        "v2": add_forecast(btc, origin, klines["closes"], source="v2", version=v2),
    }
    # An older origin never wins, whatever made it.
    add_forecast(btc, origin - HOUR, klines["closes"], source="v2", version=v2)
    serving = {"rolled back to the baseline": "baseline", "rolled back to v1": "v1", "v2 promoted": "v2"}[case]
    if serving != "baseline":
        ModelVersion.objects.filter(id=(v1 if serving == "v1" else v2).id).update(status=ModelVersion.Status.CHAMPION)
    expected = made[serving]
    assert forecast_latest(asset=btc) == expected
    assert forecasts_latest(asset_ids=[btc.id]) == {btc.id: expected}
    # The portfolio page's projection values a holding with that same forecast.
    holder = get_user_model().objects.create_user(username="holder", password="a-long-passphrase")
    folio = Portfolio.objects.create(owner=holder, name="Long term")
    Transaction.objects.create(
        portfolio=folio,
        asset=btc,
        kind="buy",
        quantity=Decimal("2"),
        unit_price=Decimal("1"),
        executed_at=origin - 48 * HOUR,
    )
    portfolio_state_rebuild(portfolio=folio)
    values = expected.steps[0]["values"]
    assert portfolio_projection(portfolio=folio)["points"][0]["median"] == 2 * Decimal(values[len(values) // 2])


def test_no_champion_names_the_rejected_newest_version_and_why(signed_in, btc, klines):
    add_forecast(btc, newest(klines), klines["closes"])
    decision = (
        "Rejected: pinball loss 41.5 is not below the statistical band's 41; MAE 123.456 is within 0.5% "
        "of the naive forecast's 130."
    )
    make_version(
        btc, 2, status=ModelVersion.Status.REJECTED, decision=decision, metrics={**METRICS["model"], "pinball": 41.5}
    )
    words = text(page(signed_in))
    assert (
        "The statistical band is served: the latest model, v2, did not beat it. Over the last 30 days of its "
        "backtest its band was 1.2% less sharp than the statistical band (by pinball loss), at 81.2% coverage "
        "against the statistical band's 80.5% (the aim is 80%)."
    ) in words
    assert f"is rejected by the promotion gate: {decision.removeprefix('Rejected: ')}" in words
    assert re.search(r"The next training starts \d{4}-\d\d-\d\d 02:30 UTC\.", words), words


def test_a_champion_backtested_before_the_statistical_band_is_not_compared(signed_in, btc, klines):
    old = {k: v for k, v in METRICS.items() if k not in ("model", "seasonal_band")}
    make_version(btc, 3, baselines=old, decision="Promoted: pinball 40.12 < naive band 44.5.")
    add_forecast(btc, newest(klines), klines["closes"], source="v3", version=ModelVersion.objects.get(version=3))
    html = page(signed_in)
    assert (
        "Model v3 serves; it was backtested before the statistical band was part of the backtest, so the two "
        "were not compared."
    ) in text(html)
    table = html[html.index('id="metrics-table"') : html.index("</table>")]
    assert 'data-method="seasonal_band"' not in table and 'data-method="naive_band"' in table


def test_forecast_from_a_model_past_its_age_is_marked_stale(signed_in, btc, klines):
    version = make_version(btc, 3)
    add_forecast(btc, newest(klines), klines["closes"], source="v3", version=version, stale=True)
    html = page(signed_in)
    assert 'id="forecast-stale"' in html
    words = text(html)
    assert "Stale forecast. The model that made it is more than 72 hours old; a retraining is due." in words
    assert "candles before the newest one" not in words


def test_forecast_several_candles_behind_the_newest_is_marked_stale(signed_in, db, klines):
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    candles_import_file(asset=asset, path=klines["older"])
    forecast_make(asset=asset)
    assert 'id="forecast-stale"' not in page(signed_in)  # fresh: from the newest candle

    candles_import_file(asset=asset, path=klines["full"])  # ten newer candles arrive, no new forecast
    html = page(signed_in)
    assert 'id="forecast-stale"' in html
    assert (f"It starts {HELD_BACK} candles before the newest one: the forecast schedule has not run since.") in text(
        html
    )
    assert "hours old" not in html


def test_three_candles_behind_is_not_yet_stale_four_is(signed_in, btc, klines):
    three_behind = add_forecast(btc, newest(klines) - 3 * HOUR, klines["closes"])
    assert 'id="forecast-stale"' not in page(signed_in)
    three_behind.delete()
    add_forecast(btc, newest(klines) - 4 * HOUR, klines["closes"])
    assert "It starts 4 candles before the newest one" in text(page(signed_in))


# --- empty and in-progress states -----------------------------------------------------------------


def test_no_forecast_yet_says_when_one_comes(signed_in, btc, user):
    html = page(signed_in)
    words = text(html)
    assert 'id="no-forecast"' in html
    assert (
        "No forecast yet for BTCUSDT. One is made a few minutes after each 1h candle closes "
        "(the “Forecast BTCUSDT” schedule) and after every training."
    ) in words
    assert "Retrain now" not in words  # only staff can start one
    assert 'id="forecast-data"' not in html
    # The price chart is still there, and the past-forecast section says why it is empty.
    assert 'id="price-chart"' in html
    assert 'id="no-track"' in html and 'id="track-chart"' not in html
    assert "a longer range shows older ones" in text(html)
    # On "all" there is no longer range to try: the page does not suggest one.
    everything = text(page(signed_in, range="all"))
    assert "No forecast has reached its candle 1 hour ahead yet" in everything
    assert "longer range" not in everything

    user.is_staff = True
    user.save()
    html = page(signed_in)
    assert "Staff can start a training with “Retrain now” in" in text(html)
    assert 'href="/admin/forecasting/asset/"' in html


def test_running_training_shows_its_epoch(signed_in, btc):
    TrainingRun.objects.create(
        asset=btc, triggered_by="schedule", status=TrainingRun.Status.SUCCEEDED, epoch=40, max_epochs=40
    )
    assert 'id="training-status"' not in page(signed_in)  # a finished run is no news

    run = TrainingRun.objects.create(
        asset=btc,
        triggered_by="schedule",
        status=TrainingRun.Status.RUNNING,
        started_at=timezone.now(),
        epoch=5,
        max_epochs=40,
    )
    html = page(signed_in)
    words = text(html)
    assert 'id="training-status"' in html
    assert f"Training in progress: epoch 5 of 40, started {run.started_at:%Y-%m-%d %H:%M} UTC." in words
    assert '<progress id="training-progress" max="40" value="5">' in html


def test_queued_training_says_it_waits_for_a_worker(signed_in, btc):
    run = TrainingRun.objects.create(asset=btc, triggered_by="alice")
    words = text(page(signed_in))
    assert (
        f"Training queued (asked by alice at {run.created_at:%Y-%m-%d %H:%M} UTC): waiting for a training worker."
    ) in words


def test_failed_training_is_reported(signed_in, btc):
    TrainingRun.objects.create(
        asset=btc, triggered_by="schedule", status=TrainingRun.Status.FAILED, error="BTCUSDT has no candles yet"
    )
    html = page(signed_in)
    assert 'id="training-status"' not in html
    assert "failed: BTCUSDT has no candles yet" in text(html)


# --- past forecasts against what happened ----------------------------------------------------------


def expected_pairs(origins: list[datetime], closes: dict, ahead: int) -> list[dict]:
    """Straight from the kline text: each origin's `ahead`-step median and band (as add_forecast
    builds them) beside the close of the candle opening `ahead` hours later, if there is one."""
    out = []
    for origin in origins:
        target = ms(origin + ahead * HOUR)
        if target not in closes:
            continue
        last = Decimal(closes[ms(origin)])
        m = last * (1 + Decimal("0.001") * ahead)
        w = last * Decimal("0.004") * Decimal(ahead).sqrt()
        out.append(
            {
                "t": target,
                "origin": ms(origin),
                "m": Decimal(f"{m:.8f}"),
                "lo": Decimal(f"{m - w:.8f}"),
                "hi": Decimal(f"{m + w:.8f}"),
                "a": Decimal(closes[target]),
            }
        )
    return out


@pytest.mark.parametrize("ahead", [1, 6, 24])
def test_track_record_pairs_each_forecast_with_the_close_that_followed(btc, klines, ahead):
    closes, times = klines["closes"], klines["times"]
    origins = [at(t) for t in times[-60:]]  # the newest `ahead` of them have no candle to meet yet
    for origin in origins:
        add_forecast(btc, origin, closes)
    # A second forecast at one origin: the one made last counts, once.
    twin = add_forecast(btc, origins[10], closes, source="v1")
    twin.steps = [{**s, "values": [str(Decimal(v) + 1) for v in s["values"]]} for s in twin.steps]
    twin.save()

    record = forecast_track_record(asset=btc, ahead=ahead)
    expected = expected_pairs(origins, closes, ahead)
    expected[10] = {**expected[10], **{k: expected[10][k] + 1 for k in ("m", "lo", "hi")}}
    assert len(expected) == 60 - ahead
    got = [
        {"t": p["t"], "origin": p["origin"], **{k: Decimal(p[k]) for k in ("m", "lo", "hi", "a")}}
        for p in record.points
    ]
    assert got == expected
    assert record.forecasts == 60 and record.unresolved == ahead
    inside = sum(p["lo"] <= p["a"] <= p["hi"] for p in expected)
    assert record.inside == inside
    assert 0 < inside < len(expected)  # the check means something: some inside, some not
    assert record.coverage == inside / len(expected)
    assert record.band == 0.8
    assert record.mae == sum(abs(p["m"] - p["a"]) for p in expected) / len(expected)
    lasts = {p["origin"]: Decimal(closes[p["origin"]]) for p in expected}
    assert record.naive_mae == sum(abs(lasts[p["origin"]] - p["a"]) for p in expected) / len(expected)


def test_track_record_reads_only_the_range_and_at_most_the_limit(btc, klines):
    closes, times = klines["closes"], klines["times"]
    for t in times[-100:-1]:
        add_forecast(btc, at(t), closes)
    since = at(times[-1]) - 24 * HOUR
    record = forecast_track_record(asset=btc, since=since)
    assert [p["origin"] for p in record.points] == [t for t in times[-100:-1] if at(t) > since]
    assert not record.limited

    record = forecast_track_record(asset=btc, limit=30)
    assert [p["origin"] for p in record.points] == times[-31:-1]  # the newest 30
    assert record.limited


def test_forecasts_with_a_shorter_horizon_are_left_out_of_further_steps(btc, klines):
    closes, times = klines["closes"], klines["times"]
    add_forecast(btc, at(times[-50]), closes, horizon=6)
    add_forecast(btc, at(times[-40]), closes, horizon=24)
    assert len(forecast_track_record(asset=btc, ahead=6).points) == 2
    record = forecast_track_record(asset=btc, ahead=12)
    assert [p["origin"] for p in record.points] == [times[-40]]


def test_page_shows_the_track_record_for_the_chosen_steps_ahead(signed_in, btc, klines):
    closes, times = klines["closes"], klines["times"]
    origins = [at(t) for t in times[-48:]]
    for origin in origins:
        add_forecast(btc, origin, closes)

    html = page(signed_in, range="7d")
    data = json_script(html, "track-data")
    expected = expected_pairs(origins, closes, 1)
    assert [(p["t"], Decimal(p["a"]), Decimal(p["m"])) for p in data] == [(p["t"], p["a"], p["m"]) for p in expected]
    inside = sum(p["lo"] <= p["a"] <= p["hi"] for p in expected)
    words = text(html)
    assert (
        "What each forecast said 1 hour ahead (median and 80% band) against the close that followed, "
        "for the 47 forecasts"
    ) in words
    assert f"The close landed inside the band {inside} of 47 times ({inside / 47:.1%}; the aim is 80.0%)." in words
    assert "1 more awaits its candle." in words
    assert 'data-ahead="1" aria-current="true"' in html

    html = page(signed_in, range="7d", ahead="6")
    assert [p["t"] for p in json_script(html, "track-data")] == [p["t"] for p in expected_pairs(origins, closes, 6)]
    assert 'data-ahead="6" aria-current="true"' in html
    assert "said 6 hours ahead" in text(html)
    assert "6 more await their candle." in text(html)
    # The price range links keep the chosen steps ahead, and the step links keep the range.
    assert 'href="?range=30d&amp;ahead=6"' in html
    assert 'href="?range=7d&amp;ahead=24#track"' in html

    # Steps beyond the forecasts' horizon, or nonsense, fall back to 1.
    for bad in ("48", "x", "0"):
        assert 'data-ahead="1" aria-current="true"' in page(signed_in, range="7d", ahead=bad)


def test_page_query_count_does_not_grow_with_stored_forecasts(signed_in, btc, klines):
    closes, times = klines["closes"], klines["times"]
    version = make_version(btc, 1)
    TrainingRun.objects.create(
        asset=btc, triggered_by="schedule", status=TrainingRun.Status.RUNNING, epoch=3, max_epochs=40
    )

    def count(n: int) -> tuple[int, int]:
        Forecast.objects.all().delete()
        for t in times[-n:]:
            add_forecast(btc, at(t), closes, source="v1", version=version)
        with CaptureQueriesContext(connection) as queries:
            html = page(signed_in)
        assert 'id="forecast-data"' in html and 'id="metrics-table"' in html
        return len(queries), len(json_script(html, "track-data"))

    few, few_points = count(5)
    many, many_points = count(100)
    assert (few_points, many_points) == (4, 99)
    assert few == many


def test_the_page_reads_the_newest_candle_once(signed_in, btc, klines):
    # The price headline and the chart both start from the newest candle: one query finds it.
    with CaptureQueriesContext(connection) as queries:
        html = page(signed_in)
    assert 'id="price-data"' in html
    newest = [q["sql"] for q in queries if 'MAX("forecasting_candle"."open_time")' in q["sql"]]
    assert len(newest) == 1, newest
