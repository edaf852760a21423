"""What every forecaster here shares: quantiles in scaled-return units, a band calibrated on
validation (conformal) that keeps adapting as outcomes become known (adaptive conformal inference),
and the way back to prices.

`BandForecaster` is the common base of the quantile LSTM (`train.TrainedModel`) and the seasonal
statistical band (`seasonal.SeasonalBand`), so both are calibrated, served and backtested the same way.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from .config import TrainConfig
from .data import Frame, Series, SeriesError, build_frame, fit_mix, fit_mix_burst, remix, targets


class BandForecaster:
    """Subclasses set `config` (a TrainConfig), `profile`, `calibration`, `aci_rate`,
    `aci_start_time` and implement `raw_quantiles`."""

    config: TrainConfig
    profile: np.ndarray | None
    calibration: np.ndarray
    aci_rate: float
    aci_start_time: int | None
    mix: np.ndarray | None = None  # (H,) or (2, H) fast-volatility weights (data.fit_mix), or None
    burst_mix: np.ndarray | None = None  # (H,) burst-volatility weights (data.fit_mix_burst), or None

    def frame(self, series: Series) -> Frame:
        return build_frame(
            series,
            ewma_halflife=self.config.ewma_halflife,
            min_history=self.config.min_history,
            profile=self.profile,
            horizon=self.config.horizon,
            range_weight=self.config.range_weight,
            slow_window=self.config.slow_window,
            mix=self.mix,
            burst_halflife=self.config.burst_halflife,
            burst_mix=self.burst_mix,
        )

    def choose_mix(self, frame: Frame, y: np.ndarray, train_mask: np.ndarray) -> Frame:
        """Choose the volatility mix on the training targets of an unmixed `frame` (y in its
        units) and return the frame with it, as `self.frame` now builds it."""
        if self.config.burst_halflife:
            self.mix, self.burst_mix = fit_mix_burst(frame, y, train_mask)
        else:
            self.mix = fit_mix(frame, y, train_mask, self.config.mix_sides)
        return remix(frame, self.mix, self.burst_mix, self.config.horizon)

    def history_start(self, interval_ms: int) -> int | None:
        """The open time from which a forecast must read candles to compute what training computed:
        the adaptive band replays every outcome since its start, and the slow volatility at that
        start looks `slow_window` steps further back. None: no such point (read a fixed number)."""
        if self.aci_start_time is None:
            return None
        return int(self.aci_start_time) - self.config.slow_window * interval_ms

    def raw_quantiles(self, series: Series, frame: Frame) -> np.ndarray:
        """(n, H, Q) quantiles in scaled units before the band's calibration."""
        raise NotImplementedError

    def predict_scaled(self, series: Series) -> tuple[np.ndarray, Frame]:
        """Calibrated quantiles in scaled-return units at every step, (n, H, Q)."""
        frame = self.frame(series)
        out = self.raw_quantiles(series, frame)
        offsets = self.band_offsets(series, frame, out)
        out[..., 0] = np.minimum(out[..., 0] - offsets, out[..., 1])
        out[..., -1] = np.maximum(out[..., -1] + offsets, out[..., -2])
        return out, frame

    def band_offsets(self, series: Series, frame: Frame, raw: np.ndarray) -> np.ndarray:
        """Widening of the outer quantiles at every step, (n, H), in scaled units.

        The conformal offsets from validation, then (with `aci_rate`) updated by each outcome as it
        becomes known: at step t only origins whose target time is <= t count, so nothing leaks
        (the volatility an outcome is judged in is the one at its target time, known by then too)."""
        n, horizon = raw.shape[:2]
        if not self.aci_rate or self.aci_start_time is None:
            return np.broadcast_to(self.calibration, (n, horizon)).copy()
        y, mask = targets(frame, horizon)
        start = int(np.searchsorted(series.times, self.aci_start_time))
        return adaptive_offsets(
            raw,
            in_target_volatility(y, frame, self.config.aci_judge),
            mask,
            self.calibration,
            start=start,
            rate=self.aci_rate,
            alpha=1.0 - self.config.band,
            pooled=self.config.aci_pooled,
            smooth=self.config.aci_smooth,
        )

    def predict_prices(self, series: Series) -> tuple[np.ndarray, Frame]:
        """Quantile prices (n, H, Q): at each step t, for t+1..t+H."""
        pred, frame = self.predict_scaled(series)
        return to_prices(pred, frame, self.config.horizon), frame

    def forecast(self, series: Series) -> dict:
        """The forecast from the newest candle: target times and quantile prices per step."""
        prices, frame = self.predict_prices(series)
        if not frame.valid[-1]:
            raise SeriesError(f"the newest candle has less than {self.config.min_history} contiguous candles before it")
        h = np.arange(1, self.config.horizon + 1)
        return {
            "origin_time": int(series.times[-1]),
            "target_times": (series.times[-1] + h * series.interval_ms).tolist(),
            "quantiles": list(self.config.quantiles),
            "prices": prices[-1].tolist(),
            "last_close": float(series.close[-1]),
        }


def in_target_volatility(y: np.ndarray, frame: Frame, power: float = 1.0) -> np.ndarray:
    """Scaled outcomes (n, H) re-measured in the volatility at their target time, known by then.

    Judged this way, a jump that the EWMA scale has already absorbed (so the next bands are wider
    anyway) does not widen the band a second time. `power` < 1 goes only part of the way (0: the
    outcome as it is, in the volatility at its origin); config.aci_judge picks it."""
    n, horizon = y.shape
    resolved_at = np.minimum(np.arange(n)[:, None] + np.arange(1, horizon + 1)[None, :], n - 1)
    return y * (frame.sigma[:, None] / frame.sigma[resolved_at]) ** power


def adaptive_offsets(
    raw: np.ndarray,
    y: np.ndarray,
    mask: np.ndarray,
    calibration: np.ndarray,
    *,
    start: int,
    rate: float,
    alpha: float,
    pooled: bool = False,
    smooth: float = 0.0,
) -> np.ndarray:
    """Adaptive conformal inference, (n, H): from `start`, each outcome nudges the offset up after a
    miss and down after a hit. At step t only origins whose target time is <= t count, so nothing
    leaks. Per horizon step, or `pooled`: one shift for every step, moved by the share of the
    outcomes resolved at t that missed (the steps' misses come together, so 24 separate walks add
    noise without adding information).

    `smooth` > 0: what is returned is an EWMA (that half-life in steps) of the adaptive shift, which
    itself still judges each outcome against its own unsmoothed band. Misses come in bursts, and
    every hourly swing they cause costs pinball loss; smoothed, the band keeps the shift's level
    (so its long-run coverage) without its swings."""
    n, horizon = raw.shape[:2]
    offsets = np.broadcast_to(calibration, (n, horizon)).copy()
    scores = np.where(mask, np.maximum(raw[..., 0] - y, y - raw[..., -1]), np.nan)
    ks = np.arange(horizon)
    src = np.arange(n)[:, None] - ks[None, :] - 1
    resolved = resolved_at(scores, start=start)
    known = np.isfinite(resolved)
    counts = known.sum(axis=1)
    base = np.asarray(calibration, dtype=float)
    if pooled:
        # offsets[t] = base + shift[t]: compare each resolved score, less its step's base, with
        # the shift in force at its origin (a slice of the history, newest first).
        rel = resolved - base[None, :]
        shift = np.zeros(n + horizon)  # shift[t + horizon] is the shift after step t
        cur = 0.0
        for t in range(start, n):
            if counts[t]:
                missed = np.count_nonzero(rel[t] > shift[t : t + horizon][::-1])
                cur += rate * (missed / counts[t] - alpha)
            shift[t + horizon] = cur
        offsets[start:] += shift[start + horizon :, None]
        return _smoothed(offsets, base, start, smooth)
    a = base.copy()
    for t in range(start, n):
        if counts[t]:
            missed = (resolved[t] > offsets[src[t], ks]) & known[t]
            a += rate * np.where(known[t], missed - alpha, 0.0)
        offsets[t] = a
    return _smoothed(offsets, base, start, smooth)


def resolved_at(scores: np.ndarray, *, start: int) -> np.ndarray:
    """(n, H): at [t, k] the score of the origin whose (k + 1)-step target closed at t (origin
    t - k - 1, from `start` on), NaN where there is none. Found once for all t, so the adaptive loop,
    which must run in order, does only the feedback."""
    n, horizon = scores.shape
    ks = np.arange(horizon)
    src = np.arange(n)[:, None] - ks[None, :] - 1
    usable = src >= start
    out = np.full((n, horizon), np.nan)
    out[usable] = scores[src[usable], np.broadcast_to(ks, (n, horizon))[usable]]
    return out


def _smoothed(offsets: np.ndarray, base: np.ndarray, start: int, halflife: float) -> np.ndarray:
    """The offsets' departures from `base` from `start` on, as an EWMA of that half-life (0: as they are).
    Causal: the value at t reads departures up to t only, and starts from no departure."""
    if not halflife or start >= len(offsets):
        return offsets
    w = 1.0 - 0.5 ** (1.0 / halflife)
    out = offsets.copy()
    out[start:] = base + lfilter([w], [1.0, w - 1.0], offsets[start:] - base, axis=0)
    return out


def conformal_offsets(
    raw: np.ndarray, y: np.ndarray, val_mask: np.ndarray, alpha: float, pooled: bool = False
) -> np.ndarray:
    """Split-conformal correction of the outer quantiles (CQR): the band widens (or narrows) until
    it covers 1 - alpha of the validation targets, per horizon step or, `pooled`, with one offset
    for every step that covers 1 - alpha of all their targets together. The targets are in units
    of each step's own volatility, so one offset fits all; the 24 separate ones each rest on a
    month of strongly overlapping outcomes (config.conformal_pooled)."""
    offsets = np.zeros(raw.shape[1])
    if pooled:
        scores = np.maximum(raw[..., 0] - y, y - raw[..., -1])[val_mask]
        if len(scores):
            offsets[:] = _conformal_quantile(scores, alpha)
        return offsets
    for k in range(raw.shape[1]):
        rows = val_mask[:, k]
        if not rows.any():
            continue
        lo, hi, obs = raw[rows, k, 0], raw[rows, k, -1], y[rows, k]
        offsets[k] = _conformal_quantile(np.maximum(lo - obs, obs - hi), alpha)
    return offsets


def _conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    n = len(scores)
    return float(np.quantile(scores, min(1.0, math.ceil((n + 1) * (1 - alpha)) / n), method="higher"))


def to_prices(pred: np.ndarray, frame: Frame, horizon: int) -> np.ndarray:
    return np.exp(frame.log_close[:, None, None] + pred * frame.horizon_scale(horizon)[..., None])


def split_masks(mask: np.ndarray, *, val_start: int, train_end: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) target masks: training targets resolve before validation starts,
    validation targets start at or after it and resolve before `train_end`."""
    horizon = mask.shape[1]
    h = np.arange(1, horizon + 1)[None, :]
    t = np.arange(len(mask))[:, None]
    return mask & (t + h < val_start), mask & (t >= val_start) & (t + h < train_end)
