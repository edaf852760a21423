"""Fit, calibrate, save and load the quantile LSTM, and turn its output into prices.

Training runs the LSTM over long chunks and puts a loss on every step after a burn-in, so each
hidden state is computed once per epoch instead of once per sliding window.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping

from .band import (  # noqa: F401  (re-exported: the benchmarks import them from here)
    BandForecaster,
    adaptive_offsets,
    conformal_offsets,
    in_target_volatility,
    split_masks,
    to_prices,
)
from .config import LEGACY_SETTINGS, TrainConfig  # noqa: F401  (re-exported)
from .data import Frame, Series, SeriesError, targets
from .model import QuantileEnsemble, QuantileLSTM
from .seasonal import base_quantiles, config_profile

# 2: the seasonal profile and its settings are stored; format 1 artifacts load without one.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)


class TrainingDiverged(ValueError):
    """Training never produced a usable model (the validation loss was never finite)."""


@dataclass
class TrainedModel(BandForecaster):
    config: TrainConfig
    module: QuantileLSTM | QuantileEnsemble
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    calibration: np.ndarray  # (H,) widening of the outer quantiles in scaled units (negative narrows)
    shrink: float = 1.0  # how much of the predicted median move is kept (fitted on validation)
    # Adaptive conformal inference: from this open time on, every resolved outcome nudges the
    # band (wider after a miss, narrower after a hit) so coverage follows changes of regime.
    aci_rate: float = 0.0
    aci_start_time: int | None = None
    meta: dict = field(default_factory=dict)
    profile: np.ndarray | None = None  # variance multiplier per hour of the week (mean 1)
    # The seasonal band's spread around the median, (H, Q), and how much of the LSTM's own spread
    # is kept against it (fitted on validation): 0 is the seasonal band's shape, 1 the LSTM's.
    base: np.ndarray | None = None
    blend: float = 1.0
    mix: np.ndarray | None = None  # (H,) or (2, H) fast-volatility weights against the slow one
    burst_mix: np.ndarray | None = None  # (H,) burst-volatility weights (data.fit_mix_burst)

    # -- inference -------------------------------------------------------------------------------

    def raw_quantiles(self, series: Series, frame: Frame) -> np.ndarray:
        """LSTM quantiles in scaled-return units at every step, (n, H, Q), state reset at each gap."""
        x = (frame.features - self.scaler_mean) / self.scaler_scale
        out = np.zeros((len(series), self.config.horizon, len(self.config.quantiles)), dtype=np.float64)
        self.module.eval()
        with torch.no_grad():
            for s in np.unique(frame.seg):
                idx = np.flatnonzero(frame.seg == s)
                pred, _ = self.module(torch.as_tensor(x[idx], dtype=torch.float32).unsqueeze(0))
                out[idx] = pred[0].numpy()
        # Shift every quantile by the part of the median move that validation did not support.
        mid = len(self.config.quantiles) // 2
        out = out - (1.0 - self.shrink) * out[..., mid : mid + 1]
        return self._blended(out)

    def _blended(self, out: np.ndarray) -> np.ndarray:
        """The LSTM's quantiles with `blend` of its spread kept against the seasonal band's."""
        if self.base is None or self.blend >= 1.0:
            return out
        return blend_spread(out, self.base, self.blend)

    # -- storage ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        torch.save(
            {
                "format": FORMAT_VERSION,
                "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()},
                "state_dict": self.module.state_dict(),
                "scaler_mean": torch.as_tensor(self.scaler_mean),
                "scaler_scale": torch.as_tensor(self.scaler_scale),
                "calibration": torch.as_tensor(self.calibration),
                "shrink": float(self.shrink),
                "aci_rate": float(self.aci_rate),
                "aci_start_time": -1 if self.aci_start_time is None else int(self.aci_start_time),
                "profile": torch.as_tensor(np.zeros(0) if self.profile is None else self.profile),
                "base": torch.as_tensor(np.zeros((0, 0)) if self.base is None else self.base),
                "blend": float(self.blend),
                "mix": torch.as_tensor(np.zeros(0) if self.mix is None else self.mix),
                "burst_mix": torch.as_tensor(np.zeros(0) if self.burst_mix is None else self.burst_mix),
                "meta": self.meta,
            },
            buf,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedModel:
        # weights_only: an artifact is data, never code to run.
        blob = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
        if blob.get("format") not in READABLE_FORMATS:
            raise ValueError(f"unknown model artifact format {blob.get('format')!r}")
        # A setting the artifact does not name did not exist when it was trained: it ran as it
        # did then, not with today's default.
        cfg = LEGACY_SETTINGS | dict(blob["config"])
        cfg["quantiles"] = tuple(cfg["quantiles"])
        profile = blob.get("profile")
        profile = None if profile is None or profile.numel() == 0 else profile.numpy()
        base = blob.get("base")
        base = None if base is None or base.numel() == 0 else base.numpy()
        mix = blob.get("mix")
        mix = None if mix is None or mix.numel() == 0 else mix.numpy()
        burst_mix = blob.get("burst_mix")
        burst_mix = None if burst_mix is None or burst_mix.numel() == 0 else burst_mix.numpy()
        config = TrainConfig(**cfg)
        module = _new_module(config, blob["scaler_mean"].shape[0])
        module.load_state_dict(blob["state_dict"])
        return cls(
            config=config,
            module=module,
            scaler_mean=blob["scaler_mean"].numpy(),
            scaler_scale=blob["scaler_scale"].numpy(),
            calibration=blob["calibration"].numpy(),
            shrink=float(blob["shrink"]),
            aci_rate=float(blob["aci_rate"]),
            aci_start_time=None if blob["aci_start_time"] < 0 else int(blob["aci_start_time"]),
            meta=blob["meta"],
            profile=profile,
            base=base,
            blend=float(blob.get("blend", 1.0)),
            mix=mix,
            burst_mix=burst_mix,
        )


def _new_member(config: TrainConfig, n_features: int) -> QuantileLSTM:
    return QuantileLSTM(
        n_features=n_features,
        horizon=config.horizon,
        quantiles=config.quantiles,
        hidden=config.hidden,
        layers=config.layers,
        dropout=config.dropout,
        lr=config.lr,
        weight_decay=config.weight_decay,
        burn_in=config.burn_in,
        anchored=config.anchored,
    )


def _new_module(config: TrainConfig, n_features: int) -> QuantileLSTM | QuantileEnsemble:
    if config.ensemble == 1:
        return _new_member(config, n_features)
    return QuantileEnsemble([_new_member(config, n_features) for _ in range(config.ensemble)])


def pin_threads(threads: int) -> None:
    """One process, `threads` torch threads: oversubscribed threads on few cores are ruinous."""
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


# -- datasets ---------------------------------------------------------------------------------------


def _chunks(x, y, mask, seg, end, chunk, burn_in):
    """Chunks of `chunk` steps overlapping by `burn_in` within each segment, over steps < end."""
    xs, ys, ms = [], [], []
    for s in np.unique(seg[:end]):
        idx = np.flatnonzero(seg[:end] == s)
        start = 0
        while start < len(idx):
            part = idx[start : start + chunk]
            if mask[part[burn_in:]].any() if len(part) > burn_in else False:
                pad = chunk - len(part)
                xs.append(np.pad(x[part], ((0, pad), (0, 0))))
                ys.append(np.pad(y[part], ((0, pad), (0, 0))))
                ms.append(np.pad(mask[part], ((0, pad), (0, 0))))
            if start + chunk >= len(idx):
                break
            start += chunk - burn_in
    if not xs:
        return None
    # A float mask is a weight per target (recency_weights); a boolean one stays boolean.
    ms = np.stack(ms)
    return (
        torch.tensor(np.stack(xs), dtype=torch.float32),
        torch.tensor(np.stack(ys), dtype=torch.float32),
        torch.tensor(ms, dtype=torch.bool if ms.dtype == bool else torch.float32),
    )


def recency_weights(mask: np.ndarray, end: int, halflife: float) -> np.ndarray:
    """The training targets' weights (n, H): halved every `halflife` steps back from `end`, with
    mean 1 over the targets so the learning rate means what it did; the mask itself if halflife is 0."""
    if not halflife:
        return mask
    age = (end - 1 - np.arange(len(mask)))[:, None].astype(float)
    w = np.where(mask, 0.5 ** (np.maximum(age, 0.0) / halflife), 0.0)
    total = w.sum()
    return w * (mask.sum() / total) if total > 0 else w


def _whole_segments(x, y, mask, seg, end):
    """Each segment up to `end` as one sequence (so the state is warm), padded to one length."""
    parts = [np.flatnonzero(seg[:end] == s) for s in np.unique(seg[:end])]
    parts = [p for p in parts if mask[p].any()]
    length = max(len(p) for p in parts)
    pad = lambda a, p: np.pad(a[p], ((0, length - len(p)), (0, 0)))  # noqa: E731
    return (
        torch.tensor(np.stack([pad(x, p) for p in parts]), dtype=torch.float32),
        torch.tensor(np.stack([pad(y, p) for p in parts]), dtype=torch.float32),
        torch.tensor(np.stack([pad(mask, p) for p in parts])),
    )


class _Best(Callback):
    """Keeps the weights of the epoch with the lowest validation loss, and reports progress."""

    def __init__(self, progress):
        self.best = math.inf
        self.state = None
        self.best_epoch = 0
        self.progress = progress

    def on_validation_epoch_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        loss = float(trainer.callback_metrics["val_loss"])
        if loss < self.best:
            self.best, self.best_epoch = loss, trainer.current_epoch + 1
            self.state = copy.deepcopy(module.state_dict())

    def on_train_epoch_end(self, trainer, module):
        if self.progress:
            self.progress(trainer.current_epoch + 1, trainer.max_epochs)


def split_points(n: int, *, test_steps: int, val_steps: int) -> tuple[int, int]:
    """(val_start, test_start) indices for a series of n steps."""
    test_start = n - test_steps
    val_start = test_start - val_steps
    return val_start, test_start


def train(
    series: Series,
    config: TrainConfig = TrainConfig(),  # noqa: B008  (frozen: one shared default is safe)
    *,
    train_end: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainedModel:
    """Fit on steps before `train_end` (default: all): the last `val_steps` of them validate and
    calibrate, the rest train. Nothing at or after `train_end` is read."""
    started = time.perf_counter()
    series.validate()
    train_end = len(series) if train_end is None else train_end
    series = series.head(train_end)  # nothing after the cut-off, by construction
    val_start = train_end - config.val_steps
    need = config.burn_in + config.horizon + 1
    if val_start < 4 * need or config.val_steps < need:
        raise SeriesError(
            f"too little history: {train_end} candles; training needs at least "
            f"{config.val_steps + 4 * need} for a {config.val_steps}-step validation period, "
            f"a {config.burn_in}-step burn-in and a {config.horizon}-step horizon"
        )
    pl.seed_everything(config.seed, workers=False, verbose=False)
    pin_threads(config.threads)

    # The profile is learnt before validation, so the band is calibrated on data it never saw.
    profile = config_profile(series, config, end=val_start)
    shell = TrainedModel(
        config=config,
        module=None,
        scaler_mean=None,
        scaler_scale=None,
        calibration=np.zeros(config.horizon),
        profile=profile,
    )
    frame = shell.frame(series)
    y, mask = targets(frame, config.horizon)
    train_mask, val_mask = split_masks(mask, val_start=val_start, train_end=train_end)
    if config.slow_window:
        # Targets in units of the mixed volatility, so the LSTM forecasts what the mix leaves.
        frame = shell.choose_mix(frame, y, train_mask)
        y, mask = targets(frame, config.horizon)
        train_mask, val_mask = split_masks(mask, val_start=val_start, train_end=train_end)
    fit_rows = frame.valid & (np.arange(len(series)) < val_start)
    mean = frame.features[fit_rows].mean(axis=0)
    scale = frame.features[fit_rows].std(axis=0)
    scale[scale < 1e-8] = 1.0
    x = (frame.features - mean) / scale

    train_data = _chunks(
        x,
        y,
        recency_weights(train_mask, val_start, config.recency_halflife),
        frame.seg,
        val_start,
        config.chunk,
        config.burn_in,
    )
    val_data = _whole_segments(x, y, val_mask, frame.seg, train_end)
    if train_data is None or not val_mask.any():
        raise SeriesError("no complete training or validation targets: the data has too many gaps")
    members, fits = [], []
    for i in range(config.ensemble):
        member, fit = _fit_member(
            config,
            x.shape[1],
            train_data,
            val_data,
            seed=config.seed + i,
            progress=_member_progress(progress, sum(f["epochs"] for f in fits), config),
        )
        members.append(member)
        fits.append(fit)
    module = members[0] if config.ensemble == 1 else QuantileEnsemble(members)

    model = TrainedModel(
        config=config,
        module=module,
        scaler_mean=mean,
        scaler_scale=scale,
        calibration=np.zeros(config.horizon),
        profile=profile,
        mix=shell.mix,
        burst_mix=shell.burst_mix,
    )
    model.shrink = _fit_shrink(model, series, val_mask, y)
    # The LSTM runs over the series once more here, not once per use: with two members that pass
    # is a tenth of a second each.
    lstm = model.raw_quantiles(series, frame)
    if config.seasonal:
        model.base = base_quantiles(y, train_mask, config.quantiles, config.base_shape)
        model.blend = _fit_blend(model, lstm, val_mask, y)
    # Conformal offsets of the band on validation targets only (the calibration is still zero).
    model.calibration = conformal_offsets(model._blended(lstm), y, val_mask, 1 - config.band, config.conformal_pooled)
    model.aci_rate, model.aci_start_time = config.aci_rate, int(series.times[val_start])
    model.meta = {
        "epochs": sum(f["epochs"] for f in fits),
        "best_epoch": fits[0]["best_epoch"],
        "val_loss": float(np.mean([f["val_loss"] for f in fits])),
        "members": fits,
        "train_seconds": time.perf_counter() - started,
        "train_end_time": int(series.times[-1]),
        "train_start_time": int(series.times[0]),
        "val_start_time": int(series.times[val_start]),
        "candles": int(len(series)),
        "train_targets": int(train_mask.sum()),
        "val_targets": int(val_mask.sum()),
        "shrink": model.shrink,
        "blend": model.blend,
    }
    return model


def _member_progress(progress, done: int, config: TrainConfig):
    """Epochs of all members as one count out of all they may take, so a progress bar of an
    ensemble fills once and its last count is the epochs trained (`done` by earlier members)."""
    if progress is None:
        return None
    return lambda epoch, max_epochs: progress(done + epoch, config.ensemble * max_epochs)


def _fit_member(
    config: TrainConfig, n_features: int, train_data, val_data, *, seed: int, progress
) -> tuple[QuantileLSTM, dict]:
    """Train one LSTM from `seed`; its weights are those of its best validation epoch."""
    pl.seed_everything(seed, workers=False, verbose=False)
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(*train_data),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    val_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*val_data), batch_size=64)
    module = _new_member(config, n_features)
    best = _Best(progress)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*number of training batches.*")
        warnings.filterwarnings("ignore", ".*LeafSpec.*")
        trainer = pl.Trainer(
            max_epochs=config.max_epochs,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            deterministic=True,
            num_sanity_val_steps=0,
            callbacks=[EarlyStopping(monitor="val_loss", patience=config.patience, mode="min"), best],
        )
        trainer.fit(module, train_loader, val_loader)
    if best.state is None:
        raise TrainingDiverged(
            f"training diverged: no epoch of {trainer.current_epoch} reached a finite validation loss; "
            f"lower the learning rate (lr={config.lr:g}) or check the candles for extreme values"
        )
    module.load_state_dict(best.state)
    return module, {"seed": seed, "epochs": trainer.current_epoch, "best_epoch": best.best_epoch, "val_loss": best.best}


def blend_spread(lstm: np.ndarray, base: np.ndarray, share: float) -> np.ndarray:
    """Quantiles (..., H, Q) around the LSTM's median with `share` of the LSTM's spread and the rest
    of the seasonal band's shape `base` (H, Q): how a model serves and how validation chose it."""
    mid = lstm.shape[-1] // 2
    med = lstm[..., mid : mid + 1]
    return med + share * (lstm - med) + (1.0 - share) * base


def _fit_blend(model: TrainedModel, lstm: np.ndarray, val_mask: np.ndarray, y: np.ndarray) -> float:
    """Keep the share of the LSTM's spread (against the seasonal band's) that lowers the pinball
    loss on validation. Quantile averages are never worse than the worse of the two and usually
    better than both, so the model starts from the band and earns its departures from it.

    Each candidate is judged after its own conformal correction on validation, as it would serve:
    a spread that is right in shape but wrong in level is what the correction fixes, so it should
    not cost the LSTM its place.

    The choice lies between config.min_blend and config.max_blend: one validation month is too
    few outcomes to drop the LSTM altogether, and a choice of 0 made the model the band itself in
    13-23 of 96 tuning months (forecast_tuning.md rows 74-76). A fixed share did no better than a
    choice (rows 47-50, 81)."""
    levels = np.asarray(model.config.quantiles)
    rows = val_mask.any(axis=1)
    lstm, y, val_mask = lstm[rows], y[rows], val_mask[rows]
    lo, hi = model.config.min_blend, model.config.max_blend
    grid = np.linspace(lo, hi, 11) if hi > lo else np.array([lo])
    losses = []
    for g in grid:
        q = blend_spread(lstm, model.base, g)
        offsets = conformal_offsets(q, y, val_mask, 1 - model.config.band, model.config.conformal_pooled)
        q[..., 0] = np.minimum(q[..., 0] - offsets, q[..., 1])
        q[..., -1] = np.maximum(q[..., -1] + offsets, q[..., -2])
        diff = y[..., None] - q
        loss = np.maximum(levels * diff, (levels - 1) * diff)
        losses.append(loss[val_mask].mean())
    return float(grid[int(np.argmin(losses))])


def _fit_shrink(model: TrainedModel, series: Series, val_mask: np.ndarray, y: np.ndarray) -> float:
    """Keep the share of the predicted median move that lowers absolute error on validation.

    Hourly crypto returns are nearly unpredictable; a median that wanders costs point accuracy
    against "the price stays the same", so the data decides how much of it to trust."""
    if model.config.max_shrink == 0:
        return 0.0  # the median is the last price: nothing to choose
    raw, _ = model.predict_scaled(series)  # shrink 1, calibration 0 at this point
    mid = len(model.config.quantiles) // 2
    med, obs = raw[..., mid][val_mask], y[val_mask]
    grid = np.linspace(0.0, model.config.max_shrink, 11)
    errors = [np.mean(np.abs(g * med - obs)) for g in grid]
    return float(grid[int(np.argmin(errors))])
