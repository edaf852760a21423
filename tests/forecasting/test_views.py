"""Asset pages and the price-history selector, through the Django test client."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse

from forecasting.models import Asset, Candle
from forecasting.selectors.market_data import price_history
from tests.factories import candles

# Well in the past, so nothing depends on today's date.
NEWEST = datetime(2022, 6, 30, 23, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def make_candles(
    asset: Asset, count: int, *, newest: datetime = NEWEST, interval: str | None = None, step: timedelta = HOUR
) -> list[Candle]:
    """`count` consecutive candles ending at `newest`; the close price is the candle's index + 100."""
    return candles(asset, [100 + i for i in range(count)], newest=newest, step=step, interval=interval)


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


# --- access --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/assets/", "/assets/BTCUSDT/", "/assets/BTCUSDT/prices.json"])
def test_anonymous_user_is_sent_to_sign_in(client, btc, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={path}"


def test_signed_in_user_sees_the_asset_list(signed_in, btc):
    Asset.objects.create(symbol="OLDUSDT", base_asset="OLD", quote_asset="USDT", tracked=False)
    response = signed_in.get("/assets/")
    assert response.status_code == 200
    assert [item["row"].asset for item in response.context["items"]] == [btc]
    assert b'href="/assets/BTCUSDT/"' in response.content
    assert b"OLDUSDT" not in response.content


def test_signed_in_user_sees_the_asset_page_with_its_chart(signed_in, btc):
    make_candles(btc, 30)
    response = signed_in.get("/assets/BTCUSDT/", {"range": "24h"})
    assert response.status_code == 200
    assert response.context["range_key"] == "24h"
    html = response.content.decode()
    assert 'id="price-chart"' in html
    assert 'id="chartjs-loader"' in html
    # The range selector links every range, marking the current one.
    for r in ("24h", "7d", "30d", "1y", "all"):
        assert f'href="?range={r}"' in html
    assert 'data-range="24h" aria-current="true"' in html
    data = json.loads(_json_script(html, "price-data"))
    assert len(data) == 24
    assert data[-1] == {"t": ms(NEWEST), "c": "129.00000000"}


def test_asset_page_says_when_the_chart_is_thinned(signed_in, btc):
    make_candles(btc, 1501)
    html = signed_in.get("/assets/BTCUSDT/", {"range": "all"}).content.decode()
    assert '<span id="points-note">1501 candles, one in 2 shown.</span>' in html
    # Every 2nd candle from the first: the newest (index 1500) is one of them, so not added again.
    assert len(json.loads(_json_script(html, "price-data"))) == 751


def _json_script(html: str, element_id: str) -> str:
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return html[start : html.index("</script>", start)]


def test_symbol_in_the_url_is_case_insensitive(signed_in, btc):
    assert signed_in.get("/assets/btcusdt/").status_code == 200


def test_unknown_range_on_the_page_falls_back_to_the_week(signed_in, btc):
    make_candles(btc, 3)
    response = signed_in.get("/assets/BTCUSDT/", {"range": "2w"})
    assert response.status_code == 200
    # The default: a week, on which the day-ahead forecast is readable.
    assert response.context["range_key"] == "7d"
    assert signed_in.get("/assets/BTCUSDT/").context["range_key"] == "7d"


@pytest.mark.parametrize("path", ["/assets/NOPEUSDT/", "/assets/NOPEUSDT/prices.json"])
def test_unknown_symbol_is_404(signed_in, btc, path):
    assert signed_in.get(path).status_code == 404


def test_prices_json_rejects_an_unknown_range(signed_in, btc):
    make_candles(btc, 3)
    response = signed_in.get("/assets/BTCUSDT/prices.json", {"range": "2w"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert "'2w'" in error
    assert "24h, 7d, 30d, 1y, all" in error


def test_prices_json_returns_the_range(signed_in, btc):
    make_candles(btc, 48)
    response = signed_in.get("/assets/BTCUSDT/prices.json", {"range": "24h"})
    assert response.status_code == 200
    body = response.json()
    assert body["range"] == "24h"
    assert body["newest"] == NEWEST.isoformat()
    assert body["candles"] == 24
    assert body["stride"] == 1
    assert body["points"][0] == {"t": ms(NEWEST - 23 * HOUR), "c": "124.00000000"}
    assert body["points"][-1] == {"t": ms(NEWEST), "c": "147.00000000"}


def test_asset_without_candles_shows_the_empty_state(signed_in, btc):
    response = signed_in.get("/assets/BTCUSDT/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No candles yet for BTCUSDT." in html
    assert "python manage.py refresh_candles BTCUSDT" in html
    # No chart and no chart code without data.
    assert 'id="price-chart"' not in html
    assert "chart-loader.js" not in html


# --- price_history selector ----------------------------------------------------------------------


def test_ranges_end_at_the_newest_candle_not_at_now(btc):
    make_candles(btc, 24 * 40)  # 40 days of hourly candles
    expected = {"24h": 24, "7d": 7 * 24, "30d": 30 * 24, "1y": 40 * 24, "all": 40 * 24}
    for range_key, count in expected.items():
        history = price_history(asset=btc, range_key=range_key)
        assert history["candles"] == count, range_key
        assert history["newest"] == NEWEST
        assert history["points"][-1]["t"] == ms(NEWEST)
        # The range is `span` worth of candles: the first one opens span - 1 interval before the newest.
        assert history["points"][0]["t"] == ms(NEWEST - (count - 1) * HOUR), range_key


def test_history_ignores_other_intervals_and_other_assets(btc):
    eth = Asset.objects.create(symbol="ETHUSDT", base_asset="ETH", quote_asset="USDT", interval="1h")
    make_candles(btc, 10)
    # Newer candles of another interval or asset must neither count nor move the range's end.
    make_candles(btc, 5, interval="1d", newest=NEWEST + timedelta(days=5), step=timedelta(days=1))
    make_candles(eth, 10, newest=NEWEST + 5 * HOUR)
    history = price_history(asset=btc, range_key="all")
    assert history["candles"] == 10
    assert history["newest"] == NEWEST
    assert [p["t"] for p in history["points"]] == [ms(NEWEST - i * HOUR) for i in range(9, -1, -1)]


@pytest.mark.parametrize(
    ("count", "max_points", "stride", "indexes"),
    [
        (10, 10, 1, list(range(10))),  # at the limit: nothing dropped
        (10, 3, 4, [0, 4, 8, 9]),  # the newest is added after every 4th
        (9, 3, 3, [0, 3, 6, 8]),
        (7, 3, 3, [0, 3, 6]),  # the newest is already one of every 3rd: not repeated
        (1, 3, 1, [0]),
    ],
)
def test_history_is_thinned_to_every_kth_candle_keeping_the_newest(btc, count, max_points, stride, indexes):
    make_candles(btc, count)
    history = price_history(asset=btc, range_key="all", max_points=max_points)
    first = NEWEST - (count - 1) * HOUR
    assert history["stride"] == stride
    assert history["candles"] == count
    assert history["points"] == [{"t": ms(first + i * HOUR), "c": f"{100 + i}.00000000"} for i in indexes]


def test_history_of_an_asset_without_candles_is_empty(btc):
    assert price_history(asset=btc, range_key="7d") == {
        "range": "7d",
        "points": [],
        "newest": None,
        "stride": 1,
        "candles": 0,
    }


def test_history_rejects_an_unknown_range(btc):
    with pytest.raises(ValueError, match="Unknown range '2w'"):
        price_history(asset=btc, range_key="2w")


# --- Chart.js pin --------------------------------------------------------------------------------


def test_chartjs_sri_and_version_match_the_local_npm_copy():
    """The CDN serves the npm release byte for byte, so the local copy's hash is the CDN's hash."""
    dist = settings.BASE_DIR / "node_modules" / "chart.js"
    digest = hashlib.sha384((dist / "dist" / "chart.umd.min.js").read_bytes()).digest()
    assert settings.CHARTJS_SRI == "sha384-" + base64.b64encode(digest).decode()
    version = json.loads((dist / "package.json").read_text())["version"]
    assert settings.CHARTJS_VERSION == version
    assert f"/chart.js@{version}/dist/chart.umd.min.js" in settings.CHARTJS_CDN_URL
