"""Sparse GP: the potential contract; with every training environment a sparse point, its mean and variance
equal a dense Gaussian process's (numpy); the sparse points' selection rules; and marginal-likelihood
regularisation through `nnip train`."""

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

import nnip
from nnip.data.dataset import AtomicDataset
from nnip.data.graph import AtomicGraph
from nnip.nn.sparse_points import greedy_variance, leverage_cur
from nnip.potentials import Potential
from nnip.potentials.contract.edges import build_edges
from nnip.potentials.contract.linear import get_coefficients, set_coefficients
from nnip.potentials.learned.sparse_gp import SparseGP, SparseGPConfig
from nnip.testing import PotentialContract
from nnip.testing.structures import periodic_cell
from nnip.training.config import TrainingConfig
from nnip.training.least_squares import fit_least_squares
from nnip.training.loss import LossConfig

ELEMENTS = ["H", "C", "O"]
SMALL = {"cutoff": 4.0, "radial": 3, "l_max": 2, "degrees": [2, 3, 2]}


def fitted_gp(frames, elements, sparse_points: int, **options) -> Potential:
    """A float64 sparse GP whose sparse points are chosen from ``frames``."""
    potential = Potential([SparseGP(SparseGPConfig(**SMALL, sparse_points=sparse_points, **options), elements)],
                          elements).double()
    potential.fit_terms_to_data([AtomicGraph.from_atoms(a, potential.neighbor_request(), dtype=torch.float64)
                                 for a in frames])
    return potential


class TestSparseGP(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25
    trainer_lr = 1e-4

    def make_potential(self):
        frames = [periodic_cell([1, 6, 8], 1.4, seed=k) for k in range(3)]
        potential = fitted_gp(frames, ELEMENTS, 12)
        potential.set_reference(e0={"H": -0.5, "C": -1.5, "O": -2.0})
        set_coefficients(potential, 0.005 * torch.randn(get_coefficients(potential).shape, dtype=torch.float64))
        return potential


def _local(potential: Potential, frames):
    """Per atom: the GP's features, its kernel's diagonal and residual variance, and the linear-plus-kernel
    prior covariance between the atoms (numpy), for the frames' atoms in order."""
    term = potential.terms[0]
    features, species, descriptors, raw = [], [], [], []
    for atoms in frames:
        graph = AtomicGraph.from_atoms(atoms, potential.neighbor_request(), dtype=torch.float64)
        edges = build_edges(graph, graph.positions, graph.cell, potential.neighbor_request())
        s = potential.species(graph.atomic_numbers)
        invariants = term.basis(s, edges.center, edges.neighbor, edges.vectors, edges.lengths)
        features.append(term.features(s, edges))
        species.append(s)
        raw.append(term.features(s, edges)[:, :term.feature_scale.shape[0]])  # the linear part's features
        descriptors.append(term.descriptors(invariants))
    cat = lambda x: torch.cat(x).detach().numpy()  # noqa: E731
    return cat(features), cat(species), cat(raw), cat(descriptors)


def _prior(a, b, power):
    """Linear plus dot-product kernel between the atoms of (species, d, x) tuples a and b (zero across elements)."""
    same = a[0][:, None] == b[0][None, :]
    return np.where(same, a[1] @ b[1].T + (a[2] @ b[2].T) ** power, 0.0)


def test_with_every_environment_a_sparse_point_mean_and_variance_equal_a_dense_gp():
    """Energy labels only (the dense GP's observations are sums of local energies): predicted local energies and
    their variances at unseen environments, the coefficient posterior's variance plus the residual variance
    (DTC), equal the dense GP with the same kernel, lambda and noise."""
    rng = np.random.default_rng(0)
    train = [periodic_cell([14, 6], 2.0, seed=k) for k in range(6)]
    for atoms in train:
        atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()))
    n_train = sum(len(a) for a in train)
    potential = fitted_gp(train, ["C", "Si"], sparse_points=n_train + 5, power=2, jitter=1e-10)
    assert sum(potential.terms[0].sparse_counts()) == n_train
    config = TrainingConfig(optimizer="least_squares", ridge="evidence", batch_size=4,
                            loss=LossConfig(energy_weight=1.0, forces_weight=0.0))
    dataset = AtomicDataset(train, potential.neighbor_request())
    _, fit = fit_least_squares(potential, dataset, None, config, refit_e0=False)
    lam, noise = fit.figures["lambda"], fit.figures["noise_variance"]
    prior_scale = noise / lam

    _, s_train, d_train, x_train = _local(potential, train)
    test = [periodic_cell([14, 6], 2.0, seed=50 + k) for k in range(2)]
    phi, s_test, d_test, x_test = _local(potential, test)
    owner = np.repeat(np.arange(len(train)), [len(a) for a in train])
    sums = np.zeros((len(train), n_train))
    sums[owner, np.arange(n_train)] = 1.0
    noise_per_label = noise * len(train) * np.array([len(a) for a in train], dtype=float) ** 2
    k_nn = prior_scale * _prior((s_train, d_train, x_train), (s_train, d_train, x_train), 2)
    k_tn = prior_scale * _prior((s_test, d_test, x_test), (s_train, d_train, x_train), 2)
    k_tt = prior_scale * _prior((s_test, d_test, x_test), (s_test, d_test, x_test), 2)
    covariance = sums @ k_nn @ sums.T + np.diag(noise_per_label)
    labels = np.array([a.get_potential_energy() for a in train])
    cross = k_tn @ sums.T
    dense_mean = cross @ np.linalg.solve(covariance, labels)
    dense_var = np.diag(k_tt) - np.einsum("ij,ji->i", cross, np.linalg.solve(covariance, cross.T))

    coefficients = get_coefficients(potential).numpy().reshape(2, -1)
    mean = (phi * coefficients[s_test]).sum(axis=1)
    width = coefficients.shape[1]
    rows = np.zeros((len(s_test), 2 * width))
    for i, s in enumerate(s_test):
        rows[i, s * width:(s + 1) * width] = phi[i]
    factor = fit.posterior_factor().numpy()
    graphs = [AtomicGraph.from_atoms(a, potential.neighbor_request(), dtype=torch.float64) for a in test]
    residual = np.concatenate([potential.terms[0].residual_variance(
        potential.species(g.atomic_numbers), build_edges(g, g.positions, g.cell, potential.neighbor_request())
    ).detach().numpy() for g in graphs])
    variance = ((rows @ factor) ** 2).sum(axis=1) + prior_scale * residual
    np.testing.assert_allclose(mean, dense_mean, rtol=1e-5, atol=1e-7 * np.abs(dense_mean).max())
    np.testing.assert_allclose(variance, dense_var, rtol=1e-4)
    assert residual.max() > 1e-3  # unseen environments: the sparse points do not represent them


def test_selection_rules_pick_distinct_informative_environments():
    rng = np.random.default_rng(1)
    base = torch.tensor(rng.normal(size=(6, 5)))
    x = torch.cat([base, base[:3], 0.5 * base[3:4]])  # three duplicates and one parallel copy
    chosen = greedy_variance(x, power=2, count=10)
    assert len(chosen) == 6 and len(set(tuple(x[i].tolist()) for i in chosen)) == 6
    # the greedy rule is pivoted Cholesky: the kernel's residual after the chosen points is (numerically) zero
    k = (x @ x.T) ** 2
    kmm = k[chosen][:, chosen]
    residual = k.diagonal() - (k[:, chosen] @ torch.linalg.solve(kmm, k[chosen])).diagonal()
    assert float(residual.abs().max()) < 1e-8 * float(k.diagonal().max())
    lean = torch.tensor(rng.normal(size=(40, 3)) * [1.0, 1.0, 1e-3])
    lean[7] = torch.tensor([0.0, 0.0, 2.0])  # the only row spanning the third direction has leverage 1
    assert 7 in leverage_cur(lean, 3).tolist()


def test_train_sparse_gp_with_evidence_and_posterior(tmp_path):
    """`nnip train` with the sparse GP and training.ridge: evidence learns a Lennard-Jones liquid-like set better
    than the mean does, writes the log evidence, and saves a calibrated posterior ensemble."""
    from ase.calculators.lj import LennardJones as AseLJ

    frames = []
    for k in range(30):
        atoms = periodic_cell([18], 3.6, seed=k)
        atoms.calc = AseLJ(sigma=3.4, epsilon=0.0104, rc=6.0, smooth=True)
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        frames.append(atoms)
    nnip.write(tmp_path / "train.extxyz", frames[:24])
    nnip.write(tmp_path / "test.extxyz", frames[24:])
    report = nnip.train({"output": str(tmp_path / "run"),
                         "data": {"train": str(tmp_path / "train.extxyz"), "test": str(tmp_path / "test.extxyz"),
                                  "split": {"val": 4}},
                         "model": {"name": "sparse_gp", "cutoff": 6.0, "radial": 4, "l_max": 2, "degrees": [3, 4, 3],
                                   "sparse_points": 60},
                         "training": {"optimizer": "least_squares", "ridge": "evidence", "posterior_samples": 4,
                                      "dtype": "float64", "progress": False, "plots": False}})
    forces = np.concatenate([a.get_forces() for a in frames[24:]])
    assert report["test"]["forces_mae"] < 0.2 * np.abs(forces).mean()
    assert "forces_std_mean" in report["test"] and report["test"]["uncertainty_spearman"] > 0
    history = (tmp_path / "run" / "metrics.csv").read_text()
    assert "minus_log_evidence" in history
    model = nnip.load(tmp_path / "run" / "model.pt")
    assert len(model) == 8 and float(model.variance_scale) > 0
