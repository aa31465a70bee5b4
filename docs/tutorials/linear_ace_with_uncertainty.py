"""Tutorial 6: a linear ACE potential for silicon in closed form, with uncertainty from the one fit.

What you learn
--------------
The lecture's first family of machine-learned potentials is linear: the energy of an atom is
a weighted sum of fixed many-body basis functions, here the atomic cluster expansion (ACE,
complete up to body order 4), so fitting it to energies, forces and stress is a linear least
squares problem, solved exactly in seconds instead of trained for hours. The same fit is the
mean of a Bayesian posterior over the weights, whose spread gives every prediction an error
bar, with no ensemble of separately trained models.

Steps
-----
1. The fit: ``model.name: linear_ace`` with ``training.optimizer: least_squares`` on the
   DFT silicon cells shipped with nnip (mlearn Si: 12 training and 5 test cells). The ridge
   strength is chosen on the validation cells; ``posterior_samples: 8`` saves the posterior
   as 16 draws around the fit, calibrated on the validation forces.
2. Errors on the test cells and the fit's figures: the ridge strength and the effective
   number of coefficients the data determined.
3. The uncertainty at work: the largest per-atom force std on a test cell and on the same
   cell compressed by 12 % (a density the training data never saw), and how the std ranks
   the test cells' true force errors.

Physics to expect: with 12 cells the fit is rough (about 0.13 eV/Å; benchmarks/linear_kernel.py
reaches 69 meV/Å on the full mlearn set), but the error bars know where the data ends: the
compressed cell's force std is several times the test cell's. Calibrated on only two validation
cells, the error bars are too narrow (about 70 % of the test forces inside 2 sigma where a Gaussian
would have 95 %): calibrate on more validation data for honest intervals. Run time: about 15 s.
"""

import numpy as np

import nnip
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate

train_file, test_file = nnip.data.bundled("si_train.extxyz"), nnip.data.bundled("si_test.extxyz")

# --- 1. The fit ---------------------------------------------------------------------------------
config = {
    "seed": 0,
    "output": "runs/linear_ace_si",
    "data": {"train": str(train_file), "test": str(test_file), "split": {"val": 2}},
    "model": {"name": "linear_ace", "cutoff": 5.0, "radial": 6, "l_max": 3, "degrees": [5, 6, 5]},
    "training": {"optimizer": "least_squares", "posterior_samples": 8, "progress": False,
                 "loss": {"energy_weight": 100.0, "forces_weight": 1.0}},
}
run = parse_config(config)
report = run_training(run, run.as_dict())
print(f"fitted {report['n_parameters']} coefficients in {report['train_seconds']:.1f} s")

# --- 2. Errors and the fit's figures ---------------------------------------------------------------
model = nnip.load("runs/linear_ace_si/model.pt")  # the posterior: an ensemble of draws whose mean is the fit
metrics, predictions = evaluate(model, nnip.read(test_file))
print(f"test: energy MAE {1000 * metrics['energy_mae_per_atom']:.1f} meV/atom, "
      f"force MAE {1000 * metrics['forces_mae']:.0f} meV/Å, "
      f"mean predicted force std {1000 * metrics['forces_std_mean']:.0f} meV/Å")
with open("runs/linear_ace_si/metrics.csv") as handle:
    print("the fit:", handle.read().strip().replace("\n", " | "))

# --- 3. The uncertainty at work ------------------------------------------------------------------
cell = nnip.read(test_file, index="0")[0]
squeezed = cell.copy()
squeezed.set_cell(cell.cell.array * 0.88, scale_atoms=True)
spreads = {}
for name, atoms in (("test cell", cell), ("compressed by 12 %", squeezed)):
    atoms.calc = nnip.Calculator(model)
    atoms.get_forces()
    spreads[name] = atoms.calc.results["max_force_std"]
    print(f"{name:20s} largest per-atom force std {1000 * spreads[name]:.0f} meV/Å")
error = np.abs(predictions.forces - predictions.forces_ref)
print(f"forces within the predicted 2-sigma: {np.mean(error < 2 * np.sqrt(predictions.extra['forces_var'])):.0%}")

# --- Checks ---------------------------------------------------------------------------------------
assert report["stopped"] == "least_squares" and len(model) == 16
assert metrics["forces_mae"] < 0.2                                    # eV/Å: a working potential
assert spreads["compressed by 12 %"] > 3 * spreads["test cell"] > 0  # it knows what it has not seen
assert 0.5 < np.mean(error < 2 * np.sqrt(predictions.extra["forces_var"])) <= 1.0
