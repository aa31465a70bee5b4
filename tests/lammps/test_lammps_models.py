"""pair_style nnip equals nnip.Calculator: energy, forces and virial of SchNet, the equivariant model and a
sum of PaiNN and Behler-Parrinello on a molecule, fcc Cu, a triclinic cell and a cell shorter than twice
the cutoff (the classical sum: test_lammps_classical.py)."""

import pytest

from nnip.lammps.deploy import deploy
from nnip.testing.lammps import evaluate

from lammps_cases import ELEMENTS, make_model, reference, relative, structures


@pytest.mark.parametrize("name", ["schnet", "equivariant", "painn+bp"])
def test_lammps_equals_the_calculator_in_float64(name, lammps_plugin, tmp_path):
    model = make_model(name)
    package = tmp_path / f"{name}.pt2"
    metadata, difference = deploy(model, package)
    assert int(metadata["halo_width"]) > 0 and difference < 1e-9  # features exchanged between the 2 layers
    found = structures()
    results = evaluate(package, list(found.values()), ELEMENTS, tmp_path)
    assert len(results) == len(found)
    for (label, atoms), lammps in zip(found.items(), results):
        expected = reference(model, atoms)
        for key in ("energy", "forces", "virial"):
            assert relative(lammps[key], expected[key]) < 1e-8, (label, key)


def test_float32_package_agrees_to_float32_precision(lammps_plugin, tmp_path):
    model = make_model("schnet").float()
    package = tmp_path / "schnet32.pt2"
    assert deploy(model, package)[0]["dtype"] == "float32"
    found = structures()
    crystals = [found["fcc"], found["molecule"]]
    for atoms, lammps in zip(crystals, evaluate(package, crystals, ELEMENTS, tmp_path)):
        expected = reference(model, atoms)
        for key in ("energy", "forces", "virial"):
            assert relative(lammps[key], expected[key]) < 1e-5, key
