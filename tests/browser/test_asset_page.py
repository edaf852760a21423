"""The asset page in headless Chromium: every range draws the expected number of points, Chart.js
comes from the local copy, the CDN failing falls back to it, and the page fits a phone screen."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from forecasting.models import Candle

pytestmark = pytest.mark.browser

# Kept apart from the selector's own table so a change there shows up here.
RANGE_SPANS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "1y": timedelta(days=365),
    "all": None,
}
MAX_POINTS = 1500
LOCAL_CHARTJS = "/static/vendor/chartjs/chart.umd.min.js"
LINE_RGB = (0x25, 0x63, 0xEB)  # the dataset's borderColor in asset_detail.js


def expected_chart(asset, range_key: str) -> tuple[int, int]:
    """(candles in the range, points drawn) straight from the database."""
    times = list(
        Candle.objects.filter(asset=asset, interval=asset.interval)
        .order_by("open_time")
        .values_list("open_time", flat=True)
    )
    span = RANGE_SPANS[range_key]
    if span is not None:
        times = [t for t in times if t > times[-1] - span]
    n = len(times)
    stride = math.ceil(n / MAX_POINTS)
    points = len(range(0, n, stride)) + (0 if (n - 1) % stride == 0 else 1)
    return n, points


# Reads the drawn canvas back: how many pixel columns between the first and the last point hold
# the line's colour (the line must cross the whole span), how wide that span and the plot area
# are, and how many pixels are painted at all.
PAINT_PROBE = """canvas => {
  const chart = Chart.getChart(canvas);
  const ratio = chart.currentDevicePixelRatio;
  const data = chart.data.datasets[0].data;
  const x = chart.scales.x;
  const left = Math.ceil(x.getPixelForValue(data[0].x) * ratio) + 1;
  const right = Math.floor(x.getPixelForValue(data[data.length - 1].x) * ratio) - 1;
  const top = Math.floor(chart.chartArea.top * ratio), bottom = Math.ceil(chart.chartArea.bottom * ratio);
  const ctx = canvas.getContext("2d");
  const all = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < all.length; i += 4) if (all[i] > 0) painted++;
  const img = ctx.getImageData(left, top, right - left, bottom - top);
  const [r0, g0, b0] = arguments_rgb;
  let columns = 0;
  for (let col = 0; col < img.width; col++) {
    for (let row = 0; row < img.height; row++) {
      const i = (row * img.width + col) * 4;
      const [r, g, b, a] = [img.data[i], img.data[i + 1], img.data[i + 2], img.data[i + 3]];
      if (a > 64 && Math.abs(r - r0) < 48 && Math.abs(g - g0) < 48 && Math.abs(b - b0) < 48) {
        columns++;
        break;
      }
    }
  }
  const area = Math.floor((chart.chartArea.right - chart.chartArea.left) * ratio);
  return {columns: columns, span: img.width, area: area, painted: painted, size: canvas.width * canvas.height};
}""".replace("arguments_rgb", str(list(LINE_RGB)))


def assert_chart_drawn(page, asset, range_key: str) -> None:
    candles, points = expected_chart(asset, range_key)
    canvas = page.locator("#price-chart[data-painted='true']")
    canvas.wait_for()
    assert canvas.get_attribute("data-points") == str(points), range_key
    assert page.locator("#points-note").inner_text().startswith(f"{candles} candles"), range_key
    paint = canvas.evaluate(PAINT_PROBE)
    # The x axis ends at the first and the newest point, not at padded round values.
    assert paint["span"] >= paint["area"] - 4 and paint["area"] > 150, (range_key, paint)
    # Antialiasing can leave the odd column without a strong enough pixel; a missing line leaves all.
    assert paint["columns"] >= 0.98 * paint["span"], (range_key, paint)
    assert paint["painted"] > 0.01 * paint["size"], (range_key, paint)


def chartjs_scripts(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('head script[src]')].map(s => s.src)")


def test_every_range_draws_the_expected_chart_from_the_local_chartjs(page, live_server, sign_in, btc_1h):
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/")
    assert_chart_drawn(page, btc_1h, "7d")  # the default range: a week, where the forecast is readable

    for range_key in RANGE_SPANS:
        page.click(f"nav.ranges a[data-range='{range_key}']")
        page.wait_for_url(f"{live_server.url}/assets/BTCUSDT/?range={range_key}")
        assert page.locator("nav.ranges a[aria-current='true']").inner_text() == range_key
        assert_chart_drawn(page, btc_1h, range_key)
        assert chartjs_scripts(page) == [f"{live_server.url}{LOCAL_CHARTJS}"]
        assert page.evaluate("window.chartjsFallback") is None

    cdn_host = "cdn.jsdelivr.net"
    assert not [url for url in page.context.requests if cdn_host in url]


def test_unreachable_cdn_falls_back_to_the_local_copy(page, live_server, sign_in, btc_1h, settings):
    settings.CHARTJS_SOURCE = "cdn"
    cdn_attempts = []

    def cdn_down(route):
        cdn_attempts.append(route.request.url)
        route.abort("addressunreachable")

    page.route("https://cdn.jsdelivr.net/**", cdn_down)
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/?range=7d")

    assert_chart_drawn(page, btc_1h, "7d")
    assert page.evaluate("window.chartjsFallback") is True
    assert cdn_attempts == [settings.CHARTJS_CDN_URL]
    # The CDN script (with its SRI hash) was tried first, then the local copy.
    assert chartjs_scripts(page) == [settings.CHARTJS_CDN_URL, f"{live_server.url}{LOCAL_CHARTJS}"]
    assert page.locator("head script[integrity]").get_attribute("integrity") == settings.CHARTJS_SRI


def test_asset_page_fits_a_phone(page, live_server, sign_in, btc_1h, tmp_path):
    page.set_viewport_size({"width": 375, "height": 812})
    sign_in()
    page.goto(f"{live_server.url}/assets/BTCUSDT/?range=1y")
    assert_chart_drawn(page, btc_1h, "1y")

    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("#price-chart").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    assert box["height"] >= 200
    for range_key in RANGE_SPANS:
        link = page.locator(f"nav.ranges a[data-range='{range_key}']").bounding_box()
        assert link["x"] >= 0 and link["x"] + link["width"] <= 375, range_key
    header = page.locator(".site-header").bounding_box()
    assert header["width"] <= 375

    shot = tmp_path / "asset-page-375.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
