"""mlearn's virial stress read as ASE stress: the stress integrates to the DFT energy differences."""

import json

import numpy as np
import pytest

import nnip
from nnip.data import bundled
from nnip.data.formats import KBAR, mlearn_stress


def strain(reference, atoms) -> np.ndarray:
    """Small-strain tensor taking the reference cell to this one (cells as rows)."""
    deformation = np.linalg.solve(reference.cell.array, atoms.cell.array)
    return 0.5 * (deformation + deformation.T) - np.eye(3)


def test_stress_integrates_to_the_energy_differences_of_strained_cells():
    frames = nnip.read(bundled("si_elastic.extxyz"), require=("energy", "forces", "stress"))
    reference = frames[0]
    predicted, actual = [], []
    for atoms in frames[1:]:
        eps = strain(reference, atoms)
        assert 0 < np.abs(eps).max() <= 0.03
        # dE = V sigma : d(epsilon) along the path, trapezoid rule between the two ends
        work = 0.5 * (reference.get_volume() * reference.get_stress(voigt=False)
                      + atoms.get_volume() * atoms.get_stress(voigt=False))
        predicted.append(float(np.sum(work * eps)))
        actual.append(atoms.get_potential_energy() - reference.get_potential_energy())
    predicted, actual = np.array(predicted), np.array(actual)
    assert np.sqrt(np.mean(actual ** 2)) > 0.3  # eV: the cells really are strained
    assert np.sqrt(np.mean((predicted - actual) ** 2)) < 0.01  # 2.3 meV measured; wrong sign or order: > 0.4 eV


def test_mlearn_json_entries_are_read_with_ase_stress(tmp_path):
    atoms = nnip.read(bundled("si_elastic.extxyz"), index="1")[0]
    virial = [10.0, 20.0, 30.0, 1.0, 2.0, 3.0]  # kBar: xx yy zz xy yz zx, positive under compression
    entry = {"structure": {"lattice": {"matrix": atoms.cell.array.tolist()},
                           "sites": [{"species": [{"element": "Si", "occu": 1}], "xyz": p.tolist()}
                                     for p in atoms.positions]},
             "outputs": {"energy": -300.0, "forces": np.zeros((len(atoms), 3)).tolist(), "virial_stress": virial},
             "group": "Elastic", "tag": "train"}
    path = tmp_path / "si.json"
    path.write_text(json.dumps([entry]))
    read = nnip.read(path, require=("stress",))[0]
    expected = -KBAR * np.array([10.0, 20.0, 30.0, 2.0, 3.0, 1.0])  # ASE Voigt: xx yy zz yz xz xy
    assert read.get_stress() == pytest.approx(expected)
    assert mlearn_stress(virial) == pytest.approx(expected)
    assert KBAR == pytest.approx(1e8 / 1.602176634e-19 * 1e-30)  # 0.1 GPa in eV/Å^3
    assert read.info["config_type"] == "Elastic" and "virial_stress_mlearn" not in read.info
