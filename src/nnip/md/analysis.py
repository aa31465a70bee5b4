"""Analysis of MD runs: radial distribution functions, energy drift, temperature statistics.

g_ab(r) = <n_ab(r)> / (N_a rho_b 4 pi r^2 dr), with n_ab(r) the number of b atoms in the
shell [r, r + dr) around an a atom, rho_b = N_b / V (or (N_a - 1) / V when a = b),
averaged over frames; needs cells periodic in three directions with r_max below half the
shortest cell height. Drift: slope of a least-squares line through total energy per atom
against time, in eV/atom/ps.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import neighbor_list

from nnip.errors import DataError

__all__ = ["radial_distribution", "pair_distances", "energy_drift", "read_md_log", "temperature_statistics"]


def radial_distribution(frames: Sequence[Atoms], r_max: float, bins: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """g(r) per element pair "A-B" (A <= B alphabetically): (bin centres (K,) Å, g (K,))."""
    if not frames:
        raise DataError("no frames to analyse")
    edges = np.linspace(0.0, r_max, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    shells = 4.0 / 3.0 * math.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    counts: dict[tuple[int, int], np.ndarray] = {}
    norms: dict[tuple[int, int], float] = {}
    for k, atoms in enumerate(frames):
        if not atoms.pbc.all():
            raise DataError(f"frame {k}: g(r) needs a cell periodic in three directions")
        heights = atoms.cell.volume / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
        if r_max > heights.min() / 2:
            raise DataError(f"frame {k}: r_max {r_max} Å exceeds half the shortest cell height ({heights.min() / 2:.3g} Å)")
        i, j, d = neighbor_list("ijd", atoms, r_max)
        numbers = atoms.numbers
        for za in np.unique(numbers):
            for zb in np.unique(numbers):
                if chemical_symbols[za] > chemical_symbols[zb]:
                    continue
                mask = (numbers[i] == za) & (numbers[j] == zb)
                histogram, _ = np.histogram(d[mask], bins=edges)
                n_a, n_b = np.sum(numbers == za), np.sum(numbers == zb)
                density = (n_b - (za == zb)) / atoms.cell.volume
                counts[(za, zb)] = counts.get((za, zb), 0) + histogram
                norms[(za, zb)] = norms.get((za, zb), 0.0) + n_a * density
    return {f"{chemical_symbols[a]}-{chemical_symbols[b]}": (centres, counts[(a, b)] / (norms[(a, b)] * shells))
            for (a, b) in counts}


def pair_distances(frames: Sequence[Atoms], r_max: float, bins: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Distribution of the distances within each frame, per element pair "A-B" (A <= B
    alphabetically), for molecules and clusters (no periodic images): (bin centres (K,) Å,
    probability density (K,) 1/Å of the distances below ``r_max``), each pair once, all frames pooled."""
    if not frames:
        raise DataError("no frames to analyse")
    edges = np.linspace(0.0, r_max, bins + 1)
    pooled: dict[str, list[np.ndarray]] = {}
    for atoms in frames:
        distances = atoms.get_all_distances()
        i, j = np.triu_indices(len(atoms), k=1)
        symbols = np.array(atoms.get_chemical_symbols())
        names = np.where(symbols[i] <= symbols[j], np.char.add(np.char.add(symbols[i], "-"), symbols[j]),
                         np.char.add(np.char.add(symbols[j], "-"), symbols[i]))
        for name in np.unique(names):
            pooled.setdefault(str(name), []).append(distances[i, j][names == name])
    out = {}
    for name in sorted(pooled):
        values = np.concatenate(pooled[name])
        values = values[values < r_max]
        if values.size:
            out[name] = (0.5 * (edges[1:] + edges[:-1]), np.histogram(values, bins=edges, density=True)[0])
    return out


def read_md_log(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of an ``nnip md`` CSV log as arrays."""
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    if not rows:
        raise DataError(f"{path}: empty MD log")
    return {key: np.array([float(r[key]) if r[key] not in ("", "nan") else np.nan for r in rows]) for key in rows[0]}


def energy_drift(time_fs: np.ndarray, total_energy: np.ndarray, n_atoms: int) -> float:
    """Least-squares slope of total energy per atom against time, eV/atom/ps."""
    slope = np.polyfit(np.asarray(time_fs) / 1000.0, np.asarray(total_energy) / n_atoms, 1)[0]
    return float(slope)


def temperature_statistics(temperature: np.ndarray, skip_fraction: float = 0.5) -> dict[str, float]:
    """Mean and standard deviation (K) of the temperature after the first ``skip_fraction`` of the run."""
    kept = np.asarray(temperature)[int(len(temperature) * skip_fraction):]
    return {"temperature_mean": float(kept.mean()), "temperature_std": float(kept.std())}
