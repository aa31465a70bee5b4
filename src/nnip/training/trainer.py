"""One training loop for every potential: energies, forces and stress by the same loss.

Each epoch: shuffle (seeded by seed and epoch, so a resumed run sees the same order),
optimizer steps on batches with forces by autograd (``create_graph``), EMA update,
gradient clipping, then validation (with the EMA weights), learning-rate schedule, early
stopping, best-weights tracking, and a checkpoint from which ``resume`` continues exactly.
``max_time`` is checked after every step; the run then stops cleanly with the best
weights of the finished epochs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from nnip import keys
from nnip.data.dataset import AtomicDataset
from nnip.errors import ConfigError, NumericalError
from nnip.potentials.contract.base import Potential
from nnip.progress import stage_bar
from nnip.training.checkpoint import load_checkpoint, save_checkpoint, write_metrics_csv
from nnip.training.config import TrainingConfig
from nnip.training.distributed import Context
from nnip.training.loss import combine, loss_terms
from nnip.training.metrics import error_metrics, predict, prediction_loss
from nnip.training.optim import EMA, Schedule, build_optimizer

__all__ = ["Trainer", "TrainResult", "resolve_dtype", "tensorboard_writer"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_dtype(name: str | None, potential: Potential) -> torch.dtype:
    """The training dtype: as configured, or the model's own."""
    return _DTYPES[name] if name else potential.dtype


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`: epochs finished, why it stopped, time and history."""

    epochs: int
    stopped: str
    train_seconds: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)


class Trainer:
    """Fit ``potential`` to ``train`` (validated on ``val``) as ``config`` says.

    Args:
        potential: the model; its E0/scale/shift should already be set from the data.
        train, val: datasets built for the potential's cutoff (val may be None: the
            training loss then drives the schedule, early stopping and best weights).
        config: optimisation settings. seed: data order and bootstrap seed.
        directory: run folder for checkpoint.pt and metrics.csv (None: keep nothing).
        context: data-parallel rank and world size.
    """

    def __init__(self, potential: Potential, train: AtomicDataset, val: AtomicDataset | None,
                 config: TrainingConfig, seed: int = 0, directory: Path | None = None,
                 context: Context | None = None, label: str | None = None):
        self.config, self.seed, self.directory = config, seed, directory
        self.label = label  # a stage of a longer run ("generation 1/2, member 3/4"): one bar, no log lines
        self.context = context or Context()
        self.device = torch.device(config.device)
        self.dtype = resolve_dtype(config.dtype, potential)
        self.potential = potential.to(device=self.device, dtype=self.dtype)
        self.potential.memory = config.memory
        self.train_set, self.val_set = train, val
        self.parameters = self._trainable(tuple(config.freeze))
        self.model = self._wrap(self.potential)
        self.optimizer = build_optimizer(self.parameters.values(), config.optimizer, config.lr, config.weight_decay)
        self.schedule = Schedule(config.schedule, config.lr, config.max_epochs, config.warmup_epochs,
                                 config.plateau_patience, config.plateau_factor, config.min_lr, config.max_time)
        self.ema = EMA(self.parameters, config.ema_decay) if config.ema_decay else None
        self.epoch, self.elapsed, self.bad_epochs, self.best_epoch = 0, 0.0, 0, -1
        self.best_loss = math.inf
        self.best_state = None
        self.history: list[dict[str, float]] = []
        self._val_text, self._drawn = "", -math.inf
        self._saved_at, self._unsaved = -math.inf, None  # last checkpoint (perf_counter), pending row
        self.stress = config.loss.stress_weight > 0 and train.has(keys.STRESS)
        self.forces = config.loss.forces_weight > 0

    def _trainable(self, freeze: tuple[str, ...]) -> dict[str, torch.nn.Parameter]:
        params = {}
        for name, p in self.potential.named_parameters():
            p.requires_grad_(not any(fnmatch.fnmatch(name, pattern) for pattern in freeze))
            if p.requires_grad:
                params[name] = p
        unmatched = [p for p in freeze if not any(fnmatch.fnmatch(n, p) for n, _ in self.potential.named_parameters())]
        if unmatched:
            names = ", ".join(n for n, _ in self.potential.named_parameters())
            raise ConfigError(f"training.freeze: {unmatched[0]!r} matches no parameter; parameters: {names}")
        if self.config.train_e0:  # a float64 buffer made a leaf with a gradient; saved with the weights
            params["e0"] = self.potential.e0.requires_grad_(True)
        if not params:
            raise ConfigError("the model has no trainable parameters (check training.freeze)")
        return params

    def _average_e0_gradient(self) -> None:
        """DDP averages parameter gradients only; E0 is a buffer, so average its gradient here."""
        if self.config.train_e0 and self.context.distributed and self.potential.e0.grad is not None:
            self.potential.e0.grad.copy_(self.context.sum(self.potential.e0.grad) / self.context.world_size)

    def _wrap(self, potential: Potential) -> torch.nn.Module:
        if not self.context.distributed:
            return potential
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(potential, device_ids=ids)

    # -- one epoch ---------------------------------------------------------------------------
    def _order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.train_set), generator=generator).tolist()

    def _loss(self, indices: list[int], counts: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """This rank's share of the loss of a global batch, scaled so DDP's gradient average is exact.

        ``counts`` are the label counts to divide by (default: of this global batch, summed
        over ranks). A rank whose share is empty runs one structure with weight zero, so
        every rank takes part in each gradient reduction.
        """
        shard = self.context.shard(indices)
        empty = len(shard) == 0
        graph, targets = self.train_set.batch(shard or indices[:1], self.dtype, self.device)
        out = self.model(graph, compute_forces=self.forces, compute_stress=self.stress, create_graph=True)
        terms = loss_terms(out, targets, graph.n_atoms.to(torch.float64), graph.structure_index, self.config.loss)
        if empty:
            terms = {k: (numerator * 0.0, count * 0) for k, (numerator, count) in terms.items()}
        if counts is None:
            counts = {k: self.context.sum(count) for k, (_, count) in terms.items()}
        return combine(terms, self.config.loss, counts) * self.context.world_size

    def _global_value(self, loss: torch.Tensor | float) -> float:
        """The single-process value of a loss whose per-rank shares were scaled by world_size."""
        return float(self.context.sum(torch.as_tensor(loss, dtype=torch.float64).detach())) / self.context.world_size

    def _step(self, indices: list[int]) -> float:
        """One optimizer step on a global batch; returns its loss. NumericalError, before the weights change,
        when the loss or the gradient is not finite."""
        loss = self._loss(indices)
        value = self._global_value(loss)
        self._check_finite("loss", value)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._average_e0_gradient()
        self._check_finite("gradient norm", self._gradient_norm())
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        return value

    def _gradient_norm(self) -> float:
        """The total gradient norm, computed once: clipped to ``clip_grad_norm`` when set (the norm before)."""
        parameters = list(self.parameters.values())
        if self.config.clip_grad_norm:
            return float(torch.nn.utils.clip_grad_norm_(parameters, self.config.clip_grad_norm))
        gradients = [p.grad for p in parameters if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(gradients)) if gradients else 0.0

    def _check_finite(self, what: str, value: float) -> None:
        """NumericalError naming the epoch and the likely causes when ``value`` is NaN or inf."""
        if math.isfinite(value):
            return
        raise NumericalError(
            f"epoch {self.epoch + 1}: the {what} is {value}; training stopped, and no model.pt was written "
            f"(checkpoint.pt keeps the last finished epoch, {self.epoch}). Likely causes: a learning rate too "
            f"high for this model (training.lr is {self.config.lr:g}; try one ten times smaller) or labels of "
            "extreme magnitude in the data (check them with nnip info)")

    def _full_batch_loss(self) -> float:
        """Loss and gradient over the whole training set (for L-BFGS), accumulated batch by batch."""
        self.optimizer.zero_grad(set_to_none=True)
        order = list(range(len(self.train_set)))
        counts = self._label_counts(order)
        chunk = self.config.batch_size * self.context.world_size
        total = 0.0
        for start in range(0, len(order), chunk):
            loss = self._loss(order[start:start + chunk], counts)
            loss.backward()
            total += float(loss.detach())
        self._average_e0_gradient()
        total = self._global_value(total)
        self._check_finite("loss", total)
        return total

    def _label_counts(self, order: list[int]) -> dict[str, torch.Tensor]:
        """Numbers of energies, force-carrying atoms and stresses in the whole training set."""
        samples = [self.train_set.samples[i] for i in order]
        return {
            keys.ENERGY: torch.tensor(sum(bool(torch.isfinite(s.energy)) for s in samples)),
            keys.FORCES: torch.tensor(sum(int(torch.isfinite(s.forces).all(dim=1).sum()) for s in samples)),
            keys.STRESS: torch.tensor(sum(bool(torch.isfinite(s.stress).all()) for s in samples)),
        }

    def _train_epoch(self, epoch: int, started: float, bar) -> float | None:
        """Mean batch loss of the epoch, or None when max_time ran out during it."""
        if isinstance(self.optimizer, torch.optim.LBFGS):
            loss = self.optimizer.step(self._full_batch_loss)
            if self.ema is not None:
                self.ema.update()
            return float(loss)
        order, size = self._order(epoch), self.config.batch_size
        losses, steps = [], -(-len(order) // size)
        for start in range(0, len(order), size):
            losses.append(self._step(order[start:start + size]))
            bar.set_postfix_str(f"step {len(losses)}/{steps} loss {losses[-1]:.4g}{self._val_text}", refresh=False)
            if time.monotonic() - self._drawn >= 0.5:  # redraw at most twice a second within an epoch
                bar.refresh()
                self._drawn = time.monotonic()
            if self._time_up(started):
                return None
        return sum(losses) / len(losses)

    def _time_up(self, started: float) -> bool:
        if self.config.max_time is None:
            return False
        return self._elapsed(started) >= self.config.max_time

    def _elapsed(self, started: float) -> float:
        """Training seconds so far, including earlier sessions (the slowest rank's under DDP)."""
        elapsed = self.elapsed + time.perf_counter() - started
        if self.context.distributed:  # every rank must stop at the same step
            elapsed = self._global_value(elapsed)
        return elapsed

    def _validate(self, train_loss: float) -> tuple[float, dict[str, float]]:
        if self.val_set is None or len(self.val_set) == 0:
            return train_loss, {}
        predictions = predict(self.potential, self.val_set, self.config.eval_batch_size, self.device)
        metrics = error_metrics(predictions)
        return prediction_loss(predictions, self.config.loss), metrics

    def _weights(self):
        """Context in which the potential holds the weights to evaluate and keep (EMA when used)."""
        return self.ema.applied() if self.ema else contextlib.nullcontext()

    # -- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until max_epochs, early stopping or max_time; leaves the best weights in the potential."""
        if resume:
            self.load(self.directory / "checkpoint.pt")
        if self.best_state is None:  # kept when max_time ends the run before an epoch finishes
            self.best_state = {k: v.detach().clone() for k, v in self.potential.state_dict().items()}
        started = time.perf_counter()
        stopped = "max_epochs"
        bar = self._bar()
        writer = self._tensorboard()
        while self.epoch < self.config.max_epochs:
            for group in self.optimizer.param_groups:
                group["lr"] = self.schedule.lr
            train_loss = self._train_epoch(self.epoch, started, bar)
            if train_loss is None:
                stopped = "max_time"
                self._unsaved = None  # the weights moved past that epoch: keep the last consistent checkpoint
                break
            with self._weights():
                val_loss, metrics = self._validate(train_loss)
                self._check_finite("validation loss", val_loss)
                improved = val_loss < self.best_loss
                if improved or self.config.keep == "last":
                    self.best_state = {k: v.detach().clone() for k, v in self.potential.state_dict().items()}
            row = self._record(train_loss, val_loss, metrics, started, improved)
            self.schedule.step(self.epoch, val_loss, self._elapsed(started))
            self.epoch += 1
            self._end_epoch(row, bar, writer)
            if self.config.early_stopping_patience is not None and self.bad_epochs >= self.config.early_stopping_patience:
                stopped = "early_stopping"
                break
            if self._time_up(started):
                stopped = "max_time"
                break
        bar.close()
        self._save_pending()
        if writer is not None:
            writer.close()
        self.elapsed += time.perf_counter() - started
        self._load_best()
        return TrainResult(self.epoch, stopped, self.elapsed, self.best_epoch, self.history)

    def _record(self, train_loss, val_loss, metrics, started, improved) -> dict[str, float]:
        if improved:
            self.best_loss, self.best_epoch, self.bad_epochs = val_loss, self.epoch, 0
        else:
            self.bad_epochs += 1
        if self.config.keep == "last":
            self.best_epoch = self.epoch  # the epoch whose weights are kept
        row = {"epoch": self.epoch + 1, "time": self.elapsed + time.perf_counter() - started,
               "lr": self.schedule.lr, "train_loss": train_loss, "val_loss": val_loss}
        row.update({f"val_{k}": float(v) for k, v in metrics.items() if not k.startswith("n_")})
        self.history.append(row)
        return row

    def _end_epoch(self, row, bar, writer) -> None:
        if not self.context.main:
            return
        self._unsaved = row
        if time.perf_counter() - self._saved_at >= self.config.checkpoint_seconds:
            self._save_pending()
        if writer is not None:
            for key, value in row.items():
                if key != "epoch" and math.isfinite(value):
                    writer.add_scalar(key, value, int(row["epoch"]))
        self._val_text = "".join(f" | val {k} {1000 * row[c]:.3g} {u}" for c, k, u in _LIVE if c in row)
        bar.update(1)
        if self.config.progress and self.label is None:
            bar.write(_log_line(row))

    def _bar(self) -> tqdm:
        """The epochs' progress bar: with ``progress``; for a labelled stage, on a terminal only, and gone when done."""
        if self.label is None:
            return tqdm(total=self.config.max_epochs, initial=self.epoch, desc="epochs", unit="epoch",
                        disable=not (self.config.progress and self.context.main), dynamic_ncols=True)
        return stage_bar(self.config.max_epochs, self.label, "epoch", self.epoch, self.context.main)

    def _save_pending(self) -> None:
        """Write the checkpoint and metrics.csv of the last finished epoch, if not written yet."""
        if self._unsaved is None or self.directory is None or not self.context.main:
            return
        save_checkpoint(self.state_dict(self._unsaved["time"]), self.directory / "checkpoint.pt")
        write_metrics_csv(self.history, self.directory / "metrics.csv")
        self._saved_at, self._unsaved = time.perf_counter(), None

    def _tensorboard(self):
        if not (self.config.tensorboard and self.context.main and self.directory is not None):
            return None
        return tensorboard_writer()(str(self.directory / "tensorboard"))

    def _load_best(self) -> None:
        """Best weights of the finished epochs; the initial weights when none finished."""
        self.potential.load_state_dict(self.best_state)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self, elapsed: float) -> dict:
        return {
            "epoch": self.epoch, "elapsed": elapsed, "best_loss": self.best_loss, "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs, "history": self.history,
            "model": {k: v.detach().cpu() for k, v in self.potential.state_dict().items()},
            "best_model": {k: v.cpu() for k, v in (self.best_state or {}).items()},
            "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
            "ema": self.ema.state_dict() if self.ema else {}, "rng": torch.get_rng_state(),
        }

    def load(self, path: Path) -> None:
        """Continue from a checkpoint written by this trainer's configuration."""
        state = load_checkpoint(path)
        self.potential.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.ema is not None and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.best_state = {k: v.to(self.device) for k, v in state["best_model"].items()} or None
        self.epoch, self.elapsed = int(state["epoch"]), float(state["elapsed"])
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.bad_epochs, self.history = int(state["bad_epochs"]), list(state["history"])
        torch.set_rng_state(state["rng"])


def tensorboard_writer():
    """TensorBoard's SummaryWriter class; ConfigError saying what to install when it is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError("training.tensorboard: install the tensorboard package (pip install tensorboard)") from None
    return SummaryWriter


_LIVE = (("val_energy_mae_per_atom", "E", "meV/atom"), ("val_forces_mae", "F", "meV/Å"))


def _log_line(row: dict[str, float]) -> str:
    parts = [f"epoch {int(row['epoch']):4d}", f"loss {row['train_loss']:.4g}", f"val {row['val_loss']:.4g}"]
    if "val_energy_mae_per_atom" in row:
        parts.append(f"E {1000 * row['val_energy_mae_per_atom']:.3g} meV/atom")
    if "val_forces_mae" in row:
        parts.append(f"F {1000 * row['val_forces_mae']:.3g} meV/Å")
    parts += [f"lr {row['lr']:.3g}", f"{row['time']:.1f} s"]
    return "  ".join(parts)
