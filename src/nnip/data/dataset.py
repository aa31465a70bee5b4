"""In-memory datasets of labelled structures, splits (random, counts, k-fold) and batches.

A :class:`AtomicDataset` holds one :class:`Sample` per structure: its graph (neighbour list
built once, for the potential's cutoff) and its labels in eV, eV/Å and eV/Å^3. A label a
structure lacks is NaN and masked out of losses and metrics, so datasets may mix
structures with and without forces or stress.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from nnip import keys
from nnip.data.batching import collate
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.errors import ConfigError, DataError
from nnip.progress import stage_bar

__all__ = ["Sample", "AtomicDataset", "random_split", "kfold_splits", "split_sizes", "labels_of", "check_elements"]


@dataclass
class Sample:
    """One labelled structure.

    Shapes and units: energy () eV, forces (N, 3) eV/Å, stress (3, 3) eV/Å^3 (ASE sign),
    dipole (3,) e Å, all float64 and NaN where the structure has no such label; weight ()
    dimensionless.
    """

    graph: AtomicGraph
    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor
    dipole: torch.Tensor
    weight: float = 1.0


def labels_of(atoms: Atoms) -> dict[str, np.ndarray]:
    """Energy, forces, stress and dipole on ``atoms.calc`` (as :func:`nnip.read` leaves them), NaN when absent."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    n = len(atoms)
    energy = results.get("energy", results.get("free_energy"))
    stress = results.get("stress")
    if stress is not None:
        stress = np.asarray(stress, dtype=np.float64)
        if stress.shape == (6,):
            xx, yy, zz, yz, xz, xy = stress
            stress = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return {
        keys.ENERGY: np.float64(np.nan if energy is None else energy),
        keys.FORCES: np.asarray(results.get("forces", np.full((n, 3), np.nan)), dtype=np.float64).reshape(n, 3),
        keys.STRESS: np.full((3, 3), np.nan) if stress is None else stress.reshape(3, 3),
        keys.DIPOLE: np.asarray(results.get("dipole", np.full(3, np.nan)), dtype=np.float64).reshape(3),
    }


def _weight(value, where: str) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where} must be a number >= 0, got {value!r}") from None
    if not weight >= 0:
        raise DataError(f"{where} must be a number >= 0, got {value!r}")
    return weight


def check_elements(frames: Sequence[Atoms], source: str, known: Sequence[int], what: str,
                   frame_ids: Sequence[int] | None = None) -> None:
    """DataError ``SOURCE: frame K: element(s) X not in WHAT (known...)`` for the first frame with another element.

    ``frame_ids`` are the frames' indices in the file (default 0, 1, ...).
    """
    allowed = set(int(z) for z in known)
    for k, atoms in zip(frame_ids if frame_ids is not None else range(len(frames)), frames):
        unknown = sorted(set(atoms.numbers.tolist()) - allowed)
        if unknown:
            names = ", ".join(chemical_symbols[z] for z in unknown)
            have = ", ".join(chemical_symbols[z] for z in sorted(allowed))
            raise DataError(f"{source}: frame {k}: element(s) {names} not in {what} ({have})")


class AtomicDataset:
    """Labelled structures with graphs built once for a neighbour request.

    Args:
        frames: structures with labels on ``atoms.calc`` (see :func:`nnip.read`).
        neighbors: the potential's neighbour request (``Potential.neighbor_request()``), or a cutoff in Å
            for full lists.
        weight_key: ``atoms.info`` key of a per-structure loss weight (a number >= 0, default 1).
        progress: show a progress bar while building neighbour lists.
        source: name of the data in error messages (a file name).
    """

    def __init__(
        self,
        frames: Sequence[Atoms],
        neighbors: NeighborRequest | float,
        weight_key: str = "weight",
        progress: bool = False,
        source: str = "data",
    ):
        self.neighbor_request = NeighborRequest.of(neighbors)
        self.frames = list(frames)
        self.samples: list[Sample] = []
        for k, atoms in enumerate(stage_bar(len(self.frames), "neighbour lists" if progress else None, "frame",
                                                  iterable=self.frames)):
            labels = labels_of(atoms)
            graph = AtomicGraph.from_arrays(
                atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc, self.neighbor_request,
                total_charge=float(atoms.info.get("charge", 0.0)),
            )
            self.samples.append(Sample(
                graph=graph,
                energy=torch.tensor(labels[keys.ENERGY]),
                forces=torch.from_numpy(labels[keys.FORCES]),
                stress=torch.from_numpy(labels[keys.STRESS]),
                dipole=torch.from_numpy(labels[keys.DIPOLE]),
                weight=_weight(atoms.info.get(weight_key, 1.0), f"{source}: frame {k}: info[{weight_key!r}]"),
            ))

    @classmethod
    def _from_samples(cls, parent: "AtomicDataset", indices: Sequence[int]) -> "AtomicDataset":
        subset = cls.__new__(cls)
        subset.neighbor_request = parent.neighbor_request
        subset.frames = [parent.frames[i] for i in indices]
        subset.samples = [parent.samples[i] for i in indices]
        return subset

    def __len__(self) -> int:
        return len(self.samples)

    def subset(self, indices: Sequence[int]) -> "AtomicDataset":
        """The structures at ``indices`` (repeats allowed, as in bootstrap resampling)."""
        return AtomicDataset._from_samples(self, [int(i) for i in indices])

    def has(self, key: str) -> bool:
        """Whether any structure has label ``key`` (energy, forces, stress or dipole)."""
        return any(bool(torch.isfinite(getattr(s, key)).any()) for s in self.samples)

    @property
    def n_atoms(self) -> int:
        return sum(s.graph.positions.shape[0] for s in self.samples)

    def batch(self, indices: Sequence[int], dtype: torch.dtype, device: torch.device | str = "cpu"):
        """Collated graph and targets of the structures at ``indices``.

        Returns:
            (graph, targets) with targets energy (B,), forces (N, 3), stress (B, 3, 3), dipole (B, 3)
            in float64 (NaN where missing) and weight (B,).
        """
        samples = [self.samples[int(i)] for i in indices]
        graph = collate([s.graph for s in samples]).to(device=device, dtype=dtype)
        targets = {
            keys.ENERGY: torch.stack([s.energy for s in samples]),
            keys.FORCES: torch.cat([s.forces for s in samples]),
            keys.STRESS: torch.stack([s.stress for s in samples]),
            keys.DIPOLE: torch.stack([s.dipole for s in samples]),
            keys.WEIGHT: torch.tensor([s.weight for s in samples], dtype=torch.float64),
        }
        return graph, {k: v.to(device) for k, v in targets.items()}

    def batches(self, batch_size: int, dtype: torch.dtype, order: Sequence[int] | None = None, device="cpu"):
        """Iterate over (graph, targets) in ``order`` (default: dataset order), ``batch_size`` at a time."""
        order = list(range(len(self))) if order is None else [int(i) for i in order]
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start:start + batch_size], dtype, device)


def split_sizes(n: int, val: float | int, test: float | int) -> tuple[int, int]:
    """Numbers of validation and test structures from fractions (< 1) or counts (>= 1)."""
    def size(value, name):
        if value < 0:
            raise ConfigError(f"data.split.{name} must be >= 0, got {value}")
        count = int(round(value * n)) if isinstance(value, float) and value < 1 else int(value)
        return count
    n_val, n_test = size(val, "val"), size(test, "test")
    if n_val + n_test >= n:
        raise ConfigError(
            f"data.split: {n_val} validation + {n_test} test structures leave none of {n} for training"
        )
    return n_val, n_test


def random_split(n: int, val: float | int, test: float | int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Seeded random (train, val, test) index lists; ``val``/``test`` are fractions or counts."""
    n_val, n_test = split_sizes(n, val, test)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return order[n_val + n_test:], order[:n_val], order[n_val:n_val + n_test]


def kfold_splits(n: int, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """k seeded folds: (rest, fold) index lists; every structure is in exactly one fold."""
    if not 2 <= k <= n:
        raise ConfigError(f"kfold must be between 2 and the number of structures ({n}), got {k}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    bounds = [math.floor(i * n / k) for i in range(k + 1)]
    folds = [order[bounds[i]:bounds[i + 1]] for i in range(k)]
    return [([j for f in folds[:i] + folds[i + 1:] for j in f], folds[i]) for i in range(k)]
