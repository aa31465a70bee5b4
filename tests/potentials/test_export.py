"""torch.export of potentials: the exported program gives the same energies, forces and stress."""

import copy

import numpy as np
import pytest
import torch

import nnip
from nnip.cli import main
from nnip.data import bundled
from nnip.errors import DataError
from nnip.nn.execution import Memory
from nnip.potentials import build_potential
from nnip.potentials.files.export import compare, export_potential, graph_of, load_exported, metadata_of, save_exported

MODELS = {"schnet": {"features": 16, "interactions": 2}, "painn": {"features": 16, "interactions": 2},
          "equivariant": {"channels": 8, "l_max": 2}, "lj": {"sigma": 2.1, "epsilon": 0.02, "cutoff": 5.0}}


def si_cluster():
    """A non-periodic Si cluster cut from a bundled crystal (same elements, no cell)."""
    crystal = nnip.read(bundled("si_test.extxyz"), index="0")[0]
    centre = crystal.positions.mean(axis=0)
    keep = np.linalg.norm(crystal.positions - centre, axis=1) < 5.0
    cluster = crystal[keep]
    cluster.pbc, cluster.cell = False, np.zeros((3, 3))
    return cluster


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_matches_the_model_on_crystals_and_clusters(name, tmp_path):
    potential = build_potential({"elements": [14], "terms": [{"name": name, "config": MODELS[name]}]})
    if name != "lj":
        potential.float()
    potential.memory = "recompute"  # ignored while exporting (traced with memory "keep")
    traced = copy.deepcopy(potential)
    traced.memory = "stream"  # likewise; the eager calls below recompute but do not stream
    crystals = nnip.read(bundled("si_test.extxyz"), index=":2")
    save_exported(export_potential(traced, graph_of(crystals[0], traced)), metadata_of(traced), tmp_path / "si.pt2")
    assert traced.memory == Memory(mode="stream")  # the setting is given back after tracing
    exported = load_exported(tmp_path / "si.pt2")
    rattled = crystals[1].copy()
    rattled.rattle(0.05, seed=3)  # another size of cell and edge list than the traced one
    worst = compare(potential, exported, [crystals[0], rattled, si_cluster()])
    assert worst["energy"] == 0.0 and worst["forces"] == 0.0 and worst["stress"] == 0.0
    # through the ASE calculator with a Verlet skin, as in MD
    atoms = rattled.copy()
    atoms.calc = nnip.Calculator(exported, skin=1.0)
    reference = rattled.copy()
    reference.calc = nnip.Calculator(potential, skin=1.0)
    assert atoms.get_forces() == pytest.approx(reference.get_forces(), abs=1e-12)
    assert atoms.get_stress() == pytest.approx(reference.get_stress(), abs=1e-12)


def test_exported_forces_are_minus_the_gradient_and_unknown_elements_are_refused(tmp_path):
    potential = build_potential({"elements": [1, 6, 8], "terms": [{"name": "schnet", "config": MODELS["schnet"]}]})
    potential.double()
    frames = nnip.read(bundled("ethanol_test.extxyz"), index=":2")
    save_exported(export_potential(potential, graph_of(frames[0], potential)), metadata_of(potential),
                  tmp_path / "ethanol.pt2")
    program = torch.export.load(tmp_path / "ethanol.pt2").module()  # plain torch, no nnip wrapper
    graph = graph_of(frames[1], potential)
    positions = graph.positions.clone().requires_grad_(True)
    energy, _ = program(positions, *[getattr(graph, k) for k in ("atomic_numbers", "cell", "pbc", "edge_index",
                                                                 "cell_shifts", "structure_index", "n_atoms",
                                                                 "total_charge")])
    forces = -torch.autograd.grad(energy.sum(), positions)[0]
    assert forces.numpy() == pytest.approx(potential(graph)["forces"].detach().numpy(), abs=1e-12)
    molecule = nnip.read(bundled("ethanol_test.extxyz"), index="0")[0]
    molecule.numbers[0] = 7  # nitrogen: not in the model
    with pytest.raises(DataError, match=r"atomic number \[7\] not known"):
        load_exported(tmp_path / "ethanol.pt2")(graph_of(molecule, potential))


def test_export_command_checks_and_writes(tmp_path, capsys):
    potential = build_potential({"elements": [1, 6, 8], "terms": [{"name": "painn", "config": MODELS["painn"]}]})
    nnip.save(potential.float(), tmp_path / "model.pt")
    test = str(bundled("ethanol_test.extxyz"))
    assert main(["export", str(tmp_path / "model.pt"), "--structures", test]) == 0
    assert "largest |difference| energy 0.0e+00 eV, forces 0.0e+00 eV/Å" in capsys.readouterr().out
    assert (tmp_path / "model.pt2").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.pt2"]
    assert main(["export", str(tmp_path / "model.pt"), "--structures", test]) == 2
    assert "exists; use --overwrite" in capsys.readouterr().err
