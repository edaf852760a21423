"""Assets unlike the three shared ones: a price in another unit, a coin pinned to a dollar, a market
frozen for days. Each trains, backtests and forecasts a band that is finite, ordered and not empty."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.ml.backtest import backtest
from forecasting.ml.data import Series
from forecasting.ml.seasonal import fit_seasonal_band
from forecasting.ml.train import train

from .conftest import SMALL, TEST_STEPS


def _with(s: Series, **arrays) -> Series:
    fields = {name: getattr(s, name) for name in ("open", "high", "low", "close", "volume")}
    return Series.from_arrays(times=s.times, **(fields | arrays), interval_ms=s.interval_ms)


def _check_band(prices: np.ndarray, last: float) -> None:
    assert np.isfinite(prices).all()
    assert np.all(np.diff(prices, axis=-1) >= 0)  # quantiles in order at every step
    assert np.all(prices[:, -1] > prices[:, 0])  # never a band of zero width
    assert prices[0, 0] < last < prices[0, -1]


def _train_and_score(s: Series):
    end = len(s) - TEST_STEPS
    model = train(s, SMALL, train_end=end)
    methods = backtest(model, s, test_start=end)["methods"]
    forecast = model.forecast(s)
    _check_band(np.array(forecast["prices"]), forecast["last_close"])
    return model, methods, forecast


def test_the_forecast_does_not_depend_on_the_unit_of_the_price(recent):
    # The same market quoted a billion times smaller (a meme coin's price range): every forecast
    # scales with it, so nothing in the features or the band reads the price level.
    tiny = _with(recent, **{f: getattr(recent, f) * 1e-9 for f in ("open", "high", "low", "close")})
    _, m_plain, f_plain = _train_and_score(recent)
    _, m_tiny, f_tiny = _train_and_score(tiny)
    np.testing.assert_allclose(np.array(f_tiny["prices"]) * 1e9, f_plain["prices"], rtol=1e-6)
    assert m_tiny["model"]["coverage"] == pytest.approx(m_plain["model"]["coverage"], abs=1e-9)
    assert m_tiny["model"]["pinball"] * 1e9 == pytest.approx(m_plain["model"]["pinball"], rel=1e-6)


def test_a_coin_pinned_to_a_dollar_gets_a_narrow_calibrated_band(recent):
    # Price ticks of 0.0001 around 1.0000: most hours do not move and have no range at all.
    rng = np.random.default_rng(0)
    n = len(recent)
    drift = np.zeros(n)
    for t in range(1, n):
        drift[t] = 0.9 * drift[t - 1] + rng.normal(0, 1e-4)
    close = np.round((1 + drift) / 1e-4) * 1e-4
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = 1e-4 * (rng.random(n) < 0.3)
    still = np.mean(close[1:] == close[:-1])
    assert still > 0.3  # the point of the test: many hours with no move
    pinned = _with(
        recent, open=open_, high=np.maximum(open_, close) + wick, low=np.minimum(open_, close) - wick, close=close
    )
    _, methods, forecast = _train_and_score(pinned)
    prices = np.array(forecast["prices"])
    assert 1e-4 < prices[-1, -1] - prices[-1, 0] < 3e-3  # a day ahead: a few ticks, not cents
    assert 0.6 < methods["model"]["coverage"] < 0.95
    band = fit_seasonal_band(pinned, SMALL, train_end=len(pinned) - TEST_STEPS)
    _check_band(np.array(band.forecast(pinned)["prices"]), float(pinned.close[-1]))


def test_a_market_frozen_for_days_still_forecasts_a_band(recent):
    # An exchange halt: three days of one price, no range and no volume, in the training part and
    # again in the month scored, ending just before the newest candle.
    fields = {f: getattr(recent, f).copy() for f in ("open", "high", "low", "close", "volume")}
    n = len(recent)
    for a, b in ((n - 2000, n - 1928), (n - 100, n - 28)):
        for f in ("open", "high", "low", "close"):
            fields[f][a:b] = recent.close[a - 1]
        fields["volume"][a:b] = 0.0
    frozen = _with(recent, **fields)
    model, methods, _ = _train_and_score(frozen)
    assert np.isfinite(model.meta["val_loss"])
    assert 0.5 < methods["model"]["coverage"] <= 1.0
    during = model.forecast(frozen.head(n - 40))  # from inside the halt
    _check_band(np.array(during["prices"]), during["last_close"])
