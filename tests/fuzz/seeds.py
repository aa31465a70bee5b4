"""Valid small inputs that the fuzzer mutates: structures, their files in each format, configs and models.

Everything here is deterministic, so a case (seed, index) regenerates the same files anywhere.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ARGON_SIGMA, ARGON_EPSILON = 3.4, 0.0104
#: cubic box (Å) that non-periodic structures get in formats that always carry a lattice (mlearn)
BOX = 40.0


@dataclass
class Frame:
    """One labelled structure as plain arrays; ``cell`` None means non-periodic."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None
    energy: float | None
    forces: np.ndarray | None
    stress: np.ndarray | None = None  # Voigt (6,), eV/Å^3

    def copy(self) -> Frame:
        return copy.deepcopy(self)


def frames_of(atoms_list) -> list[Frame]:
    """Frames of ASE Atoms whose calculator holds the labels."""
    frames = []
    for atoms in atoms_list:
        results = atoms.calc.results if atoms.calc is not None else {}
        stress = results.get("stress")
        frames.append(Frame(
            numbers=atoms.numbers.copy(), positions=atoms.positions.copy(),
            cell=atoms.cell.array.copy() if atoms.pbc.all() else None,
            energy=None if results.get("energy") is None else float(results["energy"]),
            forces=None if results.get("forces") is None else np.array(results["forces"], dtype=float),
            stress=None if stress is None else np.array(stress, dtype=float).reshape(-1)[:6]))
    return frames


def to_atoms(frame: Frame):
    """ASE Atoms of a frame, labels on a SinglePointCalculator."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    periodic = frame.cell is not None
    atoms = Atoms(numbers=frame.numbers, positions=frame.positions,
                  cell=frame.cell if periodic else None, pbc=periodic)
    labels = {k: v for k, v in (("energy", frame.energy), ("forces", frame.forces), ("stress", frame.stress))
              if v is not None}
    if labels:
        atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


# ---- the structures --------------------------------------------------------------------------------------------


def structures() -> dict[str, list[Frame]]:
    """Named structure sets: molecules, a periodic solid with stress, LJ argon for training and evaluation."""
    import nnip
    from nnip.testing.structures import argon_clusters

    ethanol = nnip.read(nnip.data.bundled("ethanol_train.extxyz"), index="0:2")
    silicon = nnip.read(nnip.data.bundled("si_test.extxyz"), index="0")
    return {
        "ethanol": frames_of(ethanol),
        "silicon": frames_of(silicon),
        "argon": frames_of(argon_clusters(3, ARGON_SIGMA, ARGON_EPSILON, seed=5)),
        "argon_train": frames_of(argon_clusters(12, ARGON_SIGMA, ARGON_EPSILON, seed=3)),
    }


# ---- extxyz: a document of frames whose lines keep their roles -------------------------------------------------


@dataclass
class XyzFrame:
    """One extxyz frame as tokens: the count line, the comment's key=value pairs, one token list per atom."""

    count: str | None  # None: the line is deleted
    comment: dict[str, str] | None
    atoms: list[list[str]]


def _floats(values) -> str:
    return " ".join(f"{v:.10g}" for v in np.asarray(values, dtype=float).reshape(-1))


def xyz_frames(frames: list[Frame]) -> list[XyzFrame]:
    """The extxyz document of frames (species, positions and forces columns; energy, stress, lattice in the comment)."""
    from ase.data import chemical_symbols
    from ase.stress import voigt_6_to_full_3x3_stress

    document = []
    for frame in frames:
        properties = "species:S:1:pos:R:3" + (":forces:R:3" if frame.forces is not None else "")
        comment = {"Properties": properties}
        if frame.cell is not None:
            comment["Lattice"] = f'"{_floats(frame.cell)}"'
        if frame.energy is not None:
            comment["energy"] = f"{frame.energy:.12g}"
        if frame.stress is not None:  # extxyz holds the full 3x3 stress
            comment["stress"] = f'"{_floats(voigt_6_to_full_3x3_stress(frame.stress))}"'
        comment["pbc"] = '"T T T"' if frame.cell is not None else '"F F F"'
        rows = []
        for k, z in enumerate(frame.numbers):
            row = [chemical_symbols[z]] + [f"{v:.8f}" for v in frame.positions[k]]
            if frame.forces is not None:
                row += [f"{v:.8f}" for v in frame.forces[k]]
            rows.append(row)
        document.append(XyzFrame(str(len(frame.numbers)), comment, rows))
    return document


def xyz_text(document: list[XyzFrame]) -> str:
    """The file text of a document; deleted (None) count and comment lines are left out."""
    lines = []
    for frame in document:
        if frame.count is not None:
            lines.append(frame.count)
        if frame.comment is not None:
            lines.append(" ".join(f"{k}={v}" for k, v in frame.comment.items()))
        lines.extend(" ".join(row) for row in frame.atoms)
    return "".join(line + "\n" for line in lines)


# ---- MD17/rMD17 .npz, ASE db, mlearn JSON -----------------------------------------------------------------------

#: key names of the rMD17 and the original MD17 archives: positions, atomic numbers, energies, forces
NPZ_KEYS = {"rmd17": ("coords", "nuclear_charges", "energies", "forces"), "md17": ("R", "z", "E", "F")}


def npz_arrays(frames: list[Frame], keys: str = "rmd17") -> dict[str, np.ndarray]:
    """Arrays of an MD17-style archive (every frame has the first frame's atoms)."""
    r, z, e, f = NPZ_KEYS[keys]
    arrays = {r: np.stack([fr.positions for fr in frames]), z: frames[0].numbers.astype(np.int64)}
    if all(fr.energy is not None for fr in frames):
        arrays[e] = np.array([fr.energy for fr in frames])
    if all(fr.forces is not None for fr in frames):
        arrays[f] = np.stack([fr.forces for fr in frames])
    return arrays


def write_npz(arrays: dict[str, Any], path: Path) -> None:
    with open(path, "wb") as handle:  # np.savez would append .npz to a name without it
        np.savez(handle, **arrays)


def write_db(frames: list[Frame], path: Path) -> None:
    from ase.db import connect

    with connect(path, type="db", append=False) as db:
        for frame in frames:
            db.write(to_atoms(frame))


def mlearn_entries(frames: list[Frame]) -> list[dict[str, Any]]:
    """mlearn entries (pymatgen structure, outputs with virial_stress in kBar, VASP order and sign)."""
    from ase.data import chemical_symbols

    from nnip.data.formats import KBAR

    entries = []
    for frame in frames:
        cell = frame.cell if frame.cell is not None else BOX * np.eye(3)
        outputs: dict[str, Any] = {"energy": frame.energy,
                                   "forces": None if frame.forces is None else frame.forces.tolist()}
        if frame.stress is not None:
            xx, yy, zz, yz, xz, xy = -frame.stress / KBAR
            outputs["virial_stress"] = [xx, yy, zz, xy, yz, xz]
        entries.append({
            "structure": {"lattice": {"matrix": cell.tolist()},
                          "sites": [{"species": [{"element": chemical_symbols[z], "occu": 1}], "xyz": p.tolist()}
                                    for z, p in zip(frame.numbers, frame.positions)]},
            "outputs": outputs, "group": "fuzz"})
    return entries


def write_json(entries: Any, path: Path) -> None:
    path.write_text(json.dumps(entries))  # NaN and Infinity as JSON's non-standard literals, as Python reads them


# ---- configs and models -----------------------------------------------------------------------------------------


def train_config(train: Path, output: Path) -> dict[str, Any]:
    """One epoch of a Lennard-Jones fit on ``train`` (argon): well under a second."""
    return {
        "seed": 0, "output": str(output),
        "data": {"train": str(train), "split": {"val": 3, "test": 0}},
        "model": {"name": "lj", "sigma": 3.0, "epsilon": 0.012, "cutoff": 8.0, "e0": "zero"},
        "training": {"max_epochs": 1, "max_time": 10.0, "batch_size": 4, "eval_batch_size": 8, "lr": 0.01,
                     "optimizer": "adam", "schedule": "plateau", "plateau_factor": 0.5, "weight_decay": 0.0,
                     "ema_decay": 0.9, "clip_grad_norm": 10.0, "progress": False, "plots": False,
                     "loss": {"energy_weight": 1.0, "forces_weight": 1.0, "huber_delta": 0.01}},
    }


def active_config(train: Path, test: Path, output: Path) -> dict[str, Any]:
    """One generation of active learning on the 2-D double well: an ensemble of two tiny MLPs, one epoch each."""
    return {
        "seed": 0, "output": str(output), "ensemble": 2,
        "data": {"train": str(train), "test": str(test), "split": {"val": 0}},
        "model": {"name": "coordinate_mlp", "n_atoms": 1, "hidden": [8], "activation": "silu"},
        "training": {"max_epochs": 1, "max_time": 10.0, "batch_size": 50, "lr": 0.01, "dtype": "float64",
                     "progress": False, "plots": False, "loss": {"energy_weight": 1.0, "forces_weight": 1.0}},
        "active": {"generations": 1, "oracle": "double_well", "sampler": "random", "seeds": 2, "samples_per_seed": 1,
                   "rigid_invariant": False, "amplitude": 0.05, "new_weight": 2.0, "temperature": 300.0,
                   "select": {"percentile": 0, "rmsd": 0.0, "max_new": 2},
                   "attack": {"kT": 5.0, "steps": 3, "lr": 0.01}},
    }


def double_well_frames(points) -> list:
    """A particle in the 2-D double well at each (x, y), labelled by the DoubleWell oracle."""
    from ase import Atoms
    from ase.constraints import FixCartesian

    from nnip.oracles import DoubleWell

    frames = []
    for x, y in points:
        atoms = Atoms("H", positions=[[x, y, 0.0]])
        atoms.set_constraint(FixCartesian(0, mask=(False, False, True)))
        atoms.calc = DoubleWell()
        atoms.get_forces()
        frames.append(atoms)
    return frames


#: the models that ``nnip evaluate`` cases load: an argon LJ potential and a tiny untrained SchNet
MODEL_SPECS = {
    "lj": {"elements": [18], "terms": [{"name": "lj", "config": {"sigma": 3.3, "epsilon": 0.011, "cutoff": 8.0}}]},
    "schnet": {"elements": [18], "terms": [{"name": "schnet", "config": {
        "cutoff": 5.0, "features": 8, "interactions": 1, "basis": 8}}]},
}


# ---- everything a case may start from ---------------------------------------------------------------------------


@dataclass
class Seeds:
    """The valid inputs, built once per run: structure sets, model payloads and files shared by every case."""

    directory: Path
    frames: dict[str, list[Frame]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def argon_train(self) -> Path:
        return self.directory / "argon_train.extxyz"

    @property
    def argon(self) -> Path:
        return self.directory / "argon.extxyz"

    @property
    def well_train(self) -> Path:
        return self.directory / "well_train.extxyz"

    @property
    def well_test(self) -> Path:
        return self.directory / "well_test.extxyz"

    def model(self, name: str) -> Path:
        return self.directory / f"{name}.pt"


def build_seeds(directory: Path) -> Seeds:
    """Write the shared valid files into ``directory`` and return them with the structure sets."""
    import torch

    import nnip
    from nnip.potentials import build_potential

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    seeds = Seeds(directory, structures())
    for name, spec in MODEL_SPECS.items():
        torch.manual_seed(0)
        nnip.save(build_potential(spec), seeds.model(name))
        seeds.models[name] = torch.load(seeds.model(name), map_location="cpu", weights_only=True)
    (directory / "argon_train.extxyz").write_text(xyz_text(xyz_frames(seeds.frames["argon_train"])))
    (directory / "argon.extxyz").write_text(xyz_text(xyz_frames(seeds.frames["argon"])))
    grid = np.random.default_rng(0).uniform([-1.3, -0.5], [-0.5, 0.5], size=(12, 2))
    nnip.write(seeds.well_train, double_well_frames(grid[:8]))
    nnip.write(seeds.well_test, double_well_frames(grid[8:]))
    return seeds
