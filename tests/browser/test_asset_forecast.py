"""The asset page's forecast charts in headless Chromium: the newest forecast's median and 80% band
are drawn after the last candle, past forecasts are drawn against the closes that followed, and the
forecast parts fit a phone screen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.formatting import price_text
from forecasting.models import Forecast, ModelVersion, TrainingRun

pytestmark = pytest.mark.browser

HOUR_MS = 3_600_000
ROWS = 1000  # the newest rows of the real file: no gap among them
PAST = 48  # forecasts from the 48 candles before the newest one, all met by their next candle
BAND_RGB = (234, 88, 12)  # the band's and median's colour in asset_detail.js
INK_RGB = (17, 24, 39)  # the "close that happened" line in the past-forecast chart


@pytest.fixture
def btc_forecasts(transactional_db, data_dir, tmp_path):
    """BTCUSDT with its newest 1,000 hourly candles, the baseline forecast from the newest one
    (as the schedule makes it) and PAST earlier forecasts written directly."""
    from forecasting.services.forecasts import forecast_make
    from forecasting.services.market_data import asset_track, candles_import_file

    lines = (data_dir / "BTCUSDT-1h.csv").read_text().splitlines()
    path = tmp_path / "BTCUSDT-1h.csv"
    path.write_text("\n".join([lines[0], *lines[-ROWS:]]) + "\n")
    asset = asset_track(symbol="BTCUSDT", interval="1h", base_asset="BTC", quote_asset="USDT")
    assert candles_import_file(asset=asset, path=path).created == ROWS
    closes = {int(row.split(",")[0]): Decimal(row.split(",")[4]) for row in lines[-ROWS:]}
    times = sorted(closes)
    for t in times[-PAST - 1 : -1]:
        origin = datetime.fromtimestamp(t / 1000, tz=UTC)
        last = closes[t]
        steps = []
        for k in range(1, 25):
            w = last * Decimal("0.004") * k
            steps.append(
                {
                    "target_time": (origin + timedelta(hours=k)).isoformat(),
                    "values": [f"{last - w:.8f}", f"{last:.8f}", f"{last + w:.8f}"],
                }
            )
        Forecast.objects.create(
            asset=asset,
            kind=Forecast.Kind.BASELINE,
            source="baseline",
            origin_time=origin,
            last_close=last,
            quantiles=[0.1, 0.5, 0.9],
            steps=steps,
        )
    forecast = forecast_make(asset=asset)
    assert forecast.origin_time == datetime.fromtimestamp(times[-1] / 1000, tz=UTC)
    return {"asset": asset, "forecast": forecast, "times": times, "closes": closes}


# The chart's datasets as drawn: labels, x values of each, and the pixel columns to probe.
CHART_STATE = """canvas => {
  const chart = Chart.getChart(canvas);
  return chart.data.datasets.map(d => ({label: d.label, x: d.data.map(p => p.x), y: d.data.map(p => p.y)}));
}"""

# Pixels in one column of the plot area that hold a colour: [faint (a fill), strong (a line)].
COLUMN_PROBE = """(canvas, [xValue, rgb]) => {
  const chart = Chart.getChart(canvas);
  const ratio = chart.currentDevicePixelRatio;
  const col = Math.round(chart.scales.x.getPixelForValue(xValue) * ratio);
  const top = Math.floor(chart.chartArea.top * ratio), bottom = Math.ceil(chart.chartArea.bottom * ratio);
  const img = canvas.getContext("2d").getImageData(col - 2, top, 5, bottom - top);
  let faint = 0, strong = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b, a] = [img.data[i], img.data[i + 1], img.data[i + 2], img.data[i + 3]];
    const near = Math.abs(r - rgb[0]) < 40 && Math.abs(g - rgb[1]) < 40 && Math.abs(b - rgb[2]) < 40;
    if (near && a > 20 && a < 90) faint++;
    if (near && a >= 200) strong++;
  }
  return {faint: faint, strong: strong};
}"""


# Inside the band at one step (edges left out): how many pixel rows, and how many hold the faint fill.
BAND_PROBE = """(canvas, [step, rgb]) => {
  const chart = Chart.getChart(canvas);
  const ratio = chart.currentDevicePixelRatio;
  const [low, high] = [chart.getDatasetMeta(1).data[step], chart.getDatasetMeta(2).data[step]];
  const col = Math.round(low.x * ratio);
  const top = Math.ceil(high.y * ratio) + 3, bottom = Math.floor(low.y * ratio) - 3;
  const img = canvas.getContext("2d").getImageData(col, top, 1, bottom - top);
  let faint = 0;
  for (let i = 0; i < img.data.length; i += 4) {
    const [r, g, b, a] = [img.data[i], img.data[i + 1], img.data[i + 2], img.data[i + 3]];
    const near = Math.abs(r - rgb[0]) < 40 && Math.abs(g - rgb[1]) < 40 && Math.abs(b - rgb[2]) < 40;
    if (near && a > 20 && a < 90) faint++;
  }
  return {rows: bottom - top, faint: faint};
}"""


def test_forecast_is_drawn_after_the_last_candle_and_past_forecasts_against_the_closes(
    page, live_server, sign_in, btc_forecasts
):
    times, forecast = btc_forecasts["times"], btc_forecasts["forecast"]
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/?range=7d")
    assert page.locator("#forecast-source").inner_text().endswith("; no model is trained yet")

    canvas = page.locator("#price-chart[data-painted='true']")
    canvas.wait_for()
    assert canvas.get_attribute("data-points") == str(7 * 24)
    assert canvas.get_attribute("data-forecast-points") == "24"
    assert canvas.get_attribute("data-band-points") == "24"
    price, low, high, median = canvas.evaluate(CHART_STATE)
    assert price["label"] == "BTCUSDT close (USDT)"
    assert [d["label"] for d in (low, high, median)] == ["forecast band low", "forecast 80% band", "forecast median"]
    # Every forecast point lies after the newest candle, one step per hour from the next one on.
    assert price["x"][-1] == times[-1]
    expected_x = [times[-1] + k * HOUR_MS for k in range(1, 25)]
    assert low["x"] == high["x"] == median["x"] == expected_x
    values = [[float(v) for v in s["values"]] for s in forecast.steps]
    assert [[lo, m, hi] for lo, m, hi in zip(low["y"], median["y"], high["y"])] == values

    # The band is filled between its edges in the forecast's columns, and nowhere over the history.
    inside = canvas.evaluate(BAND_PROBE, [12, list(BAND_RGB)])
    # The median line crosses the band's middle: a few rows there are not the fill.
    assert inside["rows"] > 20 and inside["faint"] >= inside["rows"] - 8, inside
    history = canvas.evaluate(COLUMN_PROBE, [price["x"][len(price["x"]) // 2], list(BAND_RGB)])
    assert history == {"faint": 0, "strong": 0}, history
    # The dashed median crosses most forecast columns (a dash gap can miss one).
    hits = sum(canvas.evaluate(COLUMN_PROBE, [x, list(BAND_RGB)])["strong"] > 0 for x in expected_x[1:-1])
    assert hits >= 0.6 * len(expected_x[1:-1]), hits

    # Pointing at a forecast step shows that step's median and band, not some candle's price.
    box = canvas.bounding_box()
    step_x = canvas.evaluate("(c, x) => Chart.getChart(c).scales.x.getPixelForValue(x)", expected_x[12])
    page.mouse.move(box["x"] + step_x, box["y"] + box["height"] / 2)
    shown = canvas.evaluate("c => Chart.getChart(c).tooltip.dataPoints.map(p => [p.dataset.label, p.parsed.x])")
    assert sorted(shown) == sorted([[d["label"], expected_x[12]] for d in (low, high, median)])

    track = page.locator("#track-chart[data-painted='true']")
    track.wait_for()
    assert track.get_attribute("data-points") == str(PAST)
    assert track.get_attribute("data-actual-points") == str(PAST)
    actual, t_low, t_high, t_median = track.evaluate(CHART_STATE)
    # Each past forecast's 1-hour-ahead target is the candle after its origin; the newest
    # forecast's target has no candle yet, so it is not among them.
    assert actual["x"] == t_median["x"] == [t + HOUR_MS for t in times[-PAST - 1 : -1]]
    assert actual["y"] == [float(btc_forecasts["closes"][t + HOUR_MS]) for t in times[-PAST - 1 : -1]]
    assert t_low["label"].startswith("said 1 hour ahead")
    assert track.evaluate(COLUMN_PROBE, [actual["x"][PAST // 2], list(INK_RGB)])["strong"] > 0
    assert "1 more awaits its candle." in page.locator("#track-summary").inner_text()

    # Asking for 6 hours ahead redraws the past forecasts against the closes 6 hours on.
    page.click("#track nav a[data-ahead='6']")
    page.wait_for_url(f"{live_server.url}/assets/BTCUSDT/?range=7d&ahead=6#track")
    track = page.locator("#track-chart[data-painted='true']")
    track.wait_for()
    assert track.get_attribute("data-points") == str(PAST - 5)
    assert page.locator("#price-chart").get_attribute("data-forecast-points") == "24"


# The price chart's tooltip line and y-axis tick for each value, as the page's script writes them.
PRICE_TEXTS = """(canvas, values) => {
  const chart = Chart.getChart(canvas);
  const label = chart.options.plugins.tooltip.callbacks.label;
  const tick = chart.options.scales.y.ticks.callback;
  return values.map(v => [label({dataset: {label: "forecast median"}, parsed: {x: 0, y: v}}), tick(v)]);
}"""


def test_tooltips_and_axis_write_prices_as_the_page_does(page, live_server, sign_in, btc_forecasts):
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/")
    canvas = page.locator("#price-chart[data-painted='true']")
    canvas.wait_for()
    values = [19093.6312, 1283.2, 1.23456, 0.00001234, 0]
    texts = canvas.evaluate(PRICE_TEXTS, values)
    # Four significant digits, at least two decimals in a tooltip (price_text's rule), never three
    # decimals of a large price, and a small coin is not rounded to 0.
    assert [t[0] for t in texts] == [
        "forecast median: 19,093.63 USDT",
        "forecast median: 1,283.20 USDT",
        "forecast median: 1.235 USDT",
        "forecast median: 0.00001234 USDT",
        "forecast median: 0.00 USDT",
    ]
    assert [t[1] for t in texts] == ["19,093.63", "1,283.2", "1.235", "0.00001234", "0"]
    assert [t[0].split(": ")[1].removesuffix(" USDT") for t in texts[:4]] == [
        price_text(Decimal(str(v))) for v in values[:4]
    ]


def test_forecast_parts_fit_a_phone(page, live_server, sign_in, btc_forecasts, tmp_path):
    asset, times = btc_forecasts["asset"], btc_forecasts["times"]
    version = ModelVersion.objects.create(
        asset=asset,
        version=2,
        status=ModelVersion.Status.CHAMPION,
        data_start=datetime(2021, 10, 11, tzinfo=UTC),
        data_end=datetime(2022, 10, 11, tzinfo=UTC),
        data_candles=8760,
        data_digest="0" * 64,
        artifact="models/BTCUSDT/v2.pt",
        artifact_sha256="0" * 64,
        metrics={
            "mae": 180.25,
            "mae_h1": 61.5,
            "mase": 1.004,
            "directional_accuracy": 0.512,
            "pinball": 55.12,
            "coverage": 0.79,
            "width": 1650.4,
        },
        baseline_metrics={
            "naive": {"mae": 181.0, "mae_h1": 61.9, "mase": 1.008},
            "naive_band": {
                "mae": 181.0,
                "mae_h1": 61.9,
                "mase": 1.008,
                "pinball": 57.3,
                "coverage": 0.84,
                "width": 1880.2,
            },
        },
        backtest={"origins": 696, "horizon": 24, "first_origin_time": times[-720], "last_origin_time": times[-25]},
        decision="Promoted: pinball 55.12 < naive band 57.3; MAE 180.25 within 0.5% of naive 181.",
    )
    steps = btc_forecasts["forecast"].steps
    Forecast.objects.create(
        asset=asset,
        model_version=version,
        kind=Forecast.Kind.MODEL,
        source="v2",
        origin_time=btc_forecasts["forecast"].origin_time,
        last_close=Decimal("1"),
        quantiles=[0.1, 0.5, 0.9],
        steps=steps,
        stale=True,
    )
    TrainingRun.objects.create(
        asset=asset, triggered_by="schedule", status=TrainingRun.Status.RUNNING, epoch=5, max_epochs=40
    )

    page.set_viewport_size({"width": 375, "height": 812})
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/")
    page.locator("#price-chart[data-painted='true']").wait_for()
    page.locator("#track-chart[data-painted='true']").wait_for()
    assert "model v2, trained" in page.locator("#forecast-source").inner_text()
    assert page.locator("#forecast-stale").is_visible()
    assert "epoch 5 of 40" in page.locator("#training-status").inner_text()

    # Nothing wider than the screen: the wide backtest table scrolls inside its own box.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for selector in ("#price-chart", "#track-chart", ".table-scroll", "#training-status", "#forecast-stale"):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    for selector in ("#price-chart", "#track-chart"):
        assert page.locator(selector).bounding_box()["height"] >= 200, selector
    table = page.locator("#metrics-table")
    assert table.evaluate("t => t.parentElement.scrollWidth > t.parentElement.clientWidth")
    assert table.locator("tr[data-method='model'] td[data-metric='mae']").inner_text() == "180.2"

    shot = tmp_path / "asset-forecast-375.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
