"""The latest-forecast endpoint says what serves and how it compares with the statistical baseline,
in the asset page's own words."""

from __future__ import annotations

import re
from html import unescape

import pytest

from forecasting.models import ModelVersion
from tests.support.world import HOUR, NEWEST, make_version

URL = "/api/v1/assets/{}/forecasts/latest/"
DAY = 24 * HOUR
BACKTEST = {
    "origins": 696,
    "horizon": 24,
    # make_version's data_end is NEWEST - 48 h: the backtest is the 30 days up to its end.
    "test_start": int((NEWEST - 48 * HOUR + HOUR - 30 * DAY).timestamp() * 1000),
}
SEASONAL = {"mae": 2.0, "pinball": 3.0, "coverage": 0.8, "band": 0.8}


def latest(world, symbol: str = "BTCUSDT") -> dict:
    response = world.client("owner").get(URL.format(symbol))
    assert response.status_code == 200
    return response.json()


def page_words(world, symbol: str = "BTCUSDT") -> str:
    from django.test import Client

    client = Client()
    client.force_login(world.owner)
    html = client.get(f"/assets/{symbol}/").content.decode()
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", "", html)))


def test_with_a_champion_it_compares_the_champion_with_the_statistical_band(world):
    ModelVersion.objects.filter(id=world.v2.id).update(
        metrics={"mae": 1.5, "pinball": 2.94, "coverage": 0.81, "band": 0.8},
        baseline_metrics={"naive": {"mae": 2.0}, "seasonal_band": SEASONAL},
        backtest=BACKTEST,
    )
    comparison = latest(world)["comparison"]
    assert comparison == {
        "text": "Over the last 30 days of its backtest model v2's band was 2.0% sharper than the statistical band "
        "(by pinball loss), at 81.0% coverage against the statistical band's 80.0% (the aim is 80%).",
        "verdict": "The model's range of likely prices is better than the plain statistical range (2.0%); it held "
        "the actual price 81 times in 100 in its backtest (it aims at 80). Its middle line beat “the price stays "
        "the same” by 25.0%.",
        "model_version": 2,
        "pinball_ratio": pytest.approx(0.98),
        "model_coverage": 0.81,
        "baseline_coverage": 0.8,
        "backtest_days": 30.0,
    }
    assert comparison["text"] in page_words(world)
    assert comparison["verdict"] in page_words(world)


def test_a_champion_backtested_before_the_statistical_band_has_no_numbers(world):
    comparison = latest(world)["comparison"]  # the world's v2 has naive metrics only
    assert comparison == {
        "text": "Model v2 serves; it was backtested before the statistical band was part of the backtest, so the "
        "two were not compared.",
        "verdict": "A trained model serves; its backtest has no comparison with the statistical range.",
        "model_version": 2,
        "pinball_ratio": None,
        "model_coverage": None,
        "baseline_coverage": None,
        "backtest_days": None,
    }
    assert comparison["text"] in page_words(world)


def test_with_no_champion_it_says_why_the_statistical_band_serves(world):
    # ETHUSDT has a baseline forecast and no model.
    nothing = {
        "model_version": None,
        "pinball_ratio": None,
        "model_coverage": None,
        "baseline_coverage": None,
        "backtest_days": None,
    }
    assert latest(world, "ETHUSDT")["comparison"] == {
        "text": "The statistical band is served: no model has been trained yet.",
        "verdict": "A statistical range of likely prices serves (no trained model yet): it widens when the market "
        "is jumpy and narrows when it is calm, nothing more.",
        **nothing,
    }

    # A model is trained and rejected: the answer changes at once, though it is cached.
    rejected = make_version(world.eth, 1, ModelVersion.Status.REJECTED)
    ModelVersion.objects.filter(id=rejected.id).update(
        metrics={"mae": 1.5, "pinball": 3.06, "coverage": 0.83, "band": 0.8},
        baseline_metrics={"naive": {"mae": 2.0}, "seasonal_band": SEASONAL},
        backtest=BACKTEST,
    )
    comparison = latest(world, "ETHUSDT")["comparison"]
    assert comparison == {
        "text": "The statistical band is served: the latest model, v1, did not beat it. Over the last 30 days of its "
        "backtest its band was 2.0% less sharp than the statistical band (by pinball loss), at 83.0% "
        "coverage against the statistical band's 80.0% (the aim is 80%).",
        "verdict": "The plain statistical range serves, because the latest model's range was not better.",
        "model_version": 1,
        "pinball_ratio": pytest.approx(1.02),
        "model_coverage": 0.83,
        "baseline_coverage": 0.8,
        "backtest_days": 30.0,
    }
    assert comparison["text"] in page_words(world, "ETHUSDT")
