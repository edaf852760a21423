"""The seasonal statistical band: the strongest forecast here that learns nothing but a profile.

Returns are divided by their hour of the week's volatility (a profile learnt on the training part
only), an EWMA of what is left gives the volatility level, and the band at h steps ahead is that
level times the profile summed over the target hours. Its median is the last price (the naive
forecast), its outer quantiles start from the normal distribution's (config.base_shape) and are
calibrated exactly as the model's are: conformal on the validation month, then adaptive conformal
inference as each outcome becomes known. Fitting takes milliseconds, so it can serve from the first
hour an asset has enough candles, and every model has to beat it to serve instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from .band import BandForecaster, conformal_offsets, split_masks
from .config import TrainConfig
from .data import Frame, Series, SeriesError, seasonal_profile, targets


@dataclass
class SeasonalBand(BandForecaster):
    config: TrainConfig
    profile: np.ndarray | None
    base: np.ndarray  # (H, Q) quantiles of the scaled h-step return, median 0
    calibration: np.ndarray
    aci_rate: float = 0.0
    aci_start_time: int | None = None
    meta: dict = field(default_factory=dict)
    mix: np.ndarray | None = None
    burst_mix: np.ndarray | None = None

    def raw_quantiles(self, series: Series, frame: Frame) -> np.ndarray:
        return np.broadcast_to(self.base, (len(series), *self.base.shape)).copy()


def fit_seasonal_band(series: Series, config: TrainConfig, *, train_end: int | None = None) -> SeasonalBand:
    """Fit on steps before `train_end` (default: all), split as the model's training splits them:
    the profile and the base quantiles on the training part, the conformal offsets on the last
    `config.val_steps`. Nothing at or after `train_end` is read."""
    series.validate()
    train_end = len(series) if train_end is None else train_end
    series = series.head(train_end)
    val_start = train_end - config.val_steps
    need = config.min_history + config.horizon + 1
    if val_start < need:
        raise SeriesError(
            f"too little history for the seasonal band: {train_end} candles, at least "
            f"{config.val_steps + need} needed for a {config.val_steps}-step validation period"
        )
    profile = config_profile(series, config, end=val_start)
    band = SeasonalBand(
        config=config,
        profile=profile,
        base=np.zeros((config.horizon, len(config.quantiles))),
        calibration=np.zeros(config.horizon),
    )
    frame = band.frame(series)
    y, mask = targets(frame, config.horizon)
    train_mask, val_mask = split_masks(mask, val_start=val_start, train_end=train_end)
    if config.slow_window:
        frame = band.choose_mix(frame, y, train_mask)
        y, mask = targets(frame, config.horizon)
        train_mask, val_mask = split_masks(mask, val_start=val_start, train_end=train_end)
    if not val_mask.any():
        raise SeriesError("no complete validation targets for the seasonal band: the data has too many gaps")
    band.base = base_quantiles(y, train_mask if train_mask.any() else val_mask, config.quantiles, config.base_shape)
    band.calibration = conformal_offsets(
        band.raw_quantiles(series, frame), y, val_mask, 1 - config.band, config.conformal_pooled
    )
    band.aci_rate, band.aci_start_time = config.aci_rate, int(series.times[val_start])
    band.meta = {
        "train_end_time": int(series.times[-1]),
        "val_start_time": int(series.times[val_start]),
        "candles": int(len(series)),
    }
    return band


def config_profile(series: Series, config: TrainConfig, *, end: int) -> np.ndarray | None:
    """The hour-of-week profile as `config` learns it from steps before `end`; None if not seasonal."""
    if not config.seasonal:
        return None
    return seasonal_profile(
        series,
        end=end,
        level_halflife=config.profile_halflife,
        smooth=config.profile_smooth,
        prior=config.profile_prior,
    )


def base_quantiles(y: np.ndarray, mask: np.ndarray, levels: tuple[float, ...], shape: str = "normal") -> np.ndarray:
    """(H, Q): per step, the band's quantiles of the scaled return before calibration, median 0.

    "normal": the normal distribution's, the same at every step; the scale is the volatility's
    and the conformal calibration sets the width, so nothing is fitted here. "empirical": the
    quantiles of the training targets, centred because a drift learnt on one year is noise for the
    next month; they keep the fat tails and the skew the training part showed, which on the
    tuning months was more noise than shape (config.base_shape)."""
    q = np.zeros((y.shape[1], len(levels)))
    if shape == "normal":
        if not mask.any():
            raise SeriesError("no complete targets to fit the band on")
        return q + norm.ppf(np.asarray(levels))
    for k in range(y.shape[1]):
        obs = y[mask[:, k], k]
        if len(obs) < len(levels):
            raise SeriesError("too few complete targets to learn the band's quantiles")
        q[k] = np.quantile(obs, levels)
        q[k] -= np.quantile(obs, 0.5)
    return q
