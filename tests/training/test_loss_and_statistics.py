"""Loss by hand, masking of missing labels, E0 by least squares, splits, schedules and EMA."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from nnip import keys
from nnip.data.dataset import kfold_splits, random_split
from nnip.data.statistics import dataset_statistics, isolated_atom_e0, least_squares_e0
from nnip.errors import ConfigError, DataError
from nnip.training.loss import LossConfig, combine, loss_terms
from nnip.training.optim import EMA, Schedule

NAN = float("nan")


def batch():
    """Two structures (2 and 1 atoms); the second has no forces, the first no stress."""
    predicted = {keys.ENERGY: torch.tensor([1.0, -2.0], dtype=torch.float64),
                 keys.FORCES: torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.2, 0.0], [5.0, 5.0, 5.0]]),
                 keys.STRESS: torch.zeros(2, 3, 3, dtype=torch.float64)}
    targets = {keys.ENERGY: torch.tensor([0.0, -1.0], dtype=torch.float64),
               keys.FORCES: torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.3], [NAN, NAN, NAN]], dtype=torch.float64),
               keys.STRESS: torch.stack([torch.full((3, 3), NAN), torch.eye(3)]).double(),
               keys.WEIGHT: torch.tensor([1.0, 3.0], dtype=torch.float64)}
    return predicted, targets, torch.tensor([2.0, 1.0], dtype=torch.float64), torch.tensor([0, 0, 1])


def test_loss_equals_the_formula_by_hand_with_masking():
    config = LossConfig(energy_weight=2.0, forces_weight=10.0, stress_weight=5.0)
    terms = loss_terms(*batch(), config)
    energy = (1.0 * (1.0 / 2) ** 2 + 3.0 * (-1.0 / 1) ** 2) / 2  # weighted per-atom squared errors over 2 structures
    forces = (0.1**2 + (0.2**2 + 0.3**2)) / 2  # mean over the 2 atoms with forces of |dF|^2
    stress = 3.0 * (3 * 1.0) / 9 / 1  # only structure 1 has stress: mean over 9 components, weight 3
    expected = 2.0 * energy + 10.0 * forces + 5.0 * stress
    assert float(combine(terms, config)) == pytest.approx(expected, rel=1e-6)
    assert int(terms[keys.FORCES][1]) == 2 and int(terms[keys.STRESS][1]) == 1


def test_mae_and_huber_penalties():
    predicted, targets, n_atoms, index = batch()
    mae = LossConfig(energy_weight=1.0, forces_weight=0.0, energy="mae")
    assert float(combine(loss_terms(predicted, targets, n_atoms, index, mae), mae)) == pytest.approx((0.5 + 3.0) / 2)
    huber = LossConfig(energy_weight=1.0, forces_weight=0.0, energy="huber", huber_delta=0.6)
    # Huber: 0.5 e^2 below delta, delta (|e| - delta / 2) above.
    expected = (0.5 * 0.5**2 + 3.0 * 0.6 * (1.0 - 0.3)) / 2
    assert float(combine(loss_terms(predicted, targets, n_atoms, index, huber), huber)) == pytest.approx(expected)


def test_loss_of_a_batch_without_any_forces_is_finite():
    predicted, targets, n_atoms, index = batch()
    targets[keys.FORCES][:] = NAN
    value = combine(loss_terms(predicted, targets, n_atoms, index, LossConfig()), LossConfig())
    assert math.isfinite(float(value))


def test_loss_config_rejects_unknown_penalty():
    with pytest.raises(ConfigError, match="energy: expected one of mse, mae, huber"):
        LossConfig(energy="l1")


def labelled(symbols, energy, positions=None):
    atoms = Atoms(symbols, positions=positions if positions is not None else np.arange(len(symbols) * 3).reshape(-1, 3))
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.ones((len(symbols), 3)))
    return atoms


def test_least_squares_e0_recovers_per_element_energies():
    e0 = {1: -13.6, 8: -2040.0, 6: -1030.0}
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(20):
        counts = rng.integers(1, 5, size=3)
        symbols = "H" * counts[0] + "O" * counts[1] + "C" * counts[2]
        frames.append(labelled(symbols, counts[0] * e0[1] + counts[1] * e0[8] + counts[2] * e0[6]))
    fitted = least_squares_e0(frames, [1, 6, 8])
    for z, value in e0.items():
        assert fitted[z] == pytest.approx(value, abs=1e-8)
    stats = dataset_statistics(frames, [1, 6, 8], fitted, "least_squares")
    assert stats.mean_residual_per_atom == pytest.approx(0.0, abs=1e-9)
    assert stats.force_rms == pytest.approx(1.0)


def test_isolated_atom_e0_needs_every_element():
    frames = [labelled("H", -13.6), labelled("O", -2040.0)]
    assert isolated_atom_e0(frames, [1, 8]) == {1: -13.6, 8: -2040.0}
    with pytest.raises(DataError, match="element\\(s\\) C"):
        isolated_atom_e0(frames, [1, 6, 8], "atoms.xyz")


def test_random_split_and_kfold_partition_the_data():
    train, val, test = random_split(100, 0.1, 5, seed=3)
    assert len(val) == 10 and len(test) == 5 and sorted(train + val + test) == list(range(100))
    assert random_split(100, 0.1, 5, seed=3) == (train, val, test)
    folds = kfold_splits(10, 3, seed=0)
    assert sorted(i for _, fold in folds for i in fold) == list(range(10))
    for rest, fold in folds:
        assert sorted(rest + fold) == list(range(10))
    with pytest.raises(ConfigError, match="leave none"):
        random_split(10, 5, 5, seed=0)


def test_cosine_schedule_with_warmup_and_plateau():
    cosine = Schedule("cosine", lr=1.0, max_epochs=12, warmup_epochs=2, min_lr=0.0)
    rates = [cosine.lr] + [cosine.step(e, 0.0) for e in range(12)]
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert rates[7] == pytest.approx(0.5)  # half-way through the 10 cosine epochs
    assert rates[12] == pytest.approx(0.0, abs=1e-12)
    timed = Schedule("cosine", lr=1.0, max_epochs=1000, min_lr=0.0, max_time=100.0)
    assert timed.step(0, 0.0, elapsed=50.0) == pytest.approx(0.5)  # half the wall-clock budget
    assert timed.step(1, 0.0, elapsed=100.0) == pytest.approx(0.0, abs=1e-12)
    assert Schedule("cosine", lr=1.0, max_epochs=4, max_time=100.0).step(1, 0.0, elapsed=1.0) == pytest.approx(0.5)
    plateau = Schedule("plateau", lr=1.0, max_epochs=10, patience=1, factor=0.5)
    rates = [plateau.step(e, loss) for e, loss in enumerate([3.0, 2.0, 2.5, 2.5, 1.0, 1.5, 1.5])]
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_ema_averages_and_restores_the_weights():
    weight = torch.zeros(1)
    ema = EMA({"weight": weight}, decay=0.5)
    weight.fill_(1.0)
    ema.update()  # first update: d = min(0.5, 1/10) = 0.1
    assert float(ema.shadow["weight"]) == pytest.approx(0.9)
    with ema.applied():
        assert float(weight) == pytest.approx(0.9)
    assert float(weight) == 1.0


def test_mixed_periodic_and_molecular_batch_trains_on_stress_without_nan():
    """Stress exists only for the periodic structure; the cluster's NaN stress must not reach the gradient."""
    from ase.calculators.lj import LennardJones

    from nnip.data.dataset import AtomicDataset
    from nnip.testing.structures import argon_clusters, periodic_cell
    from nnip.training import Trainer, TrainingConfig
    from nnip.training.config import ModelConfig
    from nnip.training.build import build_model

    crystal = periodic_cell([18], 3.8, seed=1)
    crystal.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=6.0, smooth=False)
    labels = {k: crystal.calc.get_property(k, crystal) for k in ("energy", "forces", "stress")}
    crystal.calc = SinglePointCalculator(crystal, **labels)
    frames = [crystal] + argon_clusters(1, 3.4, 0.0104, cutoff=6.0)
    potential = build_model(ModelConfig(terms=[{"name": "lj", "sigma": 3.0, "cutoff": 6.0}], e0="zero"), [18], 0)
    config = TrainingConfig(max_epochs=2, batch_size=2, progress=False)
    config.loss.stress_weight = 1.0
    result = Trainer(potential, AtomicDataset(frames, potential.neighbor_request()), None, config).fit()
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    assert all(bool(torch.isfinite(p).all()) for p in potential.parameters())
    assert float(potential.terms[0].sigma.values.detach()) != 3.0
