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
    result = fit_least_squares(student, dataset, None, config, refit_e0=False)
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
