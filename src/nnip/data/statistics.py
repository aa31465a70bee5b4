"""Dataset statistics that initialise a potential: E0 per element, energy shift, force scale.

- E0 by least squares on composition: minimise sum_b (E_b - sum_Z c_bZ E0_Z)^2 over the
  training structures, where c_bZ counts the atoms of element Z in structure b. When all
  structures share one composition (a single molecule) the system is rank-deficient and
  the minimum-norm solution is used; prefer isolated-atom energies then.
- E0 from isolated atoms: the energy of single-atom frames, per element.
- Mean residual energy per atom <(E_b - sum_Z c_bZ E0_Z) / N_b>, force RMS
  sqrt(<|F_i|^2> / 3) (per component), and the mean number of neighbours per atom within
  the cutoff.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from nnip import keys
from nnip.data.dataset import labels_of
from nnip.errors import DataError

__all__ = ["DatasetStatistics", "composition_matrix", "least_squares_e0", "isolated_atom_e0", "dataset_statistics"]


@dataclass
class DatasetStatistics:
    """Statistics of a training set (units: eV, eV/atom, eV/Å)."""

    n_structures: int
    n_atoms: int
    e0: dict[str, float]
    e0_method: str
    mean_residual_per_atom: float
    residual_std_per_atom: float
    force_rms: float
    mean_neighbors: float

    def as_dict(self) -> dict:
        return asdict(self)


def composition_matrix(frames: Sequence[Atoms], elements: Sequence[int]) -> np.ndarray:
    """(B, n_elements) counts of each element in each structure."""
    column = {z: k for k, z in enumerate(elements)}
    counts = np.zeros((len(frames), len(elements)))
    for b, atoms in enumerate(frames):
        for z, c in zip(*np.unique(atoms.numbers, return_counts=True)):
            counts[b, column[int(z)]] = c
    return counts


def _energies(frames: Sequence[Atoms]) -> np.ndarray:
    return np.array([float(labels_of(a)[keys.ENERGY]) for a in frames])


def least_squares_e0(frames: Sequence[Atoms], elements: Sequence[int], energies: np.ndarray | None = None) -> dict[int, float]:
    """Per-element E0 (eV) fitting ``energies`` (default: the frames' energies) to composition."""
    energies = _energies(frames) if energies is None else np.asarray(energies, dtype=np.float64)
    known = np.isfinite(energies)
    if not known.any():
        raise DataError("no training structure has an energy: cannot fit reference energies E0")
    counts = composition_matrix(frames, elements)[known]
    solution, *_ = np.linalg.lstsq(counts, energies[known], rcond=None)
    return {int(z): float(e) for z, e in zip(elements, solution)}


def isolated_atom_e0(frames: Sequence[Atoms], elements: Sequence[int], source: str = "isolated atoms") -> dict[int, float]:
    """Per-element E0 (eV) from single-atom frames; every element of ``elements`` must be present."""
    e0 = {}
    for atoms in frames:
        if len(atoms) == 1:
            energy = float(labels_of(atoms)[keys.ENERGY])
            if np.isfinite(energy):
                e0[int(atoms.numbers[0])] = energy
    missing = [chemical_symbols[z] for z in elements if z not in e0]
    if missing:
        raise DataError(f"{source}: no single-atom frame with an energy for element(s) {', '.join(missing)}")
    return {z: e0[z] for z in elements}


def dataset_statistics(
    frames: Sequence[Atoms],
    elements: Sequence[int],
    e0: Mapping[int, float],
    e0_method: str,
    neighbor_counts: Sequence[int] | None = None,
    energies: np.ndarray | None = None,
) -> DatasetStatistics:
    """Statistics of ``frames`` given the chosen E0 (atomic number -> eV).

    Args:
        neighbor_counts: number of edges (full list) per structure, for the mean neighbour count.
        energies: (B,) eV, the energies whose residual after E0 is summarised (default: the
            frames' energies; a potential with eV-valued terms passes E minus those terms).
    """
    energies = _energies(frames) if energies is None else np.asarray(energies, dtype=np.float64)
    counts = composition_matrix(frames, elements)
    reference = counts @ np.array([e0.get(z, 0.0) for z in elements])
    n_atoms = counts.sum(axis=1)
    residual = ((energies - reference) / n_atoms)[np.isfinite(energies)]
    forces = [labels_of(a)[keys.FORCES] for a in frames]
    forces = np.concatenate(forces) if forces else np.zeros((0, 3))
    forces = forces[np.isfinite(forces).all(axis=1)]
    neighbors = float(np.sum(neighbor_counts) / max(n_atoms.sum(), 1)) if neighbor_counts is not None else float("nan")
    return DatasetStatistics(
        n_structures=len(frames),
        n_atoms=int(n_atoms.sum()),
        e0={chemical_symbols[z]: float(e0.get(z, 0.0)) for z in elements},
        e0_method=e0_method,
        mean_residual_per_atom=float(residual.mean()) if residual.size else 0.0,
        residual_std_per_atom=float(residual.std()) if residual.size else 0.0,
        force_rms=float(np.sqrt(np.mean(forces**2))) if forces.size else float("nan"),
        mean_neighbors=neighbors,
    )
