"""From a configuration to what the trainer needs: data checked, model built and initialised.

- :func:`read_splits` reads the data files, cuts validation and test sets from the
  training file where no separate files are given, and checks that the labels the loss
  needs exist and that validation and test hold no element unknown to training.
- :func:`build_model` builds the potential from the ``model`` section (seeded).
- :func:`initialise_reference` sets E0, scale and shift from training statistics
  (DESIGN.md: they live inside the saved potential).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from nnip import keys
from nnip.data.dataset import AtomicDataset, check_elements, labels_of, random_split
from nnip.data.io import read
from nnip.data.statistics import DatasetStatistics, dataset_statistics, isolated_atom_e0, least_squares_e0
from nnip.data.validation import unit_problem
from nnip.errors import ConfigError, DataError
from nnip.potentials.base import Potential, to_atomic_numbers
from nnip.potentials.registry import build_term
from nnip.training.config import DataConfig, ModelConfig
from nnip.training.loss import LossConfig

__all__ = ["Splits", "read_splits", "read_frames", "build_model", "initialise_reference"]


@dataclass
class Splits:
    """Training, validation and test structures, the files they came from, and the run's elements."""

    train: list[Atoms]
    val: list[Atoms]
    test: list[Atoms]
    sources: dict[str, str]
    elements: list[int]
    isolated: list[Atoms] | None = None


def read_frames(path: str, data: DataConfig) -> list[Atoms]:
    """All frames of ``path`` with the label names and energy unit of ``data``."""
    return read(path, energy_unit=data.energy_unit, energy_key=data.energy_key,
                forces_key=data.forces_key, stress_key=data.stress_key)


def _check_labels(frames: Sequence[Atoms], path: str, loss: LossConfig) -> None:
    for key, weight in ((keys.ENERGY, loss.energy_weight), (keys.FORCES, loss.forces_weight),
                        (keys.STRESS, loss.stress_weight), (keys.DIPOLE, loss.dipole_weight)):
        if weight > 0 and not any(np.isfinite(labels_of(a)[key]).all() for a in frames):
            raise ConfigError(f"{path}: no structure has {key}, but training.loss.{key}_weight is {weight}; "
                              f"set it to 0 or use data with {key}")


def _part(name: str, given: str | None, data: DataConfig, frames: list[Atoms], cut: list[int]):
    """(frames, source, file frame indices) of the val or test set: its own file, or cut from train."""
    if given:
        part = read_frames(given, data)
        return part, given, list(range(len(part)))
    return [frames[i] for i in cut], data.train, cut


def read_splits(data: DataConfig, loss: LossConfig, seed: int, elements: Sequence[str] | None = None) -> Splits:
    """Read and split the data of a run; errors name the file, the frame and the problem.

    The run's elements are ``elements`` (model.elements) when given, else those of the
    training structures; validation and test structures may hold no other element.
    """
    frames = read_frames(data.train, data)
    cut_val = 0 if data.val else data.split.val
    cut_test = 0 if data.test else data.split.test
    train_idx, val_idx, test_idx = random_split(len(frames), cut_val, cut_test, seed)
    train = [frames[i] for i in train_idx]
    val, val_source, val_frames = _part("val", data.val, data, frames, val_idx)
    test, test_source, test_frames = _part("test", data.test, data, frames, test_idx)
    _check_labels(train, data.train, loss)
    suspect = unit_problem(frames) if data.energy_unit is None else None
    if suspect:
        raise DataError(f"{data.train}: {suspect}; set data.energy_unit to the file's unit "
                        "(kcal/mol, or eV to keep the values as they are)")
    if elements:
        known, what = to_atomic_numbers(elements), "model.elements"
        check_elements(train, data.train, known, what, train_idx)
    else:
        known, what = sorted({int(z) for a in train for z in a.numbers}), "the training data"
    check_elements(val, val_source, known, what, val_frames)
    check_elements(test, test_source, known, what, test_frames)
    sources = {"train": data.train, "val": data.val or f"{data.train} (split)",
               "test": data.test or f"{data.train} (split)"}
    isolated = read_frames(data.isolated_atoms, data) if data.isolated_atoms else None
    return Splits(train, val, test, sources, known, isolated)


def build_model(model: ModelConfig, elements: Sequence[int], seed: int) -> Potential:
    """The potential of the ``model`` section for ``elements`` (atomic numbers), weights seeded by ``seed``."""
    torch.manual_seed(seed)
    terms = []
    for k, term in enumerate(model.terms):
        options = {key: value for key, value in term.items() if key != "name"}
        where = "model" if len(model.terms) == 1 else f"model.terms[{k}]"
        terms.append(build_term(term["name"], options, elements, where=where))
    return Potential(terms, elements)


def start_from(potential: Potential, path: str, member: int) -> None:
    """Copy weights and reference energies from the model file ``path`` (member ``member`` of an ensemble)."""
    from nnip.potentials.ensemble import Ensemble
    from nnip.potentials.serialization import load

    source = load(path)
    if isinstance(source, Ensemble):
        source = source.members[member % len(source)]
    if source.spec() != potential.spec():
        raise ConfigError(f"model.init: {path} holds a different model ({source.spec()['terms']} for elements "
                          f"{source.spec()['elements']}); it must match model.terms and the elements")
    potential.load_state_dict(source.state_dict())


@torch.no_grad()
def _term_energies(potential: Potential, dataset: AtomicDataset) -> np.ndarray:
    """Energies (B,) of the eV-valued terms alone (E0, shift and scaled terms set to zero)."""
    saved = (potential.e0.clone(), potential.scale.clone(), potential.shift.clone())
    potential.e0.zero_(), potential.scale.zero_(), potential.shift.zero_()
    try:
        energies = [potential(graph, compute_forces=False)[keys.ENERGY].cpu().numpy()
                    for graph, _ in dataset.batches(64, potential.dtype)]
    finally:
        potential.e0.copy_(saved[0]), potential.scale.copy_(saved[1]), potential.shift.copy_(saved[2])
    return np.concatenate(energies)


def _neighbour_counts(dataset: AtomicDataset) -> list[int]:
    factor = 2 if dataset.half_list else 1
    return [factor * s.graph.edge_index.shape[1] for s in dataset.samples]


def initialise_reference(potential: Potential, model: ModelConfig, dataset: AtomicDataset,
                         isolated: Sequence[Atoms] | None, isolated_source: str = "isolated atoms") -> DatasetStatistics:
    """Fit data-dependent constants of the terms (Term.fit_to_data), then E0, scale and shift; returns the statistics.

    E0: least squares of (E - E_eV-terms) on composition, isolated-atom energies, zero, or given.
    scale: force RMS, for potentials with dimensionless (network) terms, else 1. shift: mean
    residual energy per atom with least-squares E0 and network terms, else 0 (so a lone
    atom returns E0). Numbers in the config override both.
    """
    potential.fit_terms_to_data([graph for graph, _ in dataset.batches(64, potential.dtype)])
    elements = potential.elements.tolist()
    frames = dataset.frames
    energies = np.array([float(labels_of(a)[keys.ENERGY]) for a in frames]) - _term_energies(potential, dataset)
    e0, method = _choose_e0(model, elements, frames, energies, isolated, isolated_source)
    stats = dataset_statistics(frames, elements, e0, method, _neighbour_counts(dataset), energies)
    networks = potential.has_dimensionless_terms
    scale = model.scale if not isinstance(model.scale, str) else (stats.force_rms if networks else 1.0)
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    # An automatic shift only where E0 is fitted: with isolated-atom or given E0 a lone atom must return E0.
    auto_shift = stats.mean_residual_per_atom if networks and method == "least_squares" else 0.0
    shift = model.shift if not isinstance(model.shift, str) else auto_shift
    potential.set_reference(e0=e0, scale=scale, shift=shift)
    return stats


def _choose_e0(model: ModelConfig, elements: list[int], frames, energies, isolated, isolated_source):
    """(E0 per atomic number in eV, method name) as ``model.e0`` says."""
    if isinstance(model.e0, dict):
        e0 = {to_atomic_numbers([k])[0]: float(v) for k, v in model.e0.items()}
        missing = [chemical_symbols[z] for z in elements if z not in e0]
        if missing:
            raise ConfigError(f"model.e0: no value for element(s) {', '.join(missing)}")
        return e0, "given"
    if model.e0 == "isolated":
        if not isolated:
            raise ConfigError("model.e0 is 'isolated' but data.isolated_atoms names no file")
        return isolated_atom_e0(isolated, elements, isolated_source), "isolated_atoms"
    if model.e0 == "zero":
        return {z: 0.0 for z in elements}, "zero"
    return least_squares_e0(frames, elements, energies), "least_squares"
