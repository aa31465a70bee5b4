"""Active learning with one linear model: the Bayesian posterior of a closed-form linear ACE fit (its draws as
an ensemble) drives the adversarial attack and the selection, with EMT as the oracle."""

import numpy as np
import yaml
from ase.build import bulk
from ase.calculators.emt import EMT

import nnip
from nnip.active.loop import load_active_config, run_active
from nnip.active.store import Store


def emt_cells(count: int, seed: int, rattle: float):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(count):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + 0.02 * rng.normal()), cubic=True).repeat((2, 1, 1))
        atoms.rattle(rattle, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        atoms.get_forces(), atoms.get_stress()
        frames.append(atoms)
    return frames


def test_a_posterior_of_one_linear_fit_runs_the_adversarial_loop(tmp_path):
    nnip.write(tmp_path / "train.extxyz", emt_cells(20, seed=0, rattle=0.03))
    nnip.write(tmp_path / "test.extxyz", emt_cells(10, seed=1, rattle=0.15))
    config = {
        "seed": 0, "output": str(tmp_path / "run"),
        "data": {"train": str(tmp_path / "train.extxyz"), "test": str(tmp_path / "test.extxyz"), "split": {"val": 4}},
        "model": {"name": "linear_ace", "cutoff": 4.5, "radial": 3, "l_max": 2, "degrees": [2, 4, 3]},
        "training": {"optimizer": "least_squares", "posterior_samples": 4, "dtype": "float64",
                     "loss": {"energy_weight": 1.0, "forces_weight": 1.0}},
        "active": {"generations": 1, "oracle": "emt", "sampler": "adversarial", "seeds": 4,
                   "select": {"percentile": 0, "max_new": 3}, "attack": {"steps": 20}},
    }
    path = tmp_path / "active.yaml"
    path.write_text(yaml.safe_dump(config))
    rows = run_active(*load_active_config(path))
    labelled = [r for r in Store(tmp_path / "run" / "store.db").rows(generation=0) if r.status == "labelled"]
    assert len(rows) == 2 and 1 <= len(labelled) == int(rows[-1]["labels"]) <= 3
    model = nnip.load(tmp_path / "run" / "gen_01" / "model" / "model.pt")
    assert len(model) == 8  # the posterior's draws
    assert float(rows[-1]["test_forces_std_mean"]) > 0
