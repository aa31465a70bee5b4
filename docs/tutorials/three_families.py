"""Tutorial 7: the lecture's three families on the same data, each with uncertainty from one model.

What you learn
--------------
nnip fits all three families of machine-learned potentials through one entry point and one
configuration: a linear model on a many-body basis (linear ACE, closed-form least squares), a
kernel model (a sparse Gaussian process on ACE descriptors, closed form with its regularisation
from the marginal likelihood) and a neural network (SchNet, trained by gradient descent). Each
gives error bars from the one model it is, with no ensemble of separately trained copies: the
Bayesian posterior of the linear coefficients, of the GP, and of the network's last layer
(LLPR). This tutorial fits the three to the same GFN2-xTB ethanol structures sampled at 300 K,
tests them on structures from 1000 K, and compares them in one table.

Steps
-----
1. Three configurations that differ only in ``model`` and ``training``: the closed-form fits
   take ``optimizer: least_squares`` (the GP with ``ridge: evidence``); the network trains for a
   fixed time. ``posterior_samples: 8`` makes each an ensemble of 16 posterior draws, calibrated
   on the validation forces.
2. One table: fit time, test energy and force errors, the mean predicted force std, and how well
   that std ranks the test structures' true force errors (Spearman) and how honest its size is
   (miscalibration area, 0 = perfectly calibrated), all from ``nnip.training.evaluate``.

Physics to expect: on 180 small-molecule structures the closed-form fits take seconds where the
network takes its minute, and here they are also the more accurate (about 0.11-0.13 eV/Å against
0.18 at 1000 K). Every error bar ranks the hot structures' errors (Spearman 0.6-0.9), but their
sizes differ: the linear and GP posteriors, calibrated on 300 K validation structures, stay about
the right size at 1000 K (miscalibration area below 0.05), while the network's last-layer std is a
fraction of its error there. The last layer only sees novelty through features the network learned
at 300 K (docs/uncertainty.md): calibrate it on data like what it will meet. At full size and
longer budgets the ranking of the families changes (benchmarks/linear_kernel.py: the equivariant
network is the most accurate on rMD17 ethanol). Run time: about 2 minutes.
"""

import nnip
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate

train_file = nnip.data.bundled("ethanol_gfn2_300K.extxyz")
test_file = nnip.data.bundled("ethanol_gfn2_1000K.extxyz")
data = {"train": str(train_file), "test": str(test_file), "split": {"val": 20}}

# --- 1. Three families, one configuration each ------------------------------------------------------
families = {
    "linear ACE": ({"name": "linear_ace", "cutoff": 5.0, "radial": 6, "l_max": 3, "degrees": [5, 6, 5]},
                   {"optimizer": "least_squares", "loss": {"energy_weight": 10.0, "forces_weight": 1.0}}),
    "sparse GP": ({"name": "sparse_gp", "cutoff": 5.0, "radial": 4, "l_max": 3, "degrees": [4, 5, 4],
                   "sparse_points": 300},
                  {"optimizer": "least_squares", "ridge": "evidence",
                   "loss": {"energy_weight": 10.0, "forces_weight": 1.0}}),
    "SchNet": ({"name": "schnet", "features": 32, "interactions": 3, "cutoff": 5.0},
               {"max_time": 60.0, "max_epochs": 10000, "batch_size": 8, "lr": 3e-3, "schedule": "cosine",
                "loss": {"energy_weight": 1.0, "forces_weight": 10.0}}),
}
results = {}
for name, (model, training) in families.items():
    folder = "runs/three_families/" + name.replace(" ", "_")
    config = {"seed": 0, "output": folder, "data": data, "model": model,
              "training": {**training, "posterior_samples": 8, "progress": False, "plots": False}}
    run = parse_config(config)
    report = run_training(run, run.as_dict())
    potential = nnip.load(folder + "/model.pt")  # 16 posterior draws whose mean is the fitted model
    metrics, _ = evaluate(potential, nnip.read(test_file))
    results[name] = {"seconds": report["train_seconds"], **metrics}

# --- 2. One table ------------------------------------------------------------------------------------
print(f"{'model':12s} {'fit s':>6s} {'E meV/atom':>10s} {'F meV/Å':>8s} {'std meV/Å':>9s} {'Spearman':>8s} "
      f"{'miscal.':>7s}")
for name, r in results.items():
    print(f"{name:12s} {r['seconds']:6.1f} {1000 * r['energy_mae_per_atom']:10.1f} {1000 * r['forces_mae']:8.0f} "
          f"{1000 * r['forces_std_mean']:9.0f} {r['uncertainty_spearman']:8.2f} "
          f"{r['forces_miscalibration_area']:7.3f}")

# --- Checks ---------------------------------------------------------------------------------------
closed_form, network = (results["linear ACE"], results["sparse GP"]), results["SchNet"]
assert all(r["forces_mae"] < 0.3 for r in results.values())             # eV/Å at 1000 K: working potentials
assert all(r["uncertainty_spearman"] > 0.3 for r in results.values())   # every error bar ranks its errors
assert all(r["forces_miscalibration_area"] < 0.1 for r in closed_form)  # the closed-form posteriors: right size
assert network["forces_std_mean"] < network["forces_mae"]               # the last layer: too confident at 1000 K
assert max(r["seconds"] for r in closed_form) < network["seconds"]
