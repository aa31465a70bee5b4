"""Models, structures and references shared by the LAMMPS tests (pair_style nnip against nnip.Calculator)."""

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk
from ase.geometry import cell_to_cellpar, cellpar_to_cell

import nnip
from nnip.data import bundled
from nnip.data.graph import AtomicGraph
from nnip.potentials import Ensemble, build_potential

#: H, C, O for the molecule, Cu for the crystals; LAMMPS atom types in this order
ELEMENTS = [1, 6, 8, 29]

CONFIGS = {
    "classical": [{"name": "lj", "config": {"sigma": 2.3, "epsilon": 0.05, "cutoff": 5.0}},
                  {"name": "morse", "config": {"cutoff": 5.0, "switch_on": 4.0}},
                  {"name": "buckingham", "config": {"A": 1000.0, "B": 3.0, "C": 10.0, "cutoff": 4.5}},
                  {"name": "zbl", "config": {"cutoff": 2.0, "switch_on": 1.2}},
                  {"name": "coulomb", "config": {"charges": {"H": 0.3, "C": -0.2, "O": -0.4, "Cu": 0.1},
                                                 "cutoff": 5.0}}],
    "schnet": [{"name": "schnet", "config": {"features": 16, "interactions": 2, "cutoff": 5.0}}],
    "equivariant": [{"name": "equivariant", "config": {"channels": 8, "l_max": 2, "layers": 2, "cutoff": 5.0}}],
    "linear_ace": [{"name": "linear_ace", "config": {"cutoff": 5.0, "radial": 4, "l_max": 2, "degrees": [3, 4, 3]}}],
    "sparse_gp": [{"name": "sparse_gp", "config": {"cutoff": 5.0, "radial": 3, "l_max": 2, "degrees": [2, 3, 2],
                                                   "sparse_points": 10}}],
    "painn+bp": [{"name": "painn", "config": {"features": 16, "interactions": 2, "cutoff": 5.0}},
                 {"name": "behler_parrinello", "config": {"cutoff": 4.5, "radial": 6, "hidden": [16, 16]}}],
}


def make_model(name: str, seed: int = 0, cutoff: float | None = None):
    torch.manual_seed(seed)
    terms = [{"name": t["name"], "config": {**t["config"], **({"cutoff": cutoff} if cutoff else {})}}
             for t in CONFIGS[name]]
    potential = build_potential({"elements": ELEMENTS, "terms": terms})
    potential.set_reference(e0={1: -13.6, 6: -1029.5, 8: -2041.3, 29: -3.7})
    return potential.double()


def make_ensemble(scale: float = 2.0) -> Ensemble:
    """Two SchNet members of different cutoffs (5 and 4.5 Å), calibrated by ``scale``."""
    ensemble = Ensemble([make_model("schnet", 1), make_model("schnet", 2, cutoff=4.5)])
    ensemble.variance_scale.fill_(scale)
    return ensemble


def _lower_triangular(atoms: Atoms) -> Atoms:
    """The same crystal in LAMMPS's restricted form (a along x, b in the xy plane)."""
    cell = cellpar_to_cell(cell_to_cellpar(atoms.cell.array))
    out = atoms.copy()
    out.set_cell(cell, scale_atoms=True)
    return out


def structures() -> dict[str, Atoms]:
    """A molecule in a non-periodic box, fcc Cu, a triclinic Cu cell, and a cell shorter than twice the cutoff."""
    molecule = nnip.read(bundled("ethanol_test.extxyz"), index="0")[0]
    molecule.pbc, molecule.cell = False, np.zeros((3, 3))
    fcc = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(3)
    triclinic = _lower_triangular(bulk("Cu", "fcc", a=3.61).repeat(4))  # the 60-degree primitive cell
    short = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)  # 7.22 Å < 2 x 5 Å
    found = {"molecule": molecule, "fcc": fcc, "triclinic": triclinic, "short": short}
    for k, atoms in enumerate(found.values()):
        if atoms.pbc.any():
            atoms.rattle(0.1, seed=k)
            atoms.wrap()
    return found


def reference(model, atoms: Atoms) -> dict[str, np.ndarray]:
    """nnip.Calculator's energy and forces, and the model's virial (defined without a cell too)."""
    calc = nnip.Calculator(model)
    atoms = atoms.copy()
    atoms.calc = calc
    out = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    if isinstance(model, Ensemble):
        out["force_std"] = atoms.calc.results["forces_std"]
    graph = AtomicGraph.from_atoms(atoms, model.neighbor_request(), dtype=model.dtype)
    with torch.enable_grad():
        out["virial"] = model(graph, compute_stress=True)["virial"][0].detach().double().numpy()
    return out


def relative(ours, theirs) -> float:
    """Largest |difference| over the largest |value| of the reference."""
    theirs = np.asarray(theirs, dtype=float)
    return float(np.abs(np.asarray(ours, dtype=float) - theirs).max() / max(np.abs(theirs).max(), 1e-300))
