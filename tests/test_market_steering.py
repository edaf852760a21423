"""bench/market_steering.py: with no market rate it is the band as served, and with one pair the
market learner is the pair's own learner again."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import forecast_grid as fg  # noqa: E402
import market_steering as ms  # noqa: E402

from forecasting.ml.config import TrainConfig  # noqa: E402

CONFIG = TrainConfig(threads=1)


@pytest.fixture(scope="module")
def month(data_dir):
    # The newest tuning month: fitted once for every test here.
    return {s: ms.fitted(data_dir / f"{s}-1h.csv", 1, CONFIG) for s in ("BTCUSDT", "ETHUSDT")}


def test_no_market_rate_replays_the_band_the_grid_scores(month, data_dir):
    replayed = ms.replay(month, CONFIG.aci_rate, 0.0, CONFIG)
    for symbol in month:
        grid = fg.run_month((symbol, str(data_dir / f"{symbol}-1h.csv"), 1, {}, fg.TRAIN_DAYS, True))
        band = grid["methods"]["seasonal_band"]
        assert replayed[symbol]["coverage"] == pytest.approx(band["coverage"], abs=1e-12)
        assert replayed[symbol]["pinball_vs_naive_band"] == pytest.approx(band["pinball_vs_naive_band"], rel=1e-9)


def test_with_one_pair_the_market_learner_adds_its_rate_to_the_own_one(month):
    alone = {"BTCUSDT": month["BTCUSDT"]}
    split = ms.replay(alone, 0.01, 0.03, CONFIG)["BTCUSDT"]
    together = ms.replay(alone, 0.04, 0.0, CONFIG)["BTCUSDT"]
    assert split["coverage"] == pytest.approx(together["coverage"], abs=1e-12)
    assert split["pinball_vs_naive_band"] == pytest.approx(together["pinball_vs_naive_band"], rel=1e-9)


def test_the_market_learner_hears_the_other_pairs(month):
    # Two pairs: BTC's band moves with ETH's misses once the market learner has a rate.
    own_only = ms.replay(month, 0.02, 0.0, CONFIG)["BTCUSDT"]
    with_market = ms.replay(month, 0.02, 0.02, CONFIG)["BTCUSDT"]
    alone = ms.replay({"BTCUSDT": month["BTCUSDT"]}, 0.02, 0.02, CONFIG)["BTCUSDT"]
    assert with_market["pinball_vs_naive_band"] != pytest.approx(alone["pinball_vs_naive_band"], rel=1e-9)
    assert with_market["pinball_vs_naive_band"] != pytest.approx(own_only["pinball_vs_naive_band"], rel=1e-9)
