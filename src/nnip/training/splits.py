"""The data of a run: read the files, cut validation and test sets, check labels and elements.

:func:`read_splits` reads the data files, cuts validation and test sets from the training
file where no separate files are given, and checks that the labels the loss needs exist and
that validation and test hold no element unknown to training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from nnip import keys
from nnip.data.dataset import check_elements, labels_of, random_split
from nnip.data.io import read
from nnip.data.validation import unit_problem
from nnip.errors import ConfigError, DataError
from nnip.potentials.contract.base import to_atomic_numbers
from nnip.training.config import DataConfig
from nnip.training.loss import LossConfig

__all__ = ["Splits", "read_splits", "read_frames"]


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
