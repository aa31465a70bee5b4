"""Readers for formats ASE does not know: MD17/rMD17 ``.npz`` and mlearn/pymatgen JSON.

Each returns a list of (Atoms, labels) with labels {energy, forces, stress} in eV units,
scaled by ``factor`` (eV per energy unit of the file); validation happens in ``io``.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.data import atomic_numbers as _symbol_to_z

from nnip.data.validation import real_array
from nnip.errors import DataError

__all__ = ["MD17_KEYS", "read_md17_npz", "is_mlearn_json", "read_mlearn_json", "mlearn_stress", "KBAR"]

#: MD17 key sets: (positions, atomic numbers, energies, forces).
MD17_KEYS = (("R", "z", "E", "F"), ("coords", "nuclear_charges", "energies", "forces"))


def read_md17_npz(path: Path, factor: float) -> list[tuple[Atoms, dict]]:
    """Frames of an MD17/rMD17 archive; energies and forces multiplied by ``factor`` (eV per unit)."""
    try:
        data = np.load(path, allow_pickle=False)
    except _ARCHIVE_ERRORS as error:
        raise DataError(f"{path}: cannot read as .npz, truncated or corrupted ({_first_line(error)})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: holds a single array, not an .npz archive of MD17 keys")
    with data:
        try:
            return _md17_frames(path, data, factor)
        except DataError:
            raise
        except _ARCHIVE_ERRORS as error:  # a member that does not decompress, object arrays, text
            raise DataError(f"{path}: unreadable array ({_first_line(error)})") from None


#: what numpy raises for a damaged archive or member: zip and zlib errors, short reads, bad headers
_ARCHIVE_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError,
                   NotImplementedError, RuntimeError)  # the last two: an unknown compression, an 'encrypted' member


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


def _real(path: Path, data, key: str) -> np.ndarray:
    """Array ``key`` of an archive as float64; DataError when it is not real numbers."""
    try:
        return real_array(data[key], key)
    except ValueError as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: {error}") from None


def _md17_frames(path: Path, data, factor: float) -> list[tuple[Atoms, dict]]:
    for r_key, z_key, e_key, f_key in MD17_KEYS:
        if r_key in data and z_key in data:
            break
    else:
        raise DataError(f"{path}: no MD17 key set (R/z/E/F or coords/nuclear_charges/energies/forces); "
                        f"found {sorted(data.files)}")
    positions, numbers = _real(path, data, r_key), _real(path, data, z_key)
    if not (numbers == np.round(numbers)).all():
        bad = numbers[numbers != np.round(numbers)][0]
        raise DataError(f"{path}: {z_key} must be whole atomic numbers, got {bad:g}")
    numbers = numbers.astype(int)
    if positions.ndim != 3 or positions.shape[2] != 3 or numbers.shape != (positions.shape[1],):
        raise DataError(f"{path}: shape mismatch: {r_key} {positions.shape} and {z_key} {numbers.shape} "
                        "should be (frames, atoms, 3) and (atoms,)")
    n_frames, n_atoms = positions.shape[:2]
    energies = _real(path, data, e_key).reshape(-1) if e_key in data else None
    forces = _real(path, data, f_key) if f_key in data else None
    if energies is not None and energies.shape != (n_frames,):
        raise DataError(f"{path}: shape mismatch: {e_key} has {energies.shape[0]} values for {n_frames} frames")
    if forces is not None and forces.shape != positions.shape:
        raise DataError(f"{path}: shape mismatch: {f_key} has shape {forces.shape}, expected {positions.shape}")
    frames = []
    for k in range(n_frames):
        atoms = Atoms(numbers=np.clip(numbers, 0, None), positions=positions[k])
        labels = {
            "energy": None if energies is None else energies[k] * factor,
            "forces": None if forces is None else forces[k] * factor,
            "stress": None,
        }
        frames.append((atoms, labels))
    return frames


def is_mlearn_json(path: Path) -> bool:
    """True for a JSON list of {'structure': pymatgen dict, 'outputs': {...}} (the mlearn format)."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith(b"[") and b'"structure"' in head


def _mlearn_atoms(structure: dict) -> Atoms:
    symbols = []
    for site in structure["sites"]:
        species = max(site["species"], key=lambda s: s.get("occu", 1.0))
        symbols.append(_symbol_to_z.get(species["element"], 0))
    positions = real_array([site["xyz"] for site in structure["sites"]], "positions").reshape(len(symbols), 3)
    return Atoms(numbers=symbols, positions=positions, cell=real_array(structure["lattice"]["matrix"], "cell"),
                 pbc=True)


#: 1 kBar in eV/Å^3
KBAR = 0.1 * units.GPa


def mlearn_stress(virial_stress) -> np.ndarray:
    """ASE stress (Voigt xx yy zz yz xz xy, eV/Å^3) from mlearn's ``virial_stress``.

    mlearn stores VASP's stress: kBar, order xx yy zz xy yz zx, positive under compression
    (ASE's sign is the opposite). Checked on mlearn's own data: for the 13 "Elastic" cells
    within 3 % strain of the least-stressed one, the trapezoid integral of V sigma : d(epsilon)
    reproduces their DFT energy differences to 2.3 meV (RMS; the differences are 471 meV),
    while the other sign or the Voigt order miss by 944 or 440 meV (tests/data/test_mlearn.py).
    """
    v = real_array(virial_stress, "virial_stress").reshape(-1)
    if v.size != 6:
        raise ValueError(f"virial_stress has {v.size} values, expected 6 (xx yy zz xy yz zx)")
    return -KBAR * v[[0, 1, 2, 4, 5, 3]]


def read_mlearn_json(path: Path, factor: float) -> list[tuple[Atoms, dict]]:
    """mlearn data (Zuo et al. 2020): pymatgen structures with outputs energy (eV), forces (eV/Å)
    and ``virial_stress`` (see :func:`mlearn_stress`), read as ASE stress in eV/Å^3."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read as JSON ({error})") from None
    if not isinstance(entries, list):
        raise DataError(f"{path}: expected a JSON list of mlearn entries")
    frames = []
    for k, entry in enumerate(entries):
        try:
            frames.append(_mlearn_frame(entry, factor))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise DataError(f"{path}: frame {k}: malformed mlearn entry ({error!r})") from None
    return frames


def _mlearn_frame(entry: dict, factor: float) -> tuple[Atoms, dict]:
    """One mlearn entry -> (Atoms, labels in eV units)."""
    atoms = _mlearn_atoms(entry["structure"])
    outputs = entry.get("outputs") or {}
    for key in ("group", "description", "tag"):
        if key in entry:
            atoms.info["config_type" if key == "group" else key] = entry[key]
    energy = outputs.get("energy")
    forces = outputs.get("forces")
    return atoms, {
        "energy": None if energy is None else float(real_array(energy, "energy").reshape(())) * factor,
        "forces": None if forces is None else real_array(forces, "forces") * factor,
        "stress": mlearn_stress(outputs["virial_stress"]) if outputs.get("virial_stress") is not None else None,
    }
