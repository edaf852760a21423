"""The reference recipe users already know (the original Make Us Rich), for benchmarks only.

Features calendar + OHLC + close-open, MinMaxScaler(-1, 1), a sliding window of 120 steps, an LSTM
of 2 layers x 128 with dropout 0.2, AdamW lr 1e-4, batch 64, early stopping with patience 2 on the
validation loss, and the next-hour close as a single value trained with MSE.

Where the original leaves a choice, the one taken here is the kinder one to the recipe:
- the scaler is fitted on every candle before the test period (the original fitted it on its
  training frame, which also held the validation windows), so the validation prices are in range;
- the weights of the best validation epoch are kept (the original checkpointed the best epoch);
- windows are built with numpy instead of a list of DataFrame slices, and the calendar features
  without iterrows: the same numbers, far less time, so the timing does not penalise it for that.
Gaps are not treated specially, as in the original.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping
from sklearn.preprocessing import MinMaxScaler
from torch import nn

from forecasting.ml.data import Series

FEATURES = (
    "day_of_week",
    "day_of_month",
    "week_of_year",
    "month_of_year",
    "open",
    "high",
    "low",
    "close",
    "close_change",
)
CLOSE = FEATURES.index("close")


@dataclass(frozen=True)
class ReferenceConfig:
    window: int = 120
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.2
    lr: float = 1e-4
    batch_size: int = 64
    # The original validated one window per batch; a bigger batch gives the same epoch loss, faster.
    val_batch_size: int = 256
    patience: int = 2
    max_epochs: int = 10  # the original allowed 100; capped so a benchmark run ends in minutes
    seed: int = 42
    threads: int = 1


def features(series: Series) -> np.ndarray:
    """(n, 9) in the order of FEATURES, from open times (UTC) and prices."""
    ts = pd.to_datetime(series.times, unit="ms", utc=True)
    return np.column_stack(
        [
            ts.dayofweek.to_numpy(),
            ts.day.to_numpy(),
            ts.isocalendar().week.to_numpy(),
            ts.month.to_numpy(),
            series.open,
            series.high,
            series.low,
            series.close,
            series.close - series.open,
        ]
    ).astype(np.float64)


class LSTMRegressor(nn.Module):
    def __init__(self, n_features: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=n_features, hidden_size=hidden, num_layers=layers, dropout=dropout, batch_first=True
        )
        self.regressor = nn.Linear(hidden, 1)

    def forward(self, x):
        _, (hidden, _) = self.lstm(x)
        return self.regressor(hidden[-1])  # the last layer's state after the whole window


class PricePredictor(pl.LightningModule):
    def __init__(self, *, n_features: int, hidden: int, layers: int, dropout: float, lr: float):
        super().__init__()
        self.save_hyperparameters()
        self.model = LSTMRegressor(n_features, hidden, layers, dropout)
        self.criterion = nn.MSELoss()

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self(x), y.unsqueeze(1))
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = self.criterion(self(x), y.unsqueeze(1))
        self.log("val_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr)


class _KeepBest(Callback):
    def __init__(self):
        self.best, self.state, self.best_epoch = math.inf, None, 0

    def on_validation_epoch_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        loss = float(trainer.callback_metrics["val_loss"])
        if loss < self.best:
            self.best, self.best_epoch = loss, trainer.current_epoch + 1
            self.state = copy.deepcopy(module.state_dict())


def _windows(scaled: np.ndarray, labels: np.ndarray, window: int):
    """Inputs rows j-window..j-1 and the scaled close at j, for each label position j."""
    view = np.lib.stride_tricks.sliding_window_view(scaled, window, axis=0)  # (n-window+1, F, window)
    x = np.ascontiguousarray(view[labels - window].transpose(0, 2, 1))
    return (torch.tensor(x, dtype=torch.float32), torch.tensor(scaled[labels, CLOSE], dtype=torch.float32))


@dataclass
class ReferenceModel:
    config: ReferenceConfig
    module: PricePredictor
    scaler: MinMaxScaler
    meta: dict = field(default_factory=dict)

    def predict_next_close(self, series: Series, origins: np.ndarray) -> np.ndarray:
        """The close at t+1 for each origin t, from the window of candles ending at t."""
        scaled = self.scaler.transform(features(series))
        x, _ = _windows(scaled, np.asarray(origins) + 1, self.config.window)
        self.module.eval()
        with torch.no_grad():
            out = torch.cat([self.module(x[i : i + 512]) for i in range(0, len(x), 512)])[:, 0].numpy()
        # Back to a price through the close column of the scaler.
        return (out.astype(np.float64) - self.scaler.min_[CLOSE]) / self.scaler.scale_[CLOSE]


def train_reference(
    series: Series, *, val_start: int, test_start: int, config: ReferenceConfig = ReferenceConfig()
) -> ReferenceModel:
    """Train on windows whose label is before `val_start`, validate on labels in [val_start, test_start)."""
    started = time.perf_counter()
    pl.seed_everything(config.seed, workers=False, verbose=False)
    torch.set_num_threads(config.threads)
    feats = features(series.head(test_start))
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(feats)
    scaled = scaler.transform(feats)
    train_x, train_y = _windows(scaled, np.arange(config.window, val_start), config.window)
    val_x, val_y = _windows(scaled, np.arange(val_start, test_start), config.window)
    # Shuffle off, as in the original.
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(train_x, train_y), batch_size=config.batch_size, shuffle=False
    )
    val_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(val_x, val_y), batch_size=config.val_batch_size, shuffle=False
    )
    module = PricePredictor(
        n_features=len(FEATURES), hidden=config.hidden, layers=config.layers, dropout=config.dropout, lr=config.lr
    )
    best = _KeepBest()
    stopper = EarlyStopping(monitor="val_loss", patience=config.patience, mode="min")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
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
            callbacks=[stopper, best],
        )
        trainer.fit(module, train_loader, val_loader)
    module.load_state_dict(best.state)
    return ReferenceModel(
        config=config,
        module=module,
        scaler=scaler,
        meta={
            "epochs": int(trainer.current_epoch),
            "best_epoch": best.best_epoch,
            "early_stopped": bool(stopper.stopped_epoch),
            "val_loss": best.best,
            "train_windows": int(len(train_y)),
            "val_windows": int(len(val_y)),
            "train_seconds": time.perf_counter() - started,
        },
    )
