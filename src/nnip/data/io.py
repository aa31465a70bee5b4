"""Reading and writing structures with labels, validated, with one-line errors.

``read`` accepts anything ASE reads (extxyz, xyz, traj, ASE db, ...) and MD17/rMD17
``.npz`` files, and returns ``ase.Atoms`` whose ``calc.results`` hold the labels in eV,
eV/Å and eV/Å^3. Every problem is reported as ``FILE: frame K: PROBLEM`` (or
``FILE: line L (frame K): PROBLEM`` for malformed text).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io.formats import string2index

from nnip.data.formats import is_mlearn_json, read_md17_npz, read_mlearn_json
from nnip.data.validation import REQUIRABLE, frame_problems, real_array
from nnip.data.xyz_scan import scan_xyz
from nnip.errors import ConfigError, DataError
from nnip.units import energy_factor

__all__ = ["read", "inspect", "write", "Inspection"]

_XYZ_SUFFIXES = {".xyz", ".extxyz"}


@dataclass
class Inspection:
    """Result of :func:`inspect`: the valid frames and every problem found (full messages)."""

    path: str
    frames: list[Atoms] = field(default_factory=list)
    frame_ids: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    n_frames_in_file: int = 0


def _selection(path, n: int, index: int | str | slice) -> list[int]:
    """Frame ids chosen by an ASE-style index; DataError for a malformed or out-of-range one."""
    try:
        selector = string2index(index) if isinstance(index, str) else index
        ids = list(range(n))
        if isinstance(selector, int):
            return [ids[selector]]
        return ids[selector]
    except IndexError:
        raise DataError(f"{path}: frame {index} does not exist (file has {n} frames)") from None
    except (TypeError, ValueError):
        raise DataError(f"{path}: bad frame index {index!r} (use e.g. ':', '-1', '10:20' or an int)") from None


def _label(labels: dict, name: str, value, factor: float, shape: tuple[int, ...] | None = None) -> None:
    """Put label ``name`` (real numbers, times ``factor``, reshaped to ``shape`` when given) into ``labels``,
    or a phrase into ``labels["problems"]`` when it is not real numbers."""
    labels[name] = None
    if value is None:
        return
    try:
        array = real_array(value, name) * factor
    except ValueError as error:
        labels.setdefault("problems", []).append(str(error))
        return
    if shape is not None and array.size != int(np.prod(shape)):
        labels.setdefault("problems", []).append(f"{name} has {array.size} values, expected {int(np.prod(shape))}")
        return
    labels[name] = array.reshape(shape) if shape is not None else array


def _labels(atoms: Atoms, energy_key: str, forces_key: str, stress_key: str, factor: float) -> dict:
    """Energy, forces, stress (eV units) and dipole (e Å) of a frame read by ASE (calculator, info or arrays)."""
    results = dict(atoms.calc.results) if atoms.calc is not None else {}
    labels: dict = {}
    _label(labels, "energy", results.get(energy_key, atoms.info.get(energy_key)), factor, ())
    _label(labels, "forces", results.get(forces_key, atoms.arrays.get(forces_key)), factor)
    _label(labels, "stress", results.get(stress_key, atoms.info.get(stress_key)), factor)
    _label(labels, "dipole", results.get("dipole", atoms.info.get("dipole")), 1.0, (3,))
    if labels["energy"] is not None:
        labels["energy"] = float(labels["energy"])
    return labels


def _clean_atoms(atoms: Atoms, labels: dict, drop: Sequence[str]) -> Atoms:
    """A fresh Atoms with the labels on a SinglePointCalculator, the remaining info and the constraints kept."""
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.set_constraint([c.copy() for c in atoms.constraints])
    out.info = {k: v for k, v in atoms.info.items() if k not in drop}
    for name in ("initial_charges", "initial_magmoms"):
        if atoms.has(name):
            out.set_array(name, atoms.get_array(name))
    present = {k: v for k, v in labels.items() if v is not None and k != "problems"}
    if present:
        out.calc = SinglePointCalculator(out, **present)
    return out


def _read_ase(path: Path, fmt: str | None, keys: tuple[str, str, str], factor: float,
              problems: list[str]) -> list[tuple[Atoms, dict]]:
    """Frames ASE can parse; a parse failure ends the list and is added to ``problems``."""
    frames = []
    try:
        for atoms in ase.io.iread(path, index=":", format=fmt):
            frames.append((atoms, _labels(atoms, *keys, factor)))
    except Exception as error:  # ASE's parsers raise many types on malformed input
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        problems.append(f"{path}: frame {len(frames)}: cannot parse ({message})")
    return frames


def _not_empty(path: Path, frames: list) -> list:
    """``frames``; DataError 'file is empty' when there are none (as for every format)."""
    if not frames:
        raise DataError(f"{path}: file is empty (no structures)")
    return frames


def _load(path, fmt, keys, energy_unit) -> tuple[list[tuple[Atoms, dict]], list[str]]:
    """All frames of a file with their labels, and the file- and line-level problems."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    is_npz = path.suffix.lower() == ".npz" or fmt == "npz"
    try:
        factor = energy_factor(energy_unit or ("kcal/mol" if is_npz else "eV"))
    except ValueError as error:
        raise DataError(f"{path}: {error}") from None
    if is_npz:
        return _not_empty(path, read_md17_npz(path, factor)), []
    if path.suffix.lower() == ".json" and is_mlearn_json(path):
        return _not_empty(path, read_mlearn_json(path, factor)), []
    problems: list[str] = []
    if path.suffix.lower() in _XYZ_SUFFIXES or fmt in ("xyz", "extxyz"):
        text = path.read_text(errors="replace")
        if not text.strip():
            raise DataError(f"{path}: file is empty")
        _, line_problems = scan_xyz(text)
        problems = [f"{path}: line {p.line} (frame {p.frame}): {p.message}" for p in line_problems]
        if problems:
            return [], problems
    frames = _read_ase(path, fmt, keys, factor, problems)
    if not frames and not problems:
        problems.append(f"{path}: file is empty (no structures)")
    return frames, problems


def inspect(
    path: str | os.PathLike,
    index: int | str | slice = ":",
    *,
    require: Sequence[str] = (),
    energy_unit: str | None = None,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    format: str | None = None,
) -> Inspection:
    """Read a file and collect every problem instead of stopping at the first (see :func:`read`)."""
    for name in require:
        if name not in REQUIRABLE:
            raise ConfigError(f"require: unknown label {name!r}; choose from {', '.join(REQUIRABLE)}")
    keys = (energy_key, forces_key, stress_key)
    raw, problems = _load(path, format, keys, energy_unit)
    result = Inspection(str(path), problems=problems, n_frames_in_file=len(raw))
    for k in _selection(path, len(raw), index):
        atoms, labels = raw[k]
        found = frame_problems(atoms, labels, require)
        result.problems.extend(f"{path}: frame {k}: {problem}" for problem in found)
        if not found:
            result.frames.append(_clean_atoms(atoms, labels, drop=keys))
            result.frame_ids.append(k)
    return result


def read(
    path: str | os.PathLike,
    index: int | str | slice = ":",
    *,
    require: Sequence[str] = (),
    energy_unit: str | None = None,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
    format: str | None = None,
) -> list[Atoms]:
    """Read and validate structures with their labels.

    Args:
        path: any ASE-readable file, or an MD17/rMD17 ``.npz`` (keys R/z/E/F or
            coords/nuclear_charges/energies/forces).
        index: frames to read, ASE style (":" all, "-1" last, "10:20", an int or a slice).
        require: labels every frame must have, from ("energy", "forces", "stress").
        energy_unit: unit of energies in the file ("eV", "kcal/mol", "kJ/mol", "Hartree",
            "meV"); forces and stress are taken in that unit per Å (Å^3). Default eV, and
            kcal/mol for ``.npz``.
        energy_key, forces_key, stress_key: names of the labels in the file (e.g. "REF_energy").
        format: ASE format name when the suffix does not tell it.

    Returns:
        One ``ase.Atoms`` per frame with ``atoms.calc.results`` holding energy (eV),
        forces (eV/Å) and stress (eV/Å^3) where present.

    Raises:
        DataError: ``FILE: frame K: PROBLEM`` for the first problem found: empty file,
            malformed line (with its number), missing labels, NaN/inf, atoms closer than
            0.3 Å, unknown element, shape mismatch, zero-volume periodic cell.
    """
    inspection = inspect(path, index, require=require, energy_unit=energy_unit, energy_key=energy_key,
                         forces_key=forces_key, stress_key=stress_key, format=format)
    if inspection.problems:
        more = len(inspection.problems) - 1
        suffix = f" (and {more} more problem{'s' * (more > 1)}; run `nnip info {path}` to list them)" if more else ""
        raise DataError(inspection.problems[0] + suffix)
    return inspection.frames


def write(path: str | os.PathLike, frames: Sequence[Atoms] | Atoms, format: str | None = None) -> None:
    """Write structures (with their calculator results) atomically: a crash never leaves a partial file.

    The data go to a temporary file in the same folder, which then replaces ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fmt = format or ("extxyz" if path.suffix.lower() in _XYZ_SUFFIXES else ase.io.formats.filetype(path, read=False))
    except ase.io.formats.UnknownFileTypeError:
        fmt = None
    if fmt not in ase.io.formats.ioformats:
        raise DataError(f"{path}: cannot tell the file format from its name; pass format= (e.g. 'extxyz')")
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    try:
        ase.io.write(tmp, frames, format=fmt)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it, not mkstemp's owner-only 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
