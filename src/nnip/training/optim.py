"""Optimizers, learning-rate schedules and the exponential moving average of weights.

Schedules step once per epoch and keep their state as plain numbers, so a checkpoint
restores them exactly:

- constant: lr = lr0.
- plateau: multiply lr by ``factor`` when the validation loss has not improved for
  ``patience`` epochs (never below ``min_lr``).
- cosine with warm-up: lr = lr0 (e+1)/W for the first W epochs, then
  lr = min_lr + (lr0 - min_lr) (1 + cos(pi t)) / 2 with t going from 0 to 1 at max_epochs,
  or at ``max_time`` seconds when that comes first (t is the larger of the two fractions),
  so a run with a wall-clock budget anneals within it. The time-based part depends on the
  machine's speed, so a resumed run follows the same curve only up to timing noise.

EMA: theta_ema <- d theta_ema + (1 - d) theta after every step, with
d = min(decay, (1 + n) / (10 + n)) after n updates so early averages are not dominated
by the random initial weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager

import torch

__all__ = ["build_optimizer", "Schedule", "EMA"]


def build_optimizer(parameters: Iterable[torch.nn.Parameter], name: str, lr: float, weight_decay: float):
    """Adam, AdamW or L-BFGS over ``parameters``.

    L-BFGS (strong-Wolfe line search, up to 20 iterations per epoch on the full training
    set) suits few-parameter classical fits; Adam/AdamW suit networks and mini-batches.
    """
    parameters = list(parameters)
    if name == "lbfgs":
        return torch.optim.LBFGS(parameters, lr=lr, max_iter=20, history_size=20,
                                 line_search_fn="strong_wolfe")
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


class Schedule:
    """Per-epoch learning rate (see module docstring); ``step`` returns the lr for the next epoch."""

    def __init__(self, kind: str, lr: float, max_epochs: int, warmup_epochs: int = 0,
                 patience: int = 10, factor: float = 0.5, min_lr: float = 0.0, max_time: float | None = None):
        self.kind, self.lr0, self.max_epochs, self.max_time = kind, lr, max_epochs, max_time
        self.warmup, self.patience, self.factor, self.min_lr = warmup_epochs, patience, factor, min_lr
        self.lr = self.initial_lr()
        self.best = math.inf
        self.bad_epochs = 0

    def initial_lr(self) -> float:
        if self.kind == "cosine" and self.warmup > 0:
            return self.lr0 / self.warmup
        return self.lr0

    def step(self, epoch: int, val_loss: float, elapsed: float = 0.0) -> float:
        """Learning rate after finishing ``epoch`` (0-based) with validation loss ``val_loss``.

        ``elapsed``: training seconds so far (used by cosine when ``max_time`` is set).
        """
        if self.kind == "plateau":
            if val_loss < self.best:
                self.best, self.bad_epochs = val_loss, 0
            else:
                self.bad_epochs += 1
                if self.bad_epochs > self.patience:
                    self.lr, self.bad_epochs = max(self.lr * self.factor, self.min_lr), 0
        elif self.kind == "cosine":
            e = epoch + 1
            if e < self.warmup:
                self.lr = self.lr0 * (e + 1) / self.warmup
            else:
                t = (e - self.warmup) / max(self.max_epochs - self.warmup, 1)
                if self.max_time:
                    t = max(t, elapsed / self.max_time)
                t = min(t, 1.0)
                self.lr = self.min_lr + (self.lr0 - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        return self.lr

    def state_dict(self) -> dict[str, float]:
        """Learning rate and plateau counters (plain numbers, for checkpoints)."""
        return {"lr": self.lr, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.lr, self.best, self.bad_epochs = float(state["lr"]), float(state["best"]), int(state["bad_epochs"])


class EMA:
    """Exponential moving average of named tensors (a model's trainable parameters, E0 when trained).

    The tensors are updated in place by the optimizer, so holding them by reference is enough.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], decay: float):
        self.decay = decay
        self.updates = 0
        self.tensors = tensors
        self.shadow = {n: t.detach().clone() for n, t in tensors.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Blend the current values into the average (after each optimizer step)."""
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, tensor in self.tensors.items():
            self.shadow[name].mul_(d).add_(tensor.detach(), alpha=1 - d)
        self.updates += 1

    @contextmanager
    def applied(self):
        """Temporarily put the averaged values into the tensors."""
        saved = {n: t.detach().clone() for n, t in self.tensors.items()}
        self.copy_to_tensors(self.shadow)
        try:
            yield
        finally:
            self.copy_to_tensors(saved)

    @torch.no_grad()
    def copy_to_tensors(self, values: dict[str, torch.Tensor]) -> None:
        """Overwrite the tracked tensors with ``values`` (name -> tensor)."""
        for name, tensor in self.tensors.items():
            tensor.copy_(values[name])

    def state_dict(self) -> dict:
        """Number of updates and the averages (plain data and tensors, for checkpoints)."""
        return {"updates": self.updates, "shadow": {n: t.clone() for n, t in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.updates = int(state["updates"])
        for name, tensor in state["shadow"].items():
            self.shadow[name].copy_(tensor)
