"""Candle series: validation, contiguous segments, features and targets.

Every value at step t is computed from candles up to t only, so nothing after a cut-off can leak
into what the model sees before it. Gaps split the series into segments: returns, volatility and
targets never join the two sides of a gap as if they were adjacent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS


class SeriesError(ValueError):
    """The candles cannot be used as they are; the message says why."""


@dataclass(frozen=True)
class Series:
    times: np.ndarray  # int64 open times, epoch ms UTC, strictly increasing
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    interval_ms: int

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def from_arrays(cls, *, times, open, high, low, close, volume, interval_ms: int) -> Series:
        s = cls(
            times=np.asarray(times, dtype=np.int64),
            open=np.asarray(open, dtype=np.float64),
            high=np.asarray(high, dtype=np.float64),
            low=np.asarray(low, dtype=np.float64),
            close=np.asarray(close, dtype=np.float64),
            volume=np.asarray(volume, dtype=np.float64),
            interval_ms=int(interval_ms),
        )
        s.validate()
        return s

    def validate(self) -> None:
        n = len(self.times)
        for name in ("open", "high", "low", "close", "volume"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise SeriesError(f"{name} has {arr.shape[0] if arr.ndim else 0} values for {n} times")
            if not np.all(np.isfinite(arr)):
                bad = int(np.flatnonzero(~np.isfinite(arr))[0])
                raise SeriesError(f"{name} is NaN or infinite at {_when(self.times[bad])}")
        for name in ("open", "high", "low", "close"):
            arr = getattr(self, name)
            if np.any(arr <= 0):
                bad = int(np.flatnonzero(arr <= 0)[0])
                raise SeriesError(f"{name} is not positive ({arr[bad]}) at {_when(self.times[bad])}")
        if np.any(self.volume < 0):
            bad = int(np.flatnonzero(self.volume < 0)[0])
            raise SeriesError(f"volume is negative at {_when(self.times[bad])}")
        if self.interval_ms <= 0:
            raise SeriesError("interval must be positive")
        d = np.diff(self.times)
        if np.any(d == 0):
            bad = int(np.flatnonzero(d == 0)[0]) + 1
            raise SeriesError(f"time {_when(self.times[bad])} appears twice")
        if np.any(d < 0):
            bad = int(np.flatnonzero(d < 0)[0]) + 1
            raise SeriesError(f"times are not sorted: {_when(self.times[bad])} comes after a later time")
        if np.any(d % self.interval_ms):
            bad = int(np.flatnonzero(d % self.interval_ms)[0]) + 1
            raise SeriesError(f"time {_when(self.times[bad])} is off the {self.interval_ms} ms grid")

    def tail(self, n: int) -> Series:
        return Series(
            self.times[-n:],
            self.open[-n:],
            self.high[-n:],
            self.low[-n:],
            self.close[-n:],
            self.volume[-n:],
            self.interval_ms,
        )

    def since(self, time_ms: int) -> Series:
        """The candles that open at or after `time_ms`."""
        start = int(np.searchsorted(self.times, time_ms))
        return self.tail(len(self) - start) if start < len(self) else self.head(0)

    def head(self, n: int) -> Series:
        return Series(
            self.times[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
            self.interval_ms,
        )


def _when(ms) -> str:
    return np.datetime_as_string(np.datetime64(int(ms), "ms"), unit="m") + " UTC"


def segment_ids(series: Series) -> np.ndarray:
    """A segment number per step; it increases after every gap."""
    gaps = np.diff(series.times) != series.interval_ms
    return np.concatenate([[0], np.cumsum(gaps)])


def segment_position(seg: np.ndarray) -> np.ndarray:
    """Steps since the start of the step's segment (0 at the first step after a gap)."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(seg)) + 1])
    pos = np.arange(len(seg))
    return pos - np.repeat(starts, np.diff(np.concatenate([starts, [len(seg)]])))


def ewma_volatility(
    returns: np.ndarray, seg: np.ndarray, halflife: float, squares: np.ndarray | None = None
) -> np.ndarray:
    """Causal EWMA of squared log-returns (or of `squares`, another estimate of each step's
    variance), restarted in each segment (expanding mean at first).

    `returns[t]` is NaN at a segment's first step. A floor keeps scaled values finite on flat stretches.
    """
    if squares is None:
        squares = returns * returns
    alpha = 1 - 0.5 ** (1 / halflife)
    # Plain Python floats in the loop: the same IEEE arithmetic as numpy's scalars, five times faster
    # (every forecast and training runs this over years of candles).
    out = [math.nan] * len(returns)
    var = math.nan
    count = 0
    previous = None
    for t, (r2, s) in enumerate(zip(squares.tolist(), seg.tolist())):
        if s != previous:
            var, count = math.nan, 0
            previous = s
        if math.isfinite(r2):
            count += 1
            if count == 1:
                var = r2
            else:
                # An expanding mean until the EWMA has enough history, so no value looks ahead.
                w = max(alpha, 1.0 / count)
                var = (1 - w) * var + w * r2
        if math.isfinite(var):
            out[t] = math.sqrt(var)
    return np.maximum(np.array(out), 1e-5)


FEATURE_NAMES = (
    "scaled_return",
    "log_volatility",
    "scaled_range",
    "scaled_body",
    "volume_change",
    "hour_sin",
    "hour_cos",
    "weekday_sin",
    "weekday_cos",
)


@dataclass
class Frame:
    """Per-step arrays derived from a Series. `valid` marks steps with enough history."""

    features: np.ndarray  # (n, F), unscaled
    log_close: np.ndarray  # (n,)
    sigma: np.ndarray  # (n,) EWMA volatility of one-step (deseasonalised) log-returns, known at t
    seg: np.ndarray  # (n,)
    valid: np.ndarray  # (n,) bool
    # (n, H): sqrt of the seasonal variance multipliers summed over the target steps t+1..t+h, or
    # None for no seasonality (then sqrt(h)). Target times are on the calendar, so known at t.
    # With a slow volatility mixed in (build_frame's `mix`), the mix's ratio to sigma is folded in.
    season: np.ndarray | None = None
    # (n,): the slow volatility (build_frame's `slow_window`), or None.
    slow: np.ndarray | None = None
    # (n,): a faster EWMA volatility of the same variances (build_frame's `burst_halflife`), or None.
    burst: np.ndarray | None = None

    def horizon_scale(self, horizon: int) -> np.ndarray:
        """(n, H): the volatility of the h-step log-return expected at each origin."""
        if self.season is None:
            return self.sigma[:, None] * np.sqrt(np.arange(1, horizon + 1))[None, :]
        return self.sigma[:, None] * self.season[:, :horizon]

    def take(self, idx: np.ndarray) -> Frame:
        return Frame(
            self.features[idx],
            self.log_close[idx],
            self.sigma[idx],
            self.seg[idx],
            self.valid[idx],
            None if self.season is None else self.season[idx],
            None if self.slow is None else self.slow[idx],
            None if self.burst is None else self.burst[idx],
        )


# -- seasonality ------------------------------------------------------------------------------------

PROFILE_BINS_MAX = 168  # hours of the week


def season_bins(times: np.ndarray, interval_ms: int) -> tuple[np.ndarray, int]:
    """Each time's place in the week (hour of week for hourly candles, day of week for daily ones),
    and the number of places. Intervals of a week or longer have one place: no profile."""
    nbins = max(1, min(WEEK_MS // interval_ms, PROFILE_BINS_MAX))
    return ((np.asarray(times, dtype=np.int64) % WEEK_MS) * nbins // WEEK_MS).astype(np.int64), int(nbins)


def seasonal_profile(
    series: Series, *, end: int | None = None, level_halflife: float = 168.0, smooth: int = 1, prior: float = 0.0
) -> np.ndarray:
    """Variance multiplier per place in the week (mean 1), learnt from steps before `end` only.

    Each return is measured against a slow EWMA of volatility known before it, so a crash week
    does not become "Tuesdays are wild"; absolute values rather than squares, so a few fat-tailed
    hours do not own a bin. Neighbouring hours are averaged (`smooth` on each side, circularly):
    about 52 returns per hour of a year's week are too few to trust one by one. With `prior` > 0
    the profile keeps n / (n + prior) of its departures from flat, n the weeks behind its
    least-seen hour, so a few weeks of candles give a nearly flat profile."""
    end = len(series) if end is None else end
    s = series.head(end)
    bins, nbins = season_bins(s.times, s.interval_ms)
    if nbins == 1 or end < 2 * nbins:
        return np.ones(nbins)
    seg = segment_ids(s)
    r = np.full(len(s), np.nan)
    r[1:] = np.diff(np.log(s.close))
    r[np.concatenate([[True], np.diff(seg) != 0])] = np.nan
    level = ewma_volatility(r, seg, level_halflife)
    prev = np.concatenate([[np.nan], level[:-1]])
    prev[np.concatenate([[True], np.diff(seg) != 0])] = np.nan
    ratio = np.abs(r) / prev
    ok = np.isfinite(ratio)
    sums = np.bincount(bins[ok], weights=ratio[ok], minlength=nbins)
    counts = np.bincount(bins[ok], minlength=nbins)
    if counts.min() < 4:
        return np.ones(nbins)
    mean_abs = sums / counts
    if smooth > 0 and nbins > 2 * smooth + 1:
        k = np.arange(-smooth, smooth + 1)
        w = (smooth + 1 - np.abs(k)).astype(float)
        mean_abs = sum(wi * np.roll(mean_abs, ki) for wi, ki in zip(w, k)) / w.sum()
    var = mean_abs**2
    var = var / var.mean()
    if prior:
        weeks = float(counts.min())
        var = (weeks * var + prior) / (weeks + prior)
    return var / var.mean()


def season_scale(times: np.ndarray, interval_ms: int, profile: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H): sqrt of the profile summed over each origin's next h steps on the calendar."""
    h = np.arange(1, horizon + 1)
    bins, nbins = season_bins(np.asarray(times)[:, None] + h[None, :] * interval_ms, interval_ms)
    if len(profile) != nbins:
        raise SeriesError(f"the seasonal profile has {len(profile)} places for a week of {nbins}")
    return np.sqrt(np.cumsum(profile[bins], axis=1))


# Parkinson's estimate of a step's variance from its high and low: ln(H/L)^2 / (4 ln 2).
PARKINSON = 1.0 / (4.0 * np.log(2.0))


def build_frame(
    series: Series,
    *,
    ewma_halflife: float = 24.0,
    min_history: int = 24,
    profile: np.ndarray | None = None,
    horizon: int = 0,
    range_weight: float = 0.0,
    slow_window: int = 0,
    mix: np.ndarray | None = None,
    burst_halflife: float = 0.0,
    burst_mix: np.ndarray | None = None,
) -> Frame:
    """Features and scales of every step. With a seasonal `profile`, returns are divided by their
    place's volatility before the EWMA and the features (so they are deseasonalised) and
    `horizon` steps of seasonal scale are computed. `range_weight` is the share of each step's
    variance taken from its high-low range rather than its squared return: the range sees the
    whole hour, not two prices, so the volatility level is far less noisy.

    `slow_window` > 0 also computes the mean of the same variances over that many steps
    (`Frame.slow`); with `mix` (H,), the h-step scale is sqrt(mix[h] sigma^2 + (1 - mix[h]) slow^2)
    instead of sigma: bursts of volatility fade, so the further ahead, the more the longer-run level
    counts (fit_mix). A window rather than a slow EWMA so that its value at a step depends on a
    known, bounded stretch of candles: a forecast that reads `slow_window` candles before its first
    origin computes exactly what training computed.

    `burst_halflife` > 0 also computes a faster EWMA of the same variances (`Frame.burst`); with
    `burst_mix` (H,) as its weights, the slow one's are 1 - mix - burst_mix (fit_mix_burst)."""
    seg = segment_ids(series)
    log_c = np.log(series.close)
    r = np.full(len(series), np.nan)
    r[1:] = np.diff(log_c)
    r[np.concatenate([[True], np.diff(seg) != 0])] = np.nan  # no return across a gap
    here = np.ones(len(series))
    season = None
    if profile is not None:
        bins, _ = season_bins(series.times, series.interval_ms)
        here = np.sqrt(profile[bins])
        r = r / here
        season = season_scale(series.times, series.interval_ms, profile, max(horizon, 1))
    squares = r * r
    if range_weight:
        parkinson = PARKINSON * np.log(series.high / series.low) ** 2 / here**2
        squares = (1 - range_weight) * squares + range_weight * np.where(np.isfinite(r), parkinson, np.nan)
    sigma = ewma_volatility(r, seg, ewma_halflife, squares)
    slow = _window_volatility(squares, seg, slow_window) if slow_window else None
    burst = ewma_volatility(r, seg, burst_halflife, squares) if burst_halflife else None
    if mix is not None:
        season = _mixed_season(season, sigma, slow, burst, mix, burst_mix, horizon)
    prev_sigma = np.concatenate([[np.nan], sigma[:-1]])
    prev_sigma[np.concatenate([[True], np.diff(seg) != 0])] = np.nan
    log_v = np.log1p(series.volume)
    # Volume against its own causal 24-step mean within the segment.
    vol_mean = _segment_rolling_mean(log_v, seg, 24)
    t = series.times
    hour = (t % DAY_MS) / DAY_MS * 2 * np.pi
    weekday = ((t + 3 * DAY_MS) % WEEK_MS) / WEEK_MS * 2 * np.pi  # epoch 0 was a Thursday
    feats = np.column_stack(
        [
            r / prev_sigma,
            np.log(sigma),
            np.log(series.high / series.low) / (sigma * here),
            np.log(series.close / series.open) / (sigma * here),
            log_v - vol_mean,
            np.sin(hour),
            np.cos(hour),
            np.sin(weekday),
            np.cos(weekday),
        ]
    )
    pos = segment_position(seg)
    valid = (pos >= min_history) & np.all(np.isfinite(feats), axis=1)
    feats = np.where(np.isfinite(feats), feats, 0.0)
    return Frame(
        features=feats, log_close=log_c, sigma=sigma, seg=seg, valid=valid, season=season, slow=slow, burst=burst
    )


def _mixed_season(season, sigma, slow, burst, mix, burst_mix, horizon: int) -> np.ndarray:
    """(n, H): the seasonal scale (None: no profile) times the mix's ratio to sigma."""
    if slow is None or np.shape(mix)[-1] < horizon:
        raise SeriesError("a volatility mix needs the slow volatility and a weight per horizon step")
    if season is None:
        season = np.broadcast_to(np.sqrt(np.arange(1, horizon + 1)), (len(sigma), horizon))
    w = _mix_weights(np.asarray(mix, dtype=float), sigma, slow, horizon)
    slow2 = (slow / sigma)[:, None] ** 2
    variance = w + (1 - w) * slow2
    if burst_mix is not None:
        if burst is None or np.shape(burst_mix)[-1] < horizon:
            raise SeriesError("a burst mix needs the burst volatility and a weight per horizon step")
        b = np.asarray(burst_mix, dtype=float)[None, :horizon]
        variance = variance + b * ((burst / sigma)[:, None] ** 2 - slow2)
    return season[:, :horizon] * np.sqrt(variance)


def remix(frame: Frame, mix: np.ndarray, burst_mix: np.ndarray | None, horizon: int) -> Frame:
    """A frame built without a mix, as build_frame would build it with this one, bit for bit,
    without computing its volatilities and features again (training chooses the mix on the
    unmixed frame, then needs the mixed one)."""
    season = _mixed_season(frame.season, frame.sigma, frame.slow, frame.burst, mix, burst_mix, horizon)
    return replace(frame, season=season)


MIX_GRID = np.linspace(0.0, 1.0, 21)


def _mix_weights(mix: np.ndarray, sigma: np.ndarray, slow: np.ndarray, horizon: int) -> np.ndarray:
    """(n, H) or (1, H): the fast volatility's weight at each origin. A (2, H) mix has one row for
    origins whose fast volatility is at or above the slow one (rising) and one for the others."""
    if mix.ndim == 1:
        return mix[None, :horizon]
    return np.where((sigma >= slow)[:, None], mix[0][None, :horizon], mix[1][None, :horizon])


def fit_mix(frame: Frame, y: np.ndarray, mask: np.ndarray, sides: int = 1) -> np.ndarray:
    """Per horizon step, the weight of the fast volatility against the slow one (Frame.slow) that
    best forecasts the variance of the h-step return on the masked targets, by QLIKE loss: the
    loss that ranks variance forecasts correctly through noisy squared returns. The overall level
    is left to the quantiles fitted after (QLIKE at its best scale), so only the shape is chosen.
    `y` is in units of the unmixed scale (targets of a frame built without `mix`).

    With `sides` 2, origins where the fast volatility is above the slow one get their own weight
    (a (2, H) mix), both chosen together under one scale: a rise tends to go on for a while, a
    fall back to the usual level less so."""
    if frame.slow is None:
        raise SeriesError("fitting a volatility mix needs the slow volatility")
    if sides not in (1, 2):
        raise SeriesError("a volatility mix has one or two sides")
    horizon = y.shape[1]
    fast2 = frame.sigma**2
    ratio2 = (frame.slow / frame.sigma) ** 2
    rising = frame.sigma >= frame.slow
    out = np.ones((sides, horizon))
    grid = MIX_GRID[:, None]
    for k in range(horizon):
        rows = mask[:, k]
        if rows.sum() < 50 or (sides == 2 and min((rows & rising).sum(), (rows & ~rising).sum()) < 50):
            continue  # too few to choose: the fast volatility alone, as without a mix
        # Per side and weight, the sums that QLIKE at its best scale needs:
        # log(mean(z2 / v)) + mean(log v) with v = fast2 * (w + (1 - w) * ratio2).
        parts = [rows] if sides == 1 else [rows & rising, rows & ~rising]
        ratio_sums, log_sums = [], []
        for part in parts:
            z2 = (y[part, k] ** 2) * fast2[part]  # the squared return in deseasonalised units
            v = fast2[part][None, :] * (grid + (1 - grid) * ratio2[part][None, :])
            ratio_sums.append((z2[None, :] / v).sum(axis=1))
            log_sums.append(np.log(v).sum(axis=1))
        count = rows.sum()
        if sides == 1:
            losses = np.log(ratio_sums[0] / count) + log_sums[0] / count
            out[0, k] = MIX_GRID[int(np.argmin(losses))]
        else:
            losses = (
                np.log((ratio_sums[0][:, None] + ratio_sums[1][None, :]) / count)
                + (log_sums[0][:, None] + log_sums[1][None, :]) / count
            )
            up, down = np.unravel_index(int(np.argmin(losses)), losses.shape)
            out[:, k] = MIX_GRID[up], MIX_GRID[down]
    return out[0] if sides == 1 else out


MIX_SIMPLEX = np.array([(a, b) for a in MIX_GRID for b in MIX_GRID if a + b <= 1.0 + 1e-9])


def fit_mix_burst(frame: Frame, y: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per horizon step, the weights of the fast and of the burst volatility (the slow one has the
    rest) that best forecast the h-step variance on the masked targets, by QLIKE at its best scale
    as fit_mix ranks them. The burst volatility reacts within hours, the fast one within a day, the
    slow one is the level of the last weeks: near steps lean on the first, far ones on the last.

    Every step is judged on the origins whose targets all exist, so each candidate's variances and
    their logs are computed once for all steps and its sums for every step are one matrix product:
    a tenth of a second for three years of hours, not seconds."""
    if frame.slow is None or frame.burst is None:
        raise SeriesError("fitting a burst mix needs the slow and the burst volatility")
    horizon = y.shape[1]
    rows = mask.all(axis=1)
    if rows.sum() < 50:
        return np.ones(horizon), np.zeros(horizon)  # too few to choose: the fast volatility alone
    fast2, burst2, slow2 = frame.sigma[rows] ** 2, frame.burst[rows] ** 2, frame.slow[rows] ** 2
    wf, wb = MIX_SIMPLEX[:, :1], MIX_SIMPLEX[:, 1:]
    v = wf * fast2[None, :] + wb * burst2[None, :] + (1 - wf - wb) * slow2[None, :]  # (C, n)
    z2 = (y[rows] ** 2) * fast2[:, None]  # (n, H): squared returns in deseasonalised units
    count = rows.sum()
    losses = np.log((1.0 / v) @ z2 / count) + np.log(v).mean(axis=1)[:, None]  # (C, H)
    best = MIX_SIMPLEX[np.argmin(losses, axis=0)]
    return best[:, 0].copy(), best[:, 1].copy()


def _window_volatility(squares: np.ndarray, seg: np.ndarray, window: int) -> np.ndarray:
    """sqrt of the mean of the finite `squares` over the last `window` steps of each step's
    segment (fewer at a segment's start), floored as ewma_volatility is."""
    ok = np.isfinite(squares)
    total = _segment_rolling_mean(np.where(ok, squares, 0.0), seg, window)
    share = _segment_rolling_mean(ok.astype(float), seg, window)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(share > 0, total / np.where(share > 0, share, 1.0), np.nan)
    return np.maximum(np.sqrt(var), 1e-5)


def _segment_rolling_mean(x: np.ndarray, seg: np.ndarray, window: int) -> np.ndarray:
    out = np.empty(len(x))
    for s in np.unique(seg):
        idx = np.flatnonzero(seg == s)
        c = np.cumsum(np.concatenate([[0.0], x[idx]]))
        k = np.arange(1, len(idx) + 1)
        lo = np.maximum(0, k - window)
        out[idx] = (c[k] - c[lo]) / (k - lo)
    return out


def targets(frame: Frame, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """y[t, h-1] = (log c[t+h] - log c[t]) / scale[t, h-1] and a mask of which exist (inside the
    same segment, so never across a gap). The scale is sigma[t] * sqrt(h) without seasonality."""
    n = len(frame.log_close)
    y = np.zeros((n, horizon))
    mask = np.zeros((n, horizon), dtype=bool)
    scale = frame.horizon_scale(horizon)
    for h in range(1, horizon + 1):
        same = np.zeros(n, dtype=bool)
        same[: n - h] = frame.seg[h:] == frame.seg[: n - h]
        diff = np.zeros(n)
        diff[: n - h] = frame.log_close[h:] - frame.log_close[: n - h]
        y[:, h - 1] = diff / scale[:, h - 1]
        mask[:, h - 1] = same & frame.valid
    # Masked entries must be finite too: a NaN times a zero weight is still NaN in the loss.
    return np.where(mask, y, 0.0), mask
