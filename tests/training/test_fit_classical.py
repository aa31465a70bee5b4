"""Classical fitting: LJ parameters recovered from LJ-labelled argon clusters (acceptance test)."""

import numpy as np
import pytest

from nnip.data.dataset import AtomicDataset
from nnip.training import Trainer, TrainingConfig
from nnip.training.build import build_model
from nnip.training.config import ModelConfig

from nnip.testing.structures import argon_clusters

CUTOFF = 8.0


@pytest.mark.parametrize("start, optimizer", [((0.7, 1.3), "lbfgs"), ((0.7, 0.7), "lbfgs"), ((0.7, 1.3), "adam")])
def test_lj_parameters_recovered_within_one_percent(start, optimizer):
    rng = np.random.default_rng(sum(map(ord, optimizer)) + int(10 * start[1]))
    sigma, epsilon = rng.uniform(3.0, 3.8), rng.uniform(0.006, 0.016)  # known only to this test
    frames = argon_clusters(200, sigma, epsilon, seed=int(rng.integers(1000)))
    model = ModelConfig(terms=[{"name": "lj", "sigma": start[0] * sigma, "epsilon": start[1] * epsilon,
                                "cutoff": CUTOFF}], e0="zero")
    potential = build_model(model, [18], seed=0)
    dataset = AtomicDataset(frames, potential.neighbor_request())
    if optimizer == "lbfgs":
        config = TrainingConfig(max_epochs=15, optimizer="lbfgs", lr=1.0, schedule="constant", batch_size=200)
    else:
        config = TrainingConfig(max_epochs=100, batch_size=20, lr=0.02, schedule="cosine")
    config.progress = False
    config.loss.energy_weight, config.loss.forces_weight = 100.0, 1.0
    Trainer(potential, dataset, None, config).fit()
    lj = potential.terms[0]
    assert float(lj.sigma.values.detach()) == pytest.approx(sigma, rel=0.01)
    assert float(lj.epsilon.values.detach()) == pytest.approx(epsilon, rel=0.01)
