"""Checks of one structure; each problem is a short phrase, the caller adds file and frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from nnip.data.neighbors import coordinate_problem, degenerate_cell_message, neighbor_list

__all__ = ["MIN_DISTANCE", "REQUIRABLE", "SUSPECT_FORCE_RMS", "LIMITS", "frame_problems", "unit_problem", "real_array"]

#: Atoms closer than this (Å) are rejected as overlapping.
MIN_DISTANCE = 0.3
#: Force RMS (eV/Å) above which a dataset's unit is suspect: DFT and xTB data of molecules and
#: solids have 0.3-3 eV/Å (bundled sets 0.9-1.8); the same forces in kcal/mol/Å read 7-70.
SUSPECT_FORCE_RMS = 10.0
#: Labels ``read(require=...)`` can demand.
REQUIRABLE = ("energy", "forces", "stress")
#: Largest magnitude accepted per label (beyond: a corrupt value, which float32 training would turn into
#: inf): energy per atom eV, forces eV/Å, stress eV/Å^3 (10^3 eV/Å^3 is 160 TPa), dipole e Å.
LIMITS = {"energy": 1e7, "forces": 1e5, "stress": 1e3, "dipole": 1e5}
_UNITS = {"energy": "eV per atom", "forces": "eV/Å", "stress": "eV/Å^3", "dipole": "e Å"}


def real_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array; ValueError '<name> are <kind>, not real numbers' for booleans, complex
    numbers, text or objects (which numpy would convert silently or drop the imaginary part of)."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        kind = {"b": "booleans", "c": "complex numbers"}.get(array.dtype.kind, f"of type {array.dtype}")
        raise ValueError(f"{name} are {kind}, not real numbers")
    return array.astype(np.float64)


def _closest_pair(atoms: Atoms) -> str | None:
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, MIN_DISTANCE)
    if edge_index.shape[1] == 0:
        return None
    i, j = edge_index.numpy()
    vectors = atoms.positions[j] - atoms.positions[i] + shifts.numpy() @ atoms.cell.array
    k = int(np.argmin(np.linalg.norm(vectors, axis=1)))
    distance = float(np.linalg.norm(vectors[k]))
    return (f"atoms {i[k]} ({atoms.get_chemical_symbols()[i[k]]}) and {j[k]} "
            f"({atoms.get_chemical_symbols()[j[k]]}) are {distance:.3f} Å apart "
            f"(overlapping: closer than {MIN_DISTANCE} Å)")


def _beyond_limits(atoms: Atoms, results: dict) -> list[str]:
    """Labels of a magnitude beyond LIMITS (finite ones only: NaN and inf are reported apart)."""
    problems = []
    for name, limit in LIMITS.items():
        value = results.get(name)
        if value is None:
            continue
        values = np.abs(np.asarray(value, dtype=float)) / (max(len(atoms), 1) if name == "energy" else 1)
        largest = float(np.max(values, initial=0.0, where=np.isfinite(values)))
        if largest > limit:
            problems.append(f"{name}: a magnitude of {largest:.3g} {_UNITS[name]} exceeds {limit:g} (a corrupt value?)")
    return problems


def _label_problems(atoms: Atoms, results: dict, require: Sequence[str]) -> list[str]:
    problems = list(results.get("problems", ()))
    if problems:  # labels that are not real numbers: nothing more to check
        return problems
    n = len(atoms)
    for name in require:
        if results.get(name) is None:
            problems.append(f"missing {name}")
    energy = results.get("energy")
    if energy is not None and not np.isfinite(energy):
        problems.append(f"energy is {energy}")
    forces = results.get("forces")
    if forces is not None:
        forces = np.asarray(forces)
        if forces.shape != (n, 3):
            problems.append(f"shape mismatch: forces have shape {forces.shape}, expected ({n}, 3)")
        elif not np.isfinite(forces).all():
            bad = int(np.argwhere(~np.isfinite(forces))[0, 0])
            problems.append(f"forces contain NaN or inf (atom {bad})")
    stress = results.get("stress")
    if stress is not None:
        stress = np.asarray(stress)
        if stress.shape not in ((6,), (3, 3)):
            problems.append(f"shape mismatch: stress has shape {stress.shape}, expected (6,) or (3, 3)")
        elif not np.isfinite(stress).all():
            problems.append("stress contains NaN or inf")
    return problems + _beyond_limits(atoms, results)


def frame_problems(atoms: Atoms, results: dict, require: Sequence[str] = ()) -> list[str]:
    """All problems of one structure with labels ``results`` (energy, forces, stress)."""
    problems = []
    numbers = atoms.numbers
    unknown = sorted({int(z) for z in numbers if not 0 < z < len(chemical_symbols)})
    if unknown:
        problems.append(f"unknown element (atomic number {unknown[0]})")
    if len(atoms) == 0:
        problems.append("structure has no atoms")
    coordinates = coordinate_problem(atoms.positions, atoms.cell.array)
    positions_ok = coordinates is None
    if coordinates:
        problems.append(coordinates)
    cell = None if coordinates else degenerate_cell_message(atoms.cell.array, atoms.pbc)
    if cell:
        problems.append(cell)
    if positions_ok and cell is None and len(atoms) > 1:
        overlap = _closest_pair(atoms)
        if overlap:
            problems.append(overlap)
    problems.extend(_label_problems(atoms, results, require))
    return problems


def unit_problem(frames: Sequence[Atoms]) -> str | None:
    """A phrase when the forces of a dataset do not look like eV/Å (RMS above :data:`SUSPECT_FORCE_RMS`)."""
    forces = [np.asarray(a.calc.results["forces"]) for a in frames
              if a.calc is not None and a.calc.results.get("forces") is not None]
    if not forces:
        return None
    rms = float(np.sqrt(np.mean(np.concatenate(forces) ** 2)))
    if rms <= SUSPECT_FORCE_RMS:
        return None
    return (f"forces have an RMS of {rms:.1f} eV/Å, implausible for eV/Å (typical data: 0.3-3); "
            "kcal/mol/Å read as eV/Å look like this")
