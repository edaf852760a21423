"""The latest forecast's answer, served from its cache as rendered JSON."""

from __future__ import annotations

import json


def test_latest_forecast_bytes_are_the_serializer_rendering(world):
    """The latest forecast is cached as rendered JSON: the same bytes from the cache as fresh, and
    the browsable API still renders it."""
    client = world.client("owner")
    path = "/api/v1/assets/BTCUSDT/forecasts/latest/"
    first, second = client.get(path), client.get(path)
    assert first["Content-Type"] == second["Content-Type"] == "application/json"
    assert first.content == second.content
    body = json.loads(first.content)
    assert (body["symbol"], body["source"], body["model_version"]) == ("BTCUSDT", "v2", 2)
    assert first.content.decode() == json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    html = client.get(path, HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and html["Content-Type"].startswith("text/html")
