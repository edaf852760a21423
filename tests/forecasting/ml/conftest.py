"""Real candles and small, fast models for the model-code tests (no database)."""

from __future__ import annotations

import pytest

from forecasting.ml.train import TrainConfig, train

from .candles import GAP_SLICE, load, series

# Small enough for about half a second per fit; threads pinned as in production. One LSTM, so a
# test reads its weights directly; test_reproducible trains the default ensemble of two.
SMALL = TrainConfig(max_epochs=2, hidden=16, val_steps=300, threads=1, ensemble=1)
TEST_STEPS = 300


@pytest.fixture(scope="session")
def btc(data_dir):
    return load(data_dir)


@pytest.fixture(scope="session")
def recent(btc):
    """The last 3,000 BTCUSDT hours (no gap)."""
    return series(btc.iloc[-3000:])


@pytest.fixture(scope="session")
def gapped(btc):
    """3,000 BTCUSDT hours around the 33-hour outage of February 2018."""
    return series(btc.iloc[GAP_SLICE])


@pytest.fixture(scope="session")
def recent_model(recent):
    return train(recent, SMALL, train_end=len(recent) - TEST_STEPS)


@pytest.fixture(scope="session")
def gapped_model(gapped):
    return train(gapped, SMALL, train_end=len(gapped) - TEST_STEPS)
