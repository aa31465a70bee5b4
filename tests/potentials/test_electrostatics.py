"""Electrostatics: Ewald against the Madelung constant and a direct (Evjen) sum, charges, and the contract."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.nn.coulomb_sums import batch_pairs, direct_coulomb_energies, ewald_energies
from nnip.potentials import ZBL, Potential, ZBLConfig
from nnip.potentials.learned.electrostatics import Electrostatics, ElectrostaticsConfig
from nnip.potentials.learned.schnet import SchNet, SchNetConfig
from nnip.testing import PotentialContract
from nnip.units import COULOMB_CONSTANT

MADELUNG_ROCKSALT = 1.747564594633182  # e.g. Kittel, Introduction to Solid State Physics


def evjen_madelung(half_width: int) -> float:
    """Direct sum over a cube of +-half_width nearest-neighbour spacings, surface charges weighted (Evjen 1932)."""
    r = np.arange(-half_width, half_width + 1)
    i, j, k = np.meshgrid(r, r, r, indexing="ij")
    weight = np.ones(i.shape)
    for axis in (i, j, k):
        weight = weight * np.where(np.abs(axis) == half_width, 0.5, 1.0)
    distance = np.sqrt(i**2 + j**2 + k**2).astype(float)
    distance[half_width, half_width, half_width] = np.inf
    return float(-np.sum(weight * (-1.0) ** (i + j + k) / distance))


def ewald_of(atoms, charges, rc: float, accuracy: float = 1e-10) -> torch.Tensor:
    """Per-atom Ewald energies of ``atoms`` with the given charges (e), neighbour list from nnip."""
    graph = AtomicGraph.from_atoms(atoms, rc)
    center, neighbor = graph.edge_index
    cell = graph.cell[0]
    vectors = graph.positions[neighbor] - graph.positions[center] + graph.cell_shifts.to(torch.float64) @ cell
    q = torch.as_tensor(charges, dtype=torch.float64)
    return ewald_energies(graph.positions, cell, q, center, neighbor, vectors, rc, accuracy)


def rocksalt_ewald(a: float, rc: float):
    atoms = bulk("NaCl", "rocksalt", a=a, cubic=True)
    return ewald_of(atoms, [1.0 if z == 11 else -1.0 for z in atoms.numbers], rc)


@pytest.mark.parametrize("rc", [4.0, 6.0])
def test_ewald_rocksalt_matches_madelung_and_direct_summation(rc):
    a = 5.64
    energy = float(rocksalt_ewald(a, rc).sum())
    per_pair = -COULOMB_CONSTANT / (a / 2)  # k_e q^2 / r0 with 4 ion pairs in the cubic cell
    assert energy == pytest.approx(4 * per_pair * MADELUNG_ROCKSALT, rel=1e-8)
    assert energy == pytest.approx(4 * per_pair * evjen_madelung(24), rel=1e-6)


def test_ewald_of_one_charge_in_a_cubic_box_is_the_wigner_energy():
    """A single ion with its neutralising background: E = -k_e q^2 * 2.837297 / (2 L) (Wigner lattice sum)."""
    length = 10.0
    atoms = Atoms("Na", positions=[[1.0, 2.0, 3.0]], cell=np.eye(3) * length, pbc=True)
    energy = float(ewald_of(atoms, [1.0], 4.5).sum())
    assert energy == pytest.approx(-COULOMB_CONSTANT * 2.837297 / (2 * length), rel=1e-6)


def test_ewald_does_not_depend_on_the_choice_of_cell_vectors():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.1, seed=3)
    charges = [0.7 if z == 11 else -0.7 for z in atoms.numbers]
    skewed = atoms.copy()
    cell = skewed.cell.array.copy()
    cell[1] += 2 * cell[0]
    skewed.set_cell(cell, scale_atoms=False)
    assert float(ewald_of(skewed, charges, 5.0).sum()) == pytest.approx(float(ewald_of(atoms, charges, 5.0).sum()),
                                                                        rel=1e-9)


def fixed_charge_model(cutoff=4.5, charge=0.5):
    """Electrostatics whose charges are +-charge whatever the environment (charge network silenced)."""
    term = Electrostatics(ElectrostaticsConfig(cutoff=cutoff, features=8, interactions=1, basis=8), ["Na", "Cl"])
    with torch.no_grad():
        for p in term.charge_model.parameters():
            p.zero_()
        term.chi.copy_(torch.tensor([charge, -charge]))  # Na (Z=11) first, Cl (Z=17) second
    return Potential([term], ["Na", "Cl"]).double()


@pytest.mark.parametrize("r", [0.5, 1.0, 2.0, 4.4, 6.0])
def test_dimer_energy_is_gaussian_charge_coulomb(r):
    """E = k_e q1 q2 erf(r / (sqrt(2) sigma)) / r: finite at short range, bare Coulomb beyond the cutoff."""
    potential = fixed_charge_model()
    sigma = potential.terms[0].sigma
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [r, 0, 0]])
    result = potential(AtomicGraph.from_atoms(atoms, 4.5))
    expected = -0.25 * COULOMB_CONSTANT * math.erf(r / (math.sqrt(2) * sigma)) / r
    assert float(result[keys.ENERGY].detach()) == pytest.approx(expected, rel=1e-10)
    np.testing.assert_allclose(result[keys.DIPOLE][0].detach().numpy(), [-0.5 * r, 0, 0], atol=1e-12)


def test_periodic_gaussian_charges_are_ewald_minus_the_short_range_erfc_images():
    from ase.neighborlist import neighbor_list

    potential = fixed_charge_model(cutoff=4.5)
    sigma = potential.terms[0].sigma
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.05, seed=1)
    q = np.array([0.5 if z == 11 else -0.5 for z in atoms.numbers])
    point = float(ewald_of(atoms, q, 4.5).sum())
    i, j, d = neighbor_list("ijd", atoms, 4.5)
    correction = 0.5 * COULOMB_CONSTANT * sum(q[a] * q[b] * math.erfc(x / (math.sqrt(2) * sigma)) / x
                                              for a, b, x in zip(i, j, d))
    energy = float(potential(AtomicGraph.from_atoms(atoms, 4.5))[keys.ENERGY].detach())
    assert energy == pytest.approx(point - correction, rel=1e-7)
    assert torch.isnan(potential(AtomicGraph.from_atoms(atoms, 4.5))[keys.DIPOLE]).all()


def test_ewald_of_a_neutral_pair_in_a_huge_box_approaches_the_bare_coulomb_energy():
    positions = torch.tensor([[10.0, 10.0, 10.0], [12.5, 10.0, 10.0]], dtype=torch.float64)
    charges = torch.tensor([1.0, -1.0], dtype=torch.float64)
    first, second = batch_pairs(torch.tensor([2]), torch.tensor([True]))
    direct = float(direct_coulomb_energies(positions, charges, first, second).sum())
    assert direct == pytest.approx(-COULOMB_CONSTANT / 2.5)
    cell = torch.eye(3, dtype=torch.float64) * 60.0
    vector = positions[1] - positions[0]
    ewald = ewald_energies(positions, cell, charges, torch.tensor([0, 1]), torch.tensor([1, 0]),
                           torch.stack([vector, -vector]), 6.0)
    # the periodic images add a dipole-lattice term of order p^2 / L^3
    assert float(ewald.sum()) == pytest.approx(direct, abs=4 * COULOMB_CONSTANT * 2.5**2 / 60.0**3)


def test_charges_sum_to_the_total_charge_and_give_the_dipole():
    term = Electrostatics(ElectrostaticsConfig(cutoff=4.0, features=8, interactions=1, basis=8), ["H", "O"])
    potential = Potential([term], ["H", "O"]).double()
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]], info={"charge": -1.0})
    graph = AtomicGraph.from_atoms(water, 4.5)
    out = potential(graph)
    q = out[keys.CHARGES]
    assert float(q.detach().sum()) == pytest.approx(-1.0, abs=1e-12)
    expected_dipole = (q[:, None] * graph.positions).sum(dim=0)
    torch.testing.assert_close(out[keys.DIPOLE][0], expected_dipole)
    from nnip import Calculator

    water.calc = Calculator(potential)
    np.testing.assert_allclose(water.get_charges(), q.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(water.get_dipole_moment(), expected_dipole.detach().numpy(), atol=1e-12)


ELEMENTS = ["Na", "Cl"]


class TestElectrostaticsOnSchNet(PotentialContract):
    distance = 2.6
    nve_timestep = 1.0
    local = False

    def make_potential(self):
        schnet = SchNet(SchNetConfig(cutoff=4.0, features=8, interactions=1, basis=8), ELEMENTS)
        electrostatics = Electrostatics(ElectrostaticsConfig(cutoff=4.0, features=8, interactions=1, basis=8),
                                        ELEMENTS)
        with torch.no_grad():  # charges of about 0.1-0.3 e that depend on the environment, as after training
            torch.nn.init.normal_(electrostatics.charge_model.readout[-1].weight, std=0.3)
            electrostatics.chi.copy_(torch.tensor([0.2, -0.2]))
        repulsion = ZBL(ZBLConfig(cutoff=2.4, switch_on=1.8), ELEMENTS)  # keeps the ions apart in NVE
        return Potential([repulsion, schnet, electrostatics], ELEMENTS, scale=0.3)


def ion_pair(r: float):
    """Na+ Cl- at distance r (Å) labelled by fixed-charge Coulomb (+1/-1) plus LJ (sigma 2.8 Å, epsilon 0.1 eV)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    sigma, epsilon = 2.8, 0.1
    energy = -COULOMB_CONSTANT / r + 4 * epsilon * ((sigma / r) ** 12 - (sigma / r) ** 6)
    de_dr = COULOMB_CONSTANT / r**2 + 4 * epsilon * (-12 * sigma**12 / r**13 + 6 * sigma**6 / r**7)
    atoms = Atoms("NaCl", positions=[[0, 0, 0], [r, 0, 0]])
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=[[de_dr, 0, 0], [-de_dr, 0, 0]])
    return atoms


@pytest.mark.slow
def test_local_model_cannot_fit_beyond_its_cutoff_but_local_plus_electrostatics_can():
    from nnip.data.dataset import AtomicDataset
    from nnip.training import Trainer, TrainingConfig
    from nnip.training.build import build_model
    from nnip.training.config import ModelConfig
    from nnip.training.evaluate import evaluate
    from nnip.training.reference import initialise_reference

    rng = np.random.default_rng(0)
    train = [ion_pair(r) for r in rng.uniform(2.5, 12.0, 80)]
    beyond = [ion_pair(r) for r in np.linspace(4.2, 12.0, 30)]  # separations beyond the 4 Å cutoff
    local = {"name": "schnet", "cutoff": 4.0, "features": 16, "interactions": 2, "basis": 16}
    charges = {"name": "electrostatics", "cutoff": 4.0, "features": 8, "interactions": 1, "basis": 8}
    errors = {}
    for name, terms in (("local", [local]), ("local+electrostatics", [local, charges])):
        model = ModelConfig(terms=terms, e0="zero")
        potential = build_model(model, [11, 17], seed=0)
        dataset = AtomicDataset(train, potential.cutoff)
        initialise_reference(potential, model, dataset, None)
        config = TrainingConfig(max_epochs=120, batch_size=80, lr=0.02, schedule="cosine", progress=False)
        config.loss.energy_weight, config.loss.forces_weight = 1.0, 1.0
        Trainer(potential, dataset, None, config).fit()
        errors[name] = evaluate(potential, beyond)[0]["forces_mae"]
    true_mae = np.mean([np.abs(a.get_forces()).mean() for a in beyond])
    assert errors["local"] == pytest.approx(true_mae, rel=1e-6)  # it predicts exactly zero force there
    assert errors["local+electrostatics"] < 0.1 * errors["local"]


def test_dipole_is_a_training_target():
    """Trained on dipoles alone (no energies or forces), the charges of a separated ion pair become +-1."""
    from nnip.data.dataset import AtomicDataset
    from nnip.training import Trainer, TrainingConfig
    from nnip.training.build import build_model
    from nnip.training.config import ModelConfig
    from nnip.training.evaluate import evaluate

    frames = []
    for r in np.linspace(3.0, 10.0, 24):
        atoms = ion_pair(r)
        atoms.calc.results["dipole"] = np.array([-r, 0.0, 0.0])  # +1 at the origin, -1 at x = r
        frames.append(atoms)
    term = {"name": "electrostatics", "cutoff": 4.0, "features": 8, "interactions": 1, "basis": 8}
    potential = build_model(ModelConfig(terms=[term], e0="zero"), [11, 17], seed=0)
    config = TrainingConfig(max_epochs=60, batch_size=24, lr=0.05, schedule="constant", progress=False)
    config.loss.energy_weight, config.loss.forces_weight, config.loss.dipole_weight = 0.0, 0.0, 1.0
    before = evaluate(potential, frames)[0]["dipole_mae"]
    Trainer(potential, AtomicDataset(frames, potential.cutoff), None, config).fit()
    after = evaluate(potential, frames)[0]["dipole_mae"]
    assert after < 0.02 * before


def test_batch_pairs_are_all_pairs_within_each_included_structure():
    first, second = batch_pairs(torch.tensor([3, 1, 4, 2]), torch.tensor([True, True, False, True]))
    pairs = sorted(zip(first.tolist(), second.tolist()))
    assert pairs == [(0, 1), (0, 2), (1, 2), (8, 9)]
