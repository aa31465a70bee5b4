"""pair_style nnip equals nnip.Calculator: energy, forces and virial of SchNet, the equivariant model, linear
ACE, the sparse GP and a sum of PaiNN and Behler-Parrinello on a molecule, fcc Cu, a triclinic cell and a cell
shorter than twice the cutoff (the classical sum: test_lammps_classical.py)."""

import pytest
import torch

from nnip.data.graph import AtomicGraph
from nnip.lammps.deploy import deploy, packaged_metadata
from nnip.potentials.contract.linear import get_coefficients, set_coefficients
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


@pytest.mark.parametrize("name", ["linear_ace", "sparse_gp"])
def test_density_terms_in_lammps_equal_the_calculator(name, lammps_plugin, tmp_path):
    """One-layer terms on a full neighbour list (no features exchanged), body order 4: linear ACE, and the sparse
    GP with its sparse points chosen from the test structures."""
    model = make_model(name)
    found = structures()
    model.fit_terms_to_data([AtomicGraph.from_atoms(a, model.neighbor_request(), dtype=torch.float64)
                             for a in found.values()])
    set_coefficients(model, 0.01 * torch.randn(get_coefficients(model).shape, dtype=torch.float64))
    package = tmp_path / f"{name}.pt2"
    _, difference = deploy(model, package)
    assert difference < 1e-9
    for (label, atoms), lammps in zip(found.items(), evaluate(package, list(found.values()), ELEMENTS, tmp_path)):
        expected = reference(model, atoms)
        for key in ("energy", "forces", "virial"):
            assert relative(lammps[key], expected[key]) < 1e-8, (label, key)


def test_float32_package_agrees_to_float32_precision(lammps_plugin, tmp_path, monkeypatch):
    """Also: the package carries its metadata, compiled in a cache of its own (Inductor's shared cache is rewritten
    outside its lock, so two processes deploying one model at once could package empty metadata)."""
    shared = tmp_path / "shared-cache"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(shared))
    model = make_model("schnet").float()
    package = tmp_path / "schnet32.pt2"
    metadata = deploy(model, package)[0]
    assert metadata["dtype"] == "float32"
    assert metadata.items() <= packaged_metadata(package).items()
    assert not list(shared.rglob("*_metadata.json"))
    found = structures()
    crystals = [found["fcc"], found["molecule"]]
    for atoms, lammps in zip(crystals, evaluate(package, crystals, ELEMENTS, tmp_path)):
        expected = reference(model, atoms)
        for key in ("energy", "forces", "virial"):
            assert relative(lammps[key], expected[key]) < 1e-5, key
