"""Metadynamics: the bias is a term of the potential contract; MD frames keep the unbiased labels."""

import numpy as np
import pytest
import torch
from ase.calculators.lj import LennardJones

import nnip
from nnip.cli import main
from nnip.data.batching import collate
from nnip.data.graph import AtomicGraph
from nnip.md.biased import BiasedCalculator
from nnip.md.metadynamics import MetadynamicsBias, MetadynamicsConfig
from nnip.md.run import MDSettings, run_md
from nnip.potentials import Potential, build_potential

CASES = (("distance", [0, 2]), ("angle", [1, 0, 2]), ("dihedral", [1, 0, 2, 8]))


def ethanol():
    return nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=0)[0]


def bias_with_hills(atoms, variable, indices, hills=3):
    bias = MetadynamicsBias(MetadynamicsConfig(variable, indices, height=0.05, width=0.2, pace=1, bias_factor=5),
                            sorted(set(atoms.numbers)))
    probe = atoms.copy()
    for _ in range(hills):  # hills near the current value, so the bias has a slope here
        probe.positions[0, 0] += 0.02
        bias.deposit(probe.positions)
    return bias


@pytest.mark.parametrize("variable, indices", CASES)
def test_collective_variables_match_ase_geometry(variable, indices):
    atoms = ethanol()
    bias = bias_with_hills(atoms, variable, indices, hills=0)
    value = float(bias.value(torch.tensor(atoms.positions)))
    expected = {"distance": lambda: atoms.get_distance(*indices),
                "angle": lambda: np.radians(atoms.get_angle(*indices)),
                "dihedral": lambda: np.radians((atoms.get_dihedral(*indices) + 180) % 360 - 180)}[variable]()
    assert value == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("variable, indices", CASES)
def test_bias_forces_are_minus_the_finite_difference_gradient(variable, indices):
    atoms = ethanol()
    bias = bias_with_hills(atoms, variable, indices)
    calculator = BiasedCalculator(LennardJones(sigma=1.0, epsilon=0.001, rc=3.0), [bias], sorted(set(atoms.numbers)))
    atoms.calc = calculator
    forces = atoms.get_forces() - calculator.results["unbiased_forces"]
    assert calculator.results["bias_energy"] > 1e-3
    h, numeric = 1e-5, np.zeros((len(atoms), 3))
    for i in indices:
        for c in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, c] += sign * h
                energies.append(float(bias.bias(bias.value(torch.tensor(moved.positions)))))
            numeric[i, c] = -(energies[0] - energies[1]) / (2 * h)
    np.testing.assert_allclose(forces, numeric, atol=1e-7)
    np.testing.assert_allclose(forces.sum(0), 0.0, atol=1e-12)  # a bias on internal coordinates exerts no net force


def test_bias_sums_with_a_model_in_one_potential_and_batches_per_structure():
    atoms = ethanol()
    bias = bias_with_hills(atoms, "dihedral", [1, 0, 2, 8])
    model = build_potential({"elements": ["C", "H", "O"], "terms": [
        {"name": "morse", "config": {"D": 0.1, "a": 1.5, "r0": 1.2, "cutoff": 4.0, "switch_on": 3.5}}]}).double()
    combined = Potential([*model.terms, bias], ["C", "H", "O"])
    other = atoms.copy()
    other.positions[8] += [0.0, 0.4, 0.1]
    graphs = [AtomicGraph.from_atoms(a, 4.0) for a in (atoms, other)]
    batch = combined(collate(graphs), compute_forces=True)["energy"].detach()
    for k, graph in enumerate(graphs):
        alone = float(model(graph)["energy"].detach().sum()) + float(bias.bias(bias.value(graph.positions)))
        assert float(batch[k]) == pytest.approx(alone, rel=1e-12)
    unbiased = model(collate(graphs))["energy"].detach()
    assert float(batch[1] - batch[0]) != pytest.approx(float(unbiased[1] - unbiased[0]))


def test_md_frames_carry_the_unbiased_labels_and_hills_grow(tmp_path):
    atoms = ethanol()
    base = LennardJones(sigma=1.0, epsilon=0.001, rc=3.0)
    bias = MetadynamicsBias(MetadynamicsConfig("distance", [0, 2], height=0.05, width=0.1, pace=5),
                            sorted(set(atoms.numbers)))
    calculator = BiasedCalculator(base, [bias], sorted(set(atoms.numbers)))
    settings = MDSettings(steps=40, timestep=0.5, temperature=300, thermostat="nve", interval=10, seed=0)
    run_md(atoms, calculator, settings, tmp_path / "md.extxyz", progress=False,
           observers=[(lambda moved: bias.deposit(moved.positions), 5)])
    assert len(bias.centres) == 8 and bool((bias.heights < 0.05).any())  # well-tempered heights shrink
    frames = nnip.read(tmp_path / "md.extxyz")
    assert frames[-1].info["bias_energy"] > 0
    for frame in frames:
        reference = frame.copy()
        reference.calc = LennardJones(sigma=1.0, epsilon=0.001, rc=3.0)
        assert frame.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(frame.get_forces(), reference.get_forces(), atol=1e-7)  # extxyz: 8 decimals


def ethanol_dihedral_basins(path, indices):
    angles = np.array([a.get_dihedral(*indices) for a in nnip.read(path)])
    angles = (angles + 180) % 360 - 180
    return {"trans": int(np.sum(np.abs(angles) > 120)), "gauche+": int(np.sum((angles > 0) & (angles <= 120))),
            "gauche-": int(np.sum((angles < 0) & (angles >= -120)))}


@pytest.mark.slow
def test_metadynamics_on_the_ethanol_dihedral_visits_all_three_minima(tmp_path):
    """GFN2-xTB at 100 K: plain MD stays in its gauche basin; metadynamics on C-C-O-H reaches all three."""
    start = nnip.read(nnip.data.bundled("ethanol_gfn2_300K.extxyz"), index=0)[0]
    nnip.write(tmp_path / "start.extxyz", start)
    symbols, distances = start.get_chemical_symbols(), start.get_all_distances()
    oxygen = symbols.index("O")
    carbons = sorted((i for i, s in enumerate(symbols) if s == "C"), key=lambda i: distances[oxygen, i])
    hydroxyl = min((i for i, s in enumerate(symbols) if s == "H"), key=lambda i: distances[oxygen, i])
    indices = [carbons[1], carbons[0], oxygen, hydroxyl]
    common = ["gfn2", str(tmp_path / "start.extxyz"), "--steps", "3000", "--timestep", "0.5", "--temperature",
              "100", "--interval", "10", "--seed", "1"]
    assert main(["md", *common, "--output", str(tmp_path / "plain.extxyz")]) == 0
    assert main(["md", *common, "--output", str(tmp_path / "meta.extxyz"),
                 "--metadynamics", "dihedral:" + ",".join(map(str, indices))]) == 0
    plain = ethanol_dihedral_basins(tmp_path / "plain.extxyz", indices)
    meta = ethanol_dihedral_basins(tmp_path / "meta.extxyz", indices)
    assert sum(count > 0 for count in plain.values()) == 1, plain
    assert all(count > 0 for count in meta.values()), meta
    profile = np.loadtxt(tmp_path / "meta_free_energy.csv", delimiter=",", skiprows=1)
    assert profile[:, 1].min() == 0.0 and profile[:, 1].max() > 0.02  # barriers between the minima
    assert (tmp_path / "meta_free_energy.png").is_file()
    hills = np.loadtxt(tmp_path / "meta_hills.csv", delimiter=",", skiprows=1)
    assert hills.shape == (3000 // 25, 3) and np.all(np.diff(hills[:, 1]) != 0)  # well-tempered: heights change


