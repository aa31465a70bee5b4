"""A training run: one model, an ensemble of M members, or k-fold cross-validation.

Run directory (DESIGN.md): ``config.yaml`` (resolved), ``model.pt`` (best weights, EMA if
used; for ensembles and k-fold the members as one ensemble file), ``checkpoint.pt``,
``metrics.csv``, ``report.json`` (metrics per split in the evaluate keys, plus
``train_seconds, epochs, n_parameters``) and PNG plots. Ensemble members live in
``members/member_<m>/`` and folds in ``folds/fold_<k>/``, each a complete run directory,
so ``resume`` skips finished ones and continues the interrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from nnip.data.dataset import AtomicDataset, kfold_splits, labels_of, random_split
from nnip.keys import ENERGY
from nnip.errors import ConfigError
from nnip.plots import learning_curves
from nnip.potentials.contract.ensemble import Ensemble
from nnip.potentials.files.serialization import load, save
from nnip.runlock import run_lock
from nnip.training import distributed
from nnip.training.build import build_model
from nnip.training.checkpoint import write_metrics_csv
from nnip.training.config import RunConfig, apply_overrides, load_config, parse_config
from nnip.training.evaluate import evaluate, to_json, write_parity_plots
from nnip.training.least_squares import check_least_squares, fit_least_squares
from nnip.training.reference import initialise_reference, refit_shift
from nnip.training.splits import Splits, read_splits
from nnip.training.trainer import Trainer, tensorboard_writer
from nnip.training.warm_start import start_from
from nnip.uncertainty.calibration import fit_variance_scale
from nnip.uncertainty.last_layer import last_layer_ensemble
from nnip.uncertainty.posterior import posterior_ensemble
from nnip.version import __version__

__all__ = ["train", "run_training", "train_model", "check_directory", "clear_directory", "RUN_FILES"]

#: What a run writes; --overwrite removes exactly these, nothing else in the folder.
RUN_FILES = ("config.yaml", "model.pt", "checkpoint.pt", "metrics.csv", "report.json", "learning_curves.png",
             "parity_energy.png", "parity_forces.png", "calibration.png", "members", "folds", "tensorboard")
_RESUMABLE = ("max_epochs", "max_time", "progress")


def check_directory(directory: Path, resolved: dict[str, Any], resume: bool, overwrite: bool) -> None:
    """Refuse to touch an earlier run unless resuming (with the same config) or overwriting."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"output {directory}: is a file, not a folder")
    present = [name for name in RUN_FILES if (directory / name).exists()]
    if resume:
        if not (directory / "config.yaml").is_file():
            raise ConfigError(f"{directory}: no run to resume (no config.yaml); start it without --resume")
        _check_same_config(directory / "config.yaml", resolved)
    elif present and not overwrite:
        raise ConfigError(f"{directory}: holds an earlier run ({', '.join(present)}); "
                          "use --resume to continue it or --overwrite to replace it")


def _check_on_every_rank(directory: Path, resolved, resume: bool, overwrite: bool, context,
                         lock: contextlib.ExitStack) -> None:
    """Rank 0 takes the run folder's lock (held by ``lock``), then check_directory on every rank, before rank 0
    writes anything, so all ranks stop alike with one message."""
    error = None
    try:
        if context.main:
            lock.enter_context(run_lock(directory))  # one writer per run folder
        check_directory(directory, resolved, resume, overwrite)
    except ConfigError as caught:
        error = caught
    if not context.all_agree(error is None):
        raise error or ConfigError(f"{directory}: another rank could not use this run folder")


def clear_directory(directory: Path, resume: bool) -> None:
    """Remove the files of an earlier run (only those :data:`RUN_FILES` names) unless resuming."""
    if resume:
        return
    for name in RUN_FILES:
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _check_before_writing(config: RunConfig, splits: Splits) -> None:
    """Checks that would otherwise fail after the run folder was written."""
    if config.training.tensorboard:
        tensorboard_writer()
    if config.model.e0 == "least_squares" and not any(np.isfinite(labels_of(a)[ENERGY]) for a in splits.train):
        raise ConfigError(f"{config.data.train}: no structure has an energy, which model.e0: least_squares needs "
                          "(use e0: zero, isolated or a mapping symbol -> eV)")
    potential = build_model(config.model, splits.elements, config.seed)  # hyperparameter values are checked here
    if config.training.optimizer == "least_squares":
        check_least_squares(potential, config.training)
    if config.training.posterior_samples and (config.ensemble > 1 or config.kfold):
        raise ConfigError("training.posterior_samples makes one model an ensemble of posterior draws; "
                          "use it with ensemble: 1 and no kfold")
    if config.training.posterior_samples and config.training.optimizer != "least_squares":
        if not any(term.last_layers() for term in potential.terms):
            raise ConfigError("training.posterior_samples: the model has no readout layer to be Bayesian about "
                              "(schnet, painn, equivariant, behler_parrinello have one); or fit a linear model "
                              "with optimizer: least_squares")
        if not splits.val:
            raise ConfigError("training.posterior_samples for a network chooses its last layer's regularisation on "
                              "validation data: set data.split.val")


def _finished(report_path: Path, config: RunConfig) -> bool:
    """Whether a run with this report needs no more training (max_time stops and raised max_epochs continue)."""
    if not report_path.is_file():
        return False
    report = json.loads(report_path.read_text())
    if report.get("stopped") in ("early_stopping", "least_squares"):
        return True
    return report.get("stopped") == "max_epochs" and report.get("epochs", 0) >= config.training.max_epochs


def _check_same_config(path: Path, resolved: dict[str, Any]) -> None:
    saved = yaml.safe_load(path.read_text())
    for section in ("data", "model", "training"):
        for key in set(saved.get(section, {})) | set(resolved.get(section, {})):
            if section == "training" and key in _RESUMABLE:
                continue
            if saved.get(section, {}).get(key) != resolved.get(section, {}).get(key):
                raise ConfigError(f"{path}: {section}.{key} differs from this config; resume with the run's "
                                  f"config (only training.max_epochs and training.max_time may change)")
    for key in ("ensemble", "bootstrap", "kfold", "seed"):
        if saved.get(key) != resolved.get(key):
            raise ConfigError(f"{path}: {key} differs from this config; resume with the run's config")


def _write_json(data: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(to_json(data), indent=2))
    tmp.replace(path)


def _split_metrics(model, splits: dict[str, list], directory: Path, batch_size: int, device,
                   plots: bool = True) -> dict[str, dict]:
    """Metrics on every non-empty split; parity plots (when ``plots``) of the first of test, val, train that exists."""
    report, plotted = {}, not plots
    for name in ("test", "val", "train"):
        frames = splits.get(name) or []
        if not frames:
            continue
        metrics, predictions = evaluate(model, frames, batch_size, device)
        report[name] = metrics
        if not plotted:
            write_parity_plots(predictions, directory, title=f"{name} set")
            plotted = True
    return {k: report[k] for k in ("train", "val", "test") if k in report}


def train_model(config: RunConfig, splits: Splits, directory: Path, seed: int, resume: bool,
                context: distributed.Context, train_indices: list[int] | None = None,
                label: str | None = None) -> dict[str, Any]:
    """Train one potential in ``directory``; returns its report (also written as report.json). ``label``: the
    stage of a longer run this training is, shown on its progress bar (Trainer)."""
    directory.mkdir(parents=True, exist_ok=True)
    if resume and _finished(directory / "report.json", config):
        return json.loads((directory / "report.json").read_text()) if context.main else {}
    train_frames = splits.train if train_indices is None else [splits.train[i] for i in train_indices]
    potential = build_model(config.model, splits.elements, seed)
    show = config.training.progress and context.main
    weights = config.data.weight_key
    neighbors = potential.neighbor_request()
    train = AtomicDataset(train_frames, neighbors, weights, show, splits.sources["train"])
    val = AtomicDataset(splits.val, neighbors, weights, source=splits.sources["val"]) if splits.val else None
    stats = initialise_reference(potential, config.model, train, splits.isolated, config.data.isolated_atoms or "")
    if config.model.init:
        start_from(potential, config.model.init, seed - config.seed)
    posterior, posterior_figures = None, {}
    if config.training.optimizer == "least_squares":  # closed form (linear terms): no epochs, no checkpoint
        refit_e0 = stats.e0_method == "least_squares"
        result, fit = fit_least_squares(potential, train, val, config.training, refit_e0, label)
        if context.main:  # the run folder's metrics.csv: one row, the fit's figures
            write_metrics_csv(result.history, directory / "metrics.csv")
        if config.training.posterior_samples:
            posterior = posterior_ensemble(potential, fit.posterior_factor(), config.training.posterior_samples,
                                           seed, refit_e0)
            _calibrate(posterior, splits.val, config)
    else:
        trainer = Trainer(potential, train, val, config.training, seed, directory, context, label)
        result = trainer.fit(resume=resume and (directory / "checkpoint.pt").is_file())
        potential = trainer.potential
    random_weights = any(term.dimensionless for term in potential.terms) and not config.model.init
    if result.epochs == 0 and random_weights:  # never save a network's untrained weights as a model
        raise ConfigError(f"training.max_time ({config.training.max_time:g} s) ran out before the first epoch "
                          "finished: nothing was trained, so no model.pt was written; raise max_time")
    potential = potential.eval()
    shift_refit = refit_shift(potential, config.model, stats, train, config.training.device,
                              config.training.eval_batch_size) if context.main else 0.0  # only rank 0 saves
    if posterior is None and config.training.posterior_samples and context.main:  # a network's last layer
        posterior, figures = last_layer_ensemble(potential, train, val, config.training.posterior_samples,
                                                 config.training.loss, seed, config.training.eval_batch_size)
        posterior_figures = {f"last_layer_{k}": v for k, v in figures.items()}
        _calibrate(posterior, splits.val, config)
    summary = {"train_seconds": result.train_seconds, "epochs": result.epochs, "stopped": result.stopped,
               "best_epoch": result.best_epoch + 1, "n_parameters": sum(p.numel() for p in potential.parameters()),
               "seed": seed, "shift_refit_per_atom": shift_refit, **posterior_figures}
    if not context.main:
        return {}
    model = potential if posterior is None else posterior
    save(model, directory / "model.pt", metadata={"statistics": stats.as_dict(), "training": summary})
    if result.history and config.training.plots:
        learning_curves(result.history, directory / "learning_curves.png")
    report = {**_split_metrics(model, {"train": train_frames, "val": splits.val, "test": splits.test},
                               directory, config.training.eval_batch_size, config.training.device,
                               config.training.plots),
              **summary, "statistics": stats.as_dict(), "nnip_version": __version__}
    _write_json(report, directory / "report.json")
    return report


def _calibrate(ensemble: Ensemble, frames: list, config: RunConfig) -> None:
    """Scale the ensemble's spread to the validation forces' errors (uncertainty.calibration.fit_variance_scale);
    nothing without validation data."""
    if not frames:
        return
    _, predictions = evaluate(ensemble, frames, config.training.eval_batch_size, config.training.device)
    errors, variances = predictions.forces - predictions.forces_ref, predictions.extra["forces_var"]
    if np.isfinite(errors).any() and (variances > 0).any():
        ensemble.variance_scale.fill_(fit_variance_scale(errors, variances))


def _mean_std(reports: list[dict[str, Any]], split: str) -> tuple[dict[str, float], dict[str, float]]:
    keys = [k for k, v in reports[0].get(split, {}).items() if isinstance(v, (int, float))]
    values = {k: np.array([r[split][k] for r in reports], dtype=float) for k in keys}
    return ({k: float(v.mean()) for k, v in values.items()}, {k: float(v.std(ddof=1)) for k, v in values.items()})


def _stage(label: str | None, part: str) -> str | None:
    """The progress label of one member or fold of a labelled run ("generation 1/2, member 3/4"); None without."""
    return f"{label}, {part}" if label else None


def _run_kfold(config: RunConfig, splits: Splits, directory: Path, resume: bool, context,
               label: str | None = None) -> dict[str, Any]:
    frames = splits.train + splits.val
    folds = []
    for k, (rest, fold) in enumerate(kfold_splits(len(frames), config.kfold, config.seed)):
        train_idx, val_idx, _ = random_split(len(rest), config.data.split.val, 0, config.seed + k)
        fold_splits = Splits([frames[rest[i]] for i in train_idx], [frames[rest[i]] for i in val_idx],
                             [frames[i] for i in fold], splits.sources, splits.elements, splits.isolated)
        folds.append(train_model(config, fold_splits, directory / "folds" / f"fold_{k}", config.seed + k,
                                 resume, context, label=_stage(label, f"fold {k + 1}/{config.kfold}")))
    if not context.main:
        return {}
    mean, std = _mean_std(folds, "test")
    members = [load(directory / "folds" / f"fold_{k}" / "model.pt") for k in range(config.kfold)]
    save(Ensemble(members), directory / "model.pt", metadata={"kind": "kfold", "folds": config.kfold})
    return {"kfold": config.kfold, "folds": [f["test"] for f in folds], "test_mean": mean, "test_std": std,
            "train_seconds": sum(f["train_seconds"] for f in folds), "epochs": [f["epochs"] for f in folds],
            "n_parameters": folds[0]["n_parameters"], "nnip_version": __version__}


def _run_ensemble(config: RunConfig, splits: Splits, directory: Path, resume: bool, context,
                  label: str | None = None) -> dict[str, Any]:
    members = []
    for m in range(config.ensemble):
        indices = None
        if config.bootstrap:
            generator = torch.Generator().manual_seed(config.seed + 7919 * (m + 1))
            indices = torch.randint(len(splits.train), (len(splits.train),), generator=generator).tolist()
        members.append(train_model(config, splits, directory / "members" / f"member_{m}", config.seed + m,
                                   resume, context, indices, _stage(label, f"member {m + 1}/{config.ensemble}")))
    if not context.main:
        return {}
    ensemble = Ensemble([load(directory / "members" / f"member_{m}" / "model.pt") for m in range(config.ensemble)])
    ensemble.to(config.training.device)
    _calibrate(ensemble, splits.val, config)
    save(ensemble, directory / "model.pt", metadata={"kind": "ensemble", "members": config.ensemble,
                                                     "bootstrap": config.bootstrap,
                                                     "variance_scale": float(ensemble.variance_scale)})
    report = _split_metrics(ensemble, {"train": splits.train, "val": splits.val, "test": splits.test}, directory,
                            config.training.eval_batch_size, config.training.device, config.training.plots)
    return {**report, "members": [{k: r[k] for k in ("val", "test") if k in r} for r in members],
            "train_seconds": sum(r["train_seconds"] for r in members), "epochs": [r["epochs"] for r in members],
            "n_parameters": sum(r["n_parameters"] for r in members), "variance_scale": float(ensemble.variance_scale),
            "nnip_version": __version__}


def train(config: Mapping[str, Any] | str | os.PathLike, overrides: Sequence[str] = (), resume: bool = False,
          overwrite: bool = False) -> dict[str, Any]:
    """Train as ``config`` says, the same as ``nnip train``: a mapping (the YAML's data) or a YAML file, with
    ``--set``-style ``overrides`` ("training.lr=0.005"). Returns the report (also written as report.json)."""
    if isinstance(config, Mapping):
        parsed = parse_config(apply_overrides(dict(config), overrides), where="config")
        resolved = parsed.as_dict()
    else:
        parsed, resolved = load_config(config, overrides)
    return run_training(parsed, resolved, resume=resume, overwrite=overwrite)


def run_training(config: RunConfig, resolved: dict[str, Any], resume: bool = False,
                 overwrite: bool = False, label: str | None = None) -> dict[str, Any]:
    """Train as ``config`` says, in ``config.output``; returns the report (also in report.json). ``label``: the
    stage of a longer run (active learning's "generation 1/2"): one progress bar per member, no log lines."""
    context = distributed.start(config.training.device)
    if context.distributed:
        config.training.device = str(context.device)
    try:
        splits = read_splits(config.data, config.training.loss, config.seed, config.model.elements)
        _check_before_writing(config, splits)
        directory = Path(config.output)
        with contextlib.ExitStack() as lock:
            _check_on_every_rank(directory, resolved, resume, overwrite, context, lock)
            if context.main:
                clear_directory(directory, resume)
                if not resume:
                    (directory / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
            context.barrier()
            if config.kfold:
                report = _finish(_run_kfold(config, splits, directory, resume, context, label), directory, context)
            elif config.ensemble > 1:
                report = _finish(_run_ensemble(config, splits, directory, resume, context, label), directory, context)
            else:
                report = train_model(config, splits, directory, config.seed, resume, context, label=label)
            context.barrier()  # every rank has finished before any tears the process group down
            return report
    finally:
        distributed.stop(context)


def _finish(report: dict[str, Any], directory: Path, context) -> dict[str, Any]:
    if context.main:
        _write_json(report, directory / "report.json")
    return report
