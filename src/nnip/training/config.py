"""The training configuration: a strict mirror of the Python API, read from YAML.

Top-level keys: ``data``, ``model``, ``training`` (with ``training.loss``), ``ensemble``
(members, default 1), ``bootstrap``, ``kfold``, ``seed``, ``output``. Unknown keys are
errors naming the key and the closest valid one; values of the wrong type name the key
and the expected type. ``--set a.b=value`` overrides any key (value parsed as YAML).

The ``model`` section holds either ``name`` (a registry name) plus that term's
hyperparameters, or ``terms: [{name: ..., <hyperparameters>}, ...]`` for a sum of terms,
together with the potential-level keys ``elements``, ``e0``, ``scale`` and ``shift``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
import yaml
from ase.data import chemical_symbols

from nnip.errors import ConfigError
from nnip.nn.execution import MODES
from nnip.potentials.contract.registry import REGISTRY
from nnip.strict import (AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, SEED, Bounds, closest, from_dict,
                          load_yaml)
from nnip.training.loss import LossConfig
from nnip.training.recipes import with_recipe

__all__ = [
    "DataConfig", "SplitConfig", "ModelConfig", "TrainingConfig", "RunConfig",
    "load_config", "apply_overrides", "parse_config",
]


@dataclass
class SplitConfig:
    """Validation and test sets cut from ``data.train``, seeded by ``seed``.

    Args:
        val: validation structures, a fraction (< 1) or a count. test: test structures, likewise.
    """

    val: Annotated[float | int, NON_NEGATIVE] = 0.1
    test: Annotated[float | int, NON_NEGATIVE] = 0.0

    def __post_init__(self) -> None:
        for key in ("val", "test"):
            value = getattr(self, key)
            if isinstance(value, float) and value >= 1 and not value.is_integer():
                raise ConfigError(f"{key}: expected a fraction below 1 or a whole number of structures, got {value}")


@dataclass
class DataConfig:
    """Data files and how to read them (see :func:`nnip.read`).

    Args:
        train: training data file. val, test: optional separate files (replace the split).
        split: fractions or counts cut from ``train`` where ``val``/``test`` files are absent.
        isolated_atoms: file of single-atom frames giving E0 (with ``model.e0: isolated``).
        energy_unit: unit of energies in the files (default eV; kcal/mol for .npz).
        energy_key, forces_key, stress_key: label names in the files.
        weight_key: ``atoms.info`` key of per-structure loss weights.
    """

    train: str = ""
    val: str | None = None
    test: str | None = None
    split: SplitConfig = field(default_factory=SplitConfig)
    isolated_atoms: str | None = None
    energy_unit: str | None = None
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    weight_key: str = "weight"

    def __post_init__(self) -> None:
        if not self.train:
            raise ConfigError("train: a training data file is required (data.train)")
        for key in ("val", "test", "isolated_atoms"):
            if getattr(self, key) is not None and not str(getattr(self, key)).strip():
                raise ConfigError(f"{key}: an empty file name (leave the key out, or null, for none)")


_E0_METHODS = ("least_squares", "isolated", "zero")


@dataclass
class ModelConfig:
    """The potential to train.

    Args:
        terms: list of ``{name: <registry name>, <hyperparameters>}`` (``name`` alone is shorthand for one term).
        elements: chemical symbols; default: the elements of the training data.
        e0: "least_squares" (on composition, after the eV-valued terms), "isolated"
            (``data.isolated_atoms``), "zero", or a mapping symbol -> eV.
        scale, shift: "auto" or numbers in eV. Auto: scale = force RMS for potentials with
            dimensionless (network) terms, else 1; shift = mean residual energy per atom
            when E0 is fitted by least squares and there are network terms, else 0, and
            after training the trained model's mean residual per atom on the training set
            is added to it (a constant the force-dominated loss leaves unfit; forces unchanged).
        init: a model file (same terms and elements) whose weights, E0 and scale/shift start
            the training (fine-tuning, warm starts); with an ensemble file, member m starts
            member m of an ensemble run (cyclically when the file has fewer members).
    """

    terms: list[dict[str, Any]] = field(default_factory=list)
    elements: list[str] | None = None
    e0: str | dict[str, float] = "least_squares"
    scale: Annotated[str | float, POSITIVE] = "auto"
    shift: str | float = "auto"
    init: str | None = None

    def __post_init__(self) -> None:
        if not self.terms:
            raise ConfigError("name: a model needs a registry name (model.name) or terms (model.terms)")
        if isinstance(self.e0, str) and self.e0 not in _E0_METHODS:
            raise ConfigError(f"e0: expected one of {', '.join(_E0_METHODS)} or a mapping symbol -> eV, got {self.e0!r}")
        for symbol in (self.e0 if isinstance(self.e0, dict) else {}):
            if symbol not in chemical_symbols[1:]:
                raise ConfigError(f"e0: unknown element {symbol!r}{closest(symbol, chemical_symbols[1:])}")
        for symbol in self.elements or []:
            if symbol not in chemical_symbols[1:]:
                raise ConfigError(f"elements: unknown element {symbol!r}{closest(symbol, chemical_symbols[1:])}")
        for key in ("scale", "shift"):
            if isinstance(getattr(self, key), str) and getattr(self, key) != "auto":
                raise ConfigError(f"{key}: expected 'auto' or a number, got {getattr(self, key)!r}")


_POTENTIAL_KEYS = tuple(f.name for f in dataclasses.fields(ModelConfig))


@dataclass
class TrainingConfig:
    """Optimisation. Times in seconds, learning rates in 1/(loss units).

    The defaults below are those of a model without a training recipe (classical terms). A learned model's
    recipe (nnip.training.recipes; the table below) fills in every key the config leaves out, and the run's
    config.yaml shows the values used.

    Args:
        max_epochs: epochs to train at most. max_time: wall-time limit, s (stops cleanly).
        batch_size: structures per optimizer step. eval_batch_size: per evaluation batch.
        optimizer: "adam", "adamw", "lbfgs" (full-batch, for classical fits with few
            parameters), or "least_squares" (the closed-form fit of linear terms such as linear_ace,
            ridge strength chosen on the validation set; nnip.training.least_squares: no epochs, and
            only the loss weights, batch_size and dtype of this section apply).
        lr, weight_decay: learning rate (lbfgs: 1) and weight decay of the gradient-based optimizers.
        posterior_samples: K > 0 saves the Bayesian posterior of the model as an ensemble of 2K draws around it
            (antithetic pairs: its mean is the model), whose spread gives energy, force and stress variances,
            calibrated on the validation set like an ensemble's: with least_squares the posterior of all
            coefficients, for a network that of its last layer with the rest fixed (last-layer uncertainty,
            nnip.uncertainty.last_layer; needs validation data). Exact for K >= the number of coefficients,
            otherwise an unbiased estimate (nnip.uncertainty.posterior). 0: one model.
        ridge: how least_squares chooses its regularisation: "validation" (the lowest validation loss;
            GCV without validation data), "gcv" (generalised cross-validation) or "evidence" (the
            marginal likelihood, the Gaussian-process choice; nnip.training.least_squares).
        schedule: "constant", "plateau" (reduce on validation plateau) or "cosine" (with warm-up).
        warmup_epochs: linear warm-up (cosine). plateau_patience, plateau_factor: plateau rule.
        min_lr: floor of the learning rate.
        ema_decay: exponential moving average of the weights (e.g. 0.99); None switches it off.
        clip_grad_norm: clip the gradient norm to this value; None switches it off.
        early_stopping_patience: stop after this many epochs in a row without a better validation loss.
        keep: which weights the run ends with: "best" (the epoch with the lowest validation
            loss) or "last" (the final ones, e.g. after a cosine schedule has annealed; suits
            small or outlier-dominated validation sets, as in warm-started active learning).
        dtype: "float32" or "float64"; None keeps the model's own (float64 for classical terms).
        device: "cpu", "cuda", "cuda:1" ...
        memory: how message-passing models run their per-edge work outside force training (energy-only
            fits, validation): "auto" (default; streamed over chunks of edges on the CPU above 32 MiB per
            per-edge tensor), "keep", "recompute" or "stream" (nnip.nn.execution.Memory). Steps that
            train on forces always keep their activations (second derivatives).
        tensorboard: also write TensorBoard logs (needs the tensorboard package).
        progress: show a progress bar and one log line per epoch (False: silent).
        plots: write learning curves and parity plots (PNG) into the run folder.
        checkpoint_seconds: least wall time between checkpoints (and metrics.csv writes); 0:
            after every epoch. A resumed run repeats the epochs since the last checkpoint
            (identically, data order and RNG are restored) and ends with the same model.
        freeze: parameters kept fixed, as name patterns (e.g. "terms.0.sigma.*"; see
            ``potential.named_parameters()``).
        train_e0: also fit the per-element reference energies E0 (starting from ``model.e0``);
            for classical potentials fitted to absolute energies, whose E0 must follow
            the changing pair energies.
        loss: loss weights and penalties.
    """

    max_epochs: Annotated[int, AT_LEAST_ONE] = 100
    max_time: Annotated[float | None, POSITIVE] = None
    batch_size: Annotated[int, AT_LEAST_ONE] = 16
    eval_batch_size: Annotated[int, AT_LEAST_ONE] = 64
    optimizer: str = "adam"
    lr: Annotated[float, POSITIVE] = 1e-3
    weight_decay: Annotated[float, NON_NEGATIVE] = 0.0
    posterior_samples: Annotated[int, NON_NEGATIVE] = 0
    ridge: str = "validation"
    schedule: str = "plateau"
    warmup_epochs: Annotated[int, NON_NEGATIVE] = 0
    plateau_patience: Annotated[int, NON_NEGATIVE] = 10
    plateau_factor: Annotated[float, FRACTION] = 0.5
    min_lr: Annotated[float, NON_NEGATIVE] = 0.0
    ema_decay: Annotated[float | None, FRACTION] = None
    clip_grad_norm: Annotated[float | None, POSITIVE] = None
    early_stopping_patience: Annotated[int | None, NON_NEGATIVE] = None
    keep: str = "best"
    dtype: str | None = None
    device: str = "cpu"
    memory: str = "auto"
    tensorboard: bool = False
    progress: bool = True
    plots: bool = True
    checkpoint_seconds: Annotated[float, NON_NEGATIVE] = 0.0
    freeze: list[str] = field(default_factory=list)
    train_e0: bool = False
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        choices = {"optimizer": ("adam", "adamw", "lbfgs", "least_squares"), "schedule": ("constant", "plateau", "cosine"),
                   "dtype": (None, "float32", "float64"), "keep": ("best", "last"), "memory": MODES,
                   "ridge": ("validation", "gcv", "evidence")}
        for key, options in choices.items():
            if getattr(self, key) not in options:
                valid = ", ".join(str(o) for o in options if o is not None)
                raise ConfigError(f"{key}: expected one of {valid}, got {getattr(self, key)!r}")
        if self.max_epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("max_epochs, batch_size and eval_batch_size must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ConfigError(f"device: expected cpu, cuda or cuda:N, got {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device: {self.device!r} requested but this machine has no CUDA device")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be between 0 and 1, got {self.ema_decay}")


@dataclass
class RunConfig:
    """A whole training run: data, model, optimisation, ensemble or k-fold, seed and output folder.

    Args:
        ensemble: members trained with seeds seed..seed+M-1 and saved as one model file.
        bootstrap: train each member on a resample (with replacement) of the training set.
        kfold: k-fold cross-validation: k single models, per-fold and mean ± std test errors.
        seed: seeds the split, the weights and the data order. output: the run folder.
    """

    data: DataConfig
    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    ensemble: Annotated[int, AT_LEAST_ONE] = 1
    bootstrap: bool = False
    kfold: Annotated[int | None, Bounds(2)] = None
    seed: Annotated[int, SEED] = 0
    output: str = "runs/nnip"

    def __post_init__(self) -> None:
        if self.ensemble < 1:
            raise ConfigError(f"ensemble: expected at least 1 member, got {self.ensemble}")
        if self.kfold is not None and self.ensemble > 1:
            raise ConfigError("kfold: k-fold cross-validation trains single models; set ensemble: 1")
        if self.kfold is not None and (self.data.test or self.data.val or self.data.split.test):
            raise ConfigError("kfold: each fold is the test set of one model and validation is cut from the "
                              "rest by data.split.val; remove data.test, data.val and data.split.test")

    def as_dict(self) -> dict[str, Any]:
        """Plain data (YAML-ready), with the model in its ``terms`` form."""
        return dataclasses.asdict(self)


def _term_list(model: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Split the model section into term dicts and potential-level keys."""
    model = dict(model)
    if "name" in model and "terms" in model:
        raise ConfigError("model: give either name (one term) or terms (a list), not both")
    if "terms" in model:
        terms = model.pop("terms")
        if not isinstance(terms, list) or not all(isinstance(t, Mapping) and "name" in t for t in terms):
            raise ConfigError("model.terms: expected a list of mappings, each with a name")
        unknown = [k for k in model if k not in _POTENTIAL_KEYS]
        if unknown:
            raise ConfigError(f"model.{unknown[0]}: unknown key{closest(unknown[0], _POTENTIAL_KEYS)}; "
                              f"valid keys: terms, {', '.join(_POTENTIAL_KEYS[1:])}")
        return [dict(t) for t in terms], model
    if "name" not in model:
        raise ConfigError("model.name: a registry name is required (or model.terms); known: " + ", ".join(REGISTRY))
    name = model.pop("name")
    potential = {k: model.pop(k) for k in list(model) if k in _POTENTIAL_KEYS}
    return [{"name": name, **model}], potential


def _check_terms(terms: list[dict[str, Any]], shorthand: bool) -> None:
    for k, term in enumerate(terms):
        where = "model" if shorthand else f"model.terms[{k}]"
        name = term["name"]
        if name not in REGISTRY:
            raise ConfigError(f"{where}.name: unknown potential {name!r}{closest(str(name), REGISTRY)}; "
                              f"known: {', '.join(REGISTRY)}")
        fields = [f.name for f in dataclasses.fields(REGISTRY[name][0])]
        for key in term:
            if key != "name" and key not in fields:
                raise ConfigError(f"{where}.{key}: unknown key{closest(key, fields + list(_POTENTIAL_KEYS))}; "
                                  f"valid keys for {name}: {', '.join(fields)}")


def parse_config(data: Mapping[str, Any], where: str = "config") -> RunConfig:
    """Validate plain data (from YAML) into a RunConfig; ConfigError names the offending key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys at the top level, got {type(data).__name__}")
    data = copy.deepcopy(dict(data))
    valid = [f.name for f in dataclasses.fields(RunConfig)]
    for key in data:
        if key not in valid:
            raise ConfigError(f"{where}: unknown key {key!r}{closest(key, valid)}; valid keys: {', '.join(valid)}")
    for required in ("data", "model"):
        if not isinstance(data.get(required), Mapping):
            raise ConfigError(f"{where}: a {required!r} section is required")
    data["training"] = with_recipe(data.get("training"), data["model"])
    try:
        terms, potential = _term_list(data["model"])
        _check_terms(terms, shorthand="name" in data["model"])
        data["model"] = from_dict(ModelConfig, {"terms": terms, **potential}, "model")
        data["data"] = from_dict(DataConfig, data["data"], "data")
        return from_dict(RunConfig, data, "")
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides (value parsed as YAML) to nested plain data."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. training.lr=0.01")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def read_config_data(path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The plain data of a YAML config file with ``--set`` overrides applied (not validated)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    data = load_yaml(path) or {}
    return apply_overrides(data, overrides) if isinstance(data, dict) else data


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[RunConfig, dict[str, Any]]:
    """Read a YAML config, apply overrides, validate; returns (config, resolved plain data)."""
    config = parse_config(read_config_data(path, overrides), where=str(path))
    return config, config.as_dict()
