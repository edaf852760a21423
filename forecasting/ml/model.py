"""The quantile LSTM: one pass over a long chunk gives a forecast of all H steps at every step."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, quantiles: torch.Tensor) -> torch.Tensor:
    """Mean pinball loss over masked entries. pred (..., H, Q), y and mask (..., H); a float mask
    weighs each entry. The divisor counts the entries, not their weights, so a batch of old,
    light targets moves the weights less than a batch of recent ones."""
    diff = y.unsqueeze(-1) - pred
    # max(q d, (q - 1) d) written as one product: the same loss in two thirds of the time that
    # torch.maximum and its backward took (profiled on a training step).
    loss = (diff * (quantiles - (diff < 0).to(diff.dtype))).sum(-1)
    m = mask.to(loss.dtype)
    return (loss * m).sum() / ((m > 0).sum() * 1.0).clamp_min(1.0)


class QuantileLSTM(pl.LightningModule):
    def __init__(
        self,
        *,
        n_features: int,
        horizon: int,
        quantiles: tuple[float, ...],
        hidden: int = 64,
        layers: int = 1,
        dropout: float = 0.0,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        burn_in: int = 48,
        anchored: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.horizon = horizon
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32))
        self.lstm = nn.LSTM(
            n_features, hidden, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.head = nn.Linear(hidden, horizon * len(quantiles))

    def forward(self, x: torch.Tensor, state=None):
        out, state = self.lstm(x, state)
        return self._quantiles(out), state

    def _quantiles(self, out: torch.Tensor) -> torch.Tensor:
        raw = self.head(out).unflatten(-1, (self.horizon, len(self.hparams.quantiles)))
        if self.hparams.anchored:
            # The median is the last price (0 in scaled units); the other quantiles are positive
            # distances below and above it, learnt as they are served.
            mid = len(self.hparams.quantiles) // 2
            steps = F.softplus(raw) + 1e-4
            up = torch.cumsum(steps[..., mid + 1 :], dim=-1)
            down = -torch.flip(torch.cumsum(torch.flip(steps[..., :mid], dims=[-1]), dim=-1), dims=[-1])
            return torch.cat([down, torch.zeros_like(raw[..., mid : mid + 1]), up], dim=-1)
        # Quantiles that cannot cross: the lowest, then positive increments. Contiguous first:
        # softplus on the strided slice took ten times as long.
        base = raw[..., :1]
        steps = F.softplus(raw[..., 1:].contiguous()) + 1e-4
        return torch.cat([base, base + torch.cumsum(steps, dim=-1)], dim=-1)

    def _loss(self, batch):
        x, y, mask = batch
        out, _ = self.lstm(x)
        # The burn-in steps only warm the state: no head, no loss there.
        burn = self.hparams.burn_in
        return pinball_loss(self._quantiles(out[:, burn:]), y[:, burn:], mask[:, burn:], self.quantiles)

    def training_step(self, batch, batch_idx):
        loss = self._loss(batch)
        self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=False, batch_size=batch[0].shape[0])
        return loss

    def validation_step(self, batch, batch_idx):
        x, y, mask = batch
        pred, _ = self(x)
        loss = pinball_loss(pred, y, mask, self.quantiles)  # val mask already excludes the warm-up
        self.log("val_loss", loss, on_epoch=True, on_step=False, prog_bar=False, batch_size=x.shape[0])
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


class QuantileEnsemble(nn.Module):
    """Several LSTMs trained from different seeds; their quantiles are averaged (quantile averaging
    keeps them ordered). One seed's luck in a small, noisy data set then weighs a third as much."""

    def __init__(self, members: list[QuantileLSTM]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor, state=None):
        preds = [m(x)[0] for m in self.members]
        return torch.stack(preds).mean(dim=0), None
