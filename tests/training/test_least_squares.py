"""training.optimizer: least_squares: the closed-form fit of linear terms recovers a linear ACE teacher through
`nnip.train`, and its coefficients equal numpy's ridge solution of the loss's weighted rows at the chosen lambda."""

import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator

import nnip
from nnip.calculator import Calculator
from nnip.data.dataset import AtomicDataset
from nnip.errors import ConfigError
from nnip.potentials import Potential
from nnip.potentials.contract.linear import design, get_coefficients, set_coefficients
from nnip.potentials.learned.linear_ace import LinearACE, LinearACEConfig
from nnip.testing.structures import periodic_cell
from nnip.training.config import TrainingConfig
from nnip.training.least_squares import fit_least_squares
from nnip.training.loss import LossConfig

ACE = {"cutoff": 3.5, "radial": 3, "l_max": 2, "degrees": [2, 4, 3]}


def teacher(e0: float = -3.0) -> Potential:
    """A linear ACE for Si with random coefficients: its labels are exactly representable by the same basis."""
    torch.manual_seed(1)
    potential = Potential([LinearACE(LinearACEConfig(**ACE), ["Si"])], ["Si"], e0={"Si": e0}).double()
    set_coefficients(potential, 0.02 * torch.randn(get_coefficients(potential).shape, dtype=torch.float64))
    return potential


def labelled_cells(potential: Potential, count: int, seed: int, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    calculator = Calculator(potential)
    frames = []
    for k in range(count):
        atoms = periodic_cell([14], 2.3, seed=seed * 1000 + k)
        atoms.calc = calculator
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy + noise * rng.normal(),
                                           forces=forces + noise * rng.normal(size=forces.shape), stress=stress)
        frames.append(atoms)
    return frames


def test_train_recovers_a_linear_ace_teacher_and_its_e0(tmp_path):
    source = teacher()
    nnip.write(tmp_path / "train.extxyz", labelled_cells(source, 40, seed=0))
    nnip.write(tmp_path / "test.extxyz", labelled_cells(source, 6, seed=1))
    report = nnip.train({"output": str(tmp_path / "run"), "data": {"train": str(tmp_path / "train.extxyz"),
                                                                   "test": str(tmp_path / "test.extxyz"),
                                                                   "split": {"val": 8}},
                         "model": {"name": "linear_ace", **ACE},
                         "training": {"optimizer": "least_squares", "dtype": "float64", "progress": False,
                                      "loss": {"energy_weight": 1.0, "forces_weight": 1.0, "stress_weight": 1.0}}})
    assert report["stopped"] == "least_squares" and report["epochs"] == 1
    assert report["test"]["energy_mae_per_atom"] < 1e-7 and report["test"]["forces_mae"] < 1e-6
    assert report["test"]["stress_mae"] < 1e-7
    fitted = nnip.load(tmp_path / "run" / "model.pt")
    assert float(fitted.e0[0]) == pytest.approx(-3.0, abs=1e-6)


def _numpy_ridge(potential: Potential, dataset: AtomicDataset, loss: LossConfig, lam: float) -> np.ndarray:
    """(X^T X + lambda I)^-1 X^T y with the rows of the loss written out: energy rows / N sqrt(w_E / n_E),
    force rows sqrt(w_F / n_F), stress rows sqrt(w_S / (9 n_S)); labels minus E0."""
    matrices, targets = [], []
    n_e, n_f, n_s = len(dataset), sum(len(a) for a in dataset.frames), len(dataset)
    for atoms in dataset.frames:
        graph = nnip.data.AtomicGraph.from_atoms(atoms, potential.neighbor_request())
        rows = design(potential, graph, forces=True, stress=True)
        n = len(atoms)
        e0 = float(potential.e0[0]) * n
        matrices.append(rows.energy.numpy() / n * np.sqrt(loss.energy_weight / n_e))
        targets.append(np.array([(atoms.get_potential_energy() - e0) / n * np.sqrt(loss.energy_weight / n_e)]))
        matrices.append(rows.forces.numpy().reshape(-1, rows.forces.shape[-1]) * np.sqrt(loss.forces_weight / n_f))
        targets.append(atoms.get_forces().reshape(-1) * np.sqrt(loss.forces_weight / n_f))
        matrices.append(rows.stress.numpy().reshape(9, -1) * np.sqrt(loss.stress_weight / (9 * n_s)))
        targets.append(atoms.get_stress(voigt=False).reshape(-1) * np.sqrt(loss.stress_weight / (9 * n_s)))
    x, y = np.concatenate(matrices), np.concatenate(targets)
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def test_coefficients_equal_numpy_ridge_at_the_chosen_lambda_without_validation_data():
    frames = labelled_cells(teacher(e0=0.0), 12, seed=2, noise=0.05)
    student = Potential([LinearACE(LinearACEConfig(**ACE), ["Si"])], ["Si"]).double()
    dataset = AtomicDataset(frames, student.neighbor_request())
    config = TrainingConfig(optimizer="least_squares", batch_size=5,
                            loss=LossConfig(energy_weight=2.0, forces_weight=1.0, stress_weight=0.5))
    result, _ = fit_least_squares(student, dataset, None, config, refit_e0=False)
    row = result.history[0]
    assert "gcv_score" in row and 0 < row["effective_parameters"] < get_coefficients(student).numel()
    expected = _numpy_ridge(student, dataset, config.loss, row["lambda"])
    np.testing.assert_allclose(get_coefficients(student).numpy(), expected, rtol=1e-6, atol=1e-9)


def test_least_squares_refuses_models_it_cannot_fit():
    from nnip.potentials import LennardJones, LennardJonesConfig

    lj = Potential([LennardJones(LennardJonesConfig(), ["Si"])], ["Si"])
    frames = labelled_cells(teacher(), 2, seed=3)
    with pytest.raises(ConfigError, match="fits linear terms"):
        fit_least_squares(lj, AtomicDataset(frames, lj.neighbor_request()), None,
                          TrainingConfig(optimizer="least_squares"), refit_e0=False)
    ace = Potential([LinearACE(LinearACEConfig(**ACE), ["Si"])], ["Si"])
    with pytest.raises(ConfigError, match="set it to mse"):
        fit_least_squares(ace, AtomicDataset(frames, ace.neighbor_request()), None,
                          TrainingConfig(optimizer="least_squares", loss=LossConfig(forces="huber")), refit_e0=False)


def test_posterior_ensemble_variances_equal_the_closed_form_bayesian_posterior():
    """Exact draws (K = P): the ensemble's energy and force variances equal x^T Sigma x with Sigma =
    sigma^2 (X^T X + lambda I)^-1 from numpy, sigma^2 = residual / (rows - effective parameters); its mean
    equals the fit."""
    from nnip.uncertainty.posterior import posterior_ensemble

    frames = labelled_cells(teacher(e0=0.0), 12, seed=4, noise=0.05)
    student = Potential([LinearACE(LinearACEConfig(**ACE), ["Si"])], ["Si"]).double()
    dataset = AtomicDataset(frames, student.neighbor_request())
    config = TrainingConfig(optimizer="least_squares", loss=LossConfig(energy_weight=1.0, forces_weight=1.0))
    _, fit = fit_least_squares(student, dataset, None, config, refit_e0=False)
    size = get_coefficients(student).numel()
    ensemble = posterior_ensemble(student, fit.posterior_factor(), samples=size)
    assert len(ensemble) == 2 * size

    rows, targets = [], []
    for atoms in frames:
        graph = nnip.data.AtomicGraph.from_atoms(atoms, student.neighbor_request())
        d = design(student, graph, forces=True)
        rows += [d.energy.numpy() / len(atoms) / np.sqrt(len(frames)),
                 d.forces.numpy().reshape(-1, size) / np.sqrt(sum(len(a) for a in frames))]
        targets += [np.array([atoms.get_potential_energy()]) / len(atoms) / np.sqrt(len(frames)),
                    atoms.get_forces().reshape(-1) / np.sqrt(sum(len(a) for a in frames))]
    x, y = np.concatenate(rows), np.concatenate(targets)
    lam = fit.figures["lambda"]
    inverse = np.linalg.inv(x.T @ x + lam * np.eye(size))
    coefficients = inverse @ x.T @ y
    dof = np.trace(inverse @ x.T @ x)
    sigma2 = ((x @ coefficients - y) ** 2).sum() / (len(y) - dof)
    covariance = sigma2 * inverse

    test = periodic_cell([14], 2.3, seed=99)
    graph = nnip.data.AtomicGraph.from_atoms(test, student.neighbor_request())
    d = design(student, graph, forces=True)
    energy_var = np.einsum("bp,pq,bq->b", d.energy.numpy(), covariance, d.energy.numpy())
    forces_var = np.einsum("nap,pq,naq->na", d.forces.numpy(), covariance, d.forces.numpy())
    out = ensemble(graph)
    np.testing.assert_allclose(out["energy"].detach().numpy(), student(graph)["energy"].detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(out["energy_var"].detach().numpy(), energy_var, rtol=1e-6)
    np.testing.assert_allclose(out["forces_var"].detach().numpy(), forces_var, rtol=1e-6, atol=1e-14)


def test_train_with_posterior_samples_saves_a_calibrated_ensemble_that_knows_what_it_has_not_seen(tmp_path):
    source = teacher()
    nnip.write(tmp_path / "train.extxyz", labelled_cells(source, 30, seed=5, noise=0.02))
    report = nnip.train({"output": str(tmp_path / "run"), "data": {"train": str(tmp_path / "train.extxyz"),
                                                                   "split": {"val": 8}},
                         "model": {"name": "linear_ace", **ACE},
                         "training": {"optimizer": "least_squares", "posterior_samples": 6, "progress": False,
                                      "plots": False}})
    model = nnip.load(tmp_path / "run" / "model.pt")
    assert len(model) == 12 and 0 < float(model.variance_scale) and "forces_std_mean" in report["val"]
    familiar, strange = periodic_cell([14], 2.3, seed=7), periodic_cell([14], 1.9, seed=7)  # strange: 17 % shorter
    spreads = []
    for atoms in (familiar, strange):
        atoms.calc = nnip.Calculator(model)
        atoms.get_forces()
        spreads.append(atoms.calc.results["max_force_std"])
    assert spreads[1] > 3 * spreads[0] > 0, spreads
    graph = nnip.data.AtomicGraph.from_atoms(strange, model.neighbor_request())
    graph.positions.requires_grad_(True)
    out = model.double()(graph, create_graph=True)
    (gradient,) = torch.autograd.grad(out["energy_var"].sum(), graph.positions)  # what the attack ascends
    assert torch.isfinite(gradient).all() and float(gradient.abs().max()) > 0
