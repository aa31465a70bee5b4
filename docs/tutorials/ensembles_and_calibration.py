"""Tutorial 3: ensembles, uncertainty, and whether to trust the error bars.

What you learn
--------------
A single network gives no warning when it is asked about structures unlike its training
data. An ensemble of M networks trained from different random starts agrees where the data
were dense and disagrees elsewhere; the spread (standard deviation over members) serves as
an error bar. You will

1. train an ensemble of 3 SchNet models (``ensemble: 3``) on ethanol from GFN2-xTB
   molecular dynamics at 300 K (data shipped with nnip);
2. evaluate it on held-out 300 K structures and on 1000 K structures, which visit
   geometries the 300 K run never saw, with ``nnip.training.evaluate.evaluate``:
   force error, mean force std, the Spearman rank correlation between predicted std and
   actual error per structure, and the miscalibration area (0 = the Gaussian error bars
   hold at every confidence level, 0.5 = worst);
3. check the calibration yourself: the variance is multiplied by a factor fitted on the
   validation set (``variance_scale`` in the model file: the factor that brings the
   calibration curve closest to the diagonal); compare it with the Gaussian
   maximum-likelihood factor, the mean of error^2/variance, which nnip does not use;
4. read ``energy_std`` (eV), per-atom ``forces_std`` (eV/Å) and ``max_force_std`` (eV/Å)
   from ``nnip.Calculator``, as an MD run would (``nnip md --stop-uncertainty``).

Units: energies eV, forces and their std eV/Å. Run time: about 15-20 s on one core.
"""

import numpy as np

import nnip
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate, format_metrics
from nnip.uncertainty import miscalibration_area

cold = nnip.read(nnip.data.bundled("ethanol_gfn2_300K.extxyz"))   # 200 frames, 10 fs apart
hot = nnip.read(nnip.data.bundled("ethanol_gfn2_1000K.extxyz"))[::2]  # 100 frames at 1000 K
nnip.write("train.extxyz", cold[:140])
nnip.write("val.extxyz", cold[140:160])   # picks the best epoch and calibrates the spread
nnip.write("test.extxyz", cold[160:])     # later in the same 300 K run

# --- 1. Train the ensemble ---------------------------------------------------------------------
config = {
    "seed": 0, "output": "runs/ensemble",
    "ensemble": 3,  # members with seeds 0, 1, 2, saved together as one model file
    "data": {"train": "train.extxyz", "val": "val.extxyz", "test": "test.extxyz"},
    "model": {"name": "schnet", "cutoff": 5.0, "features": 32, "interactions": 2, "basis": 20},
    "training": {
        "max_epochs": 25,  # tutorial budget; raise max_epochs to 500 and ensemble to 4-5 for real use
        "batch_size": 10, "lr": 0.01, "schedule": "cosine", "progress": False, "plots": False,
        "loss": {"energy_weight": 10.0, "forces_weight": 10.0},
    },
}
run = parse_config(config)
report = run_training(run, run.as_dict())
model = nnip.load("runs/ensemble/model.pt")  # an Ensemble: mean and variance of every output
scale = float(model.variance_scale)
print(f"{len(model)} members; variance scale fitted on val: {scale:.1f} (std x {np.sqrt(scale):.1f})")

# --- 2. Near the training data and far from it -------------------------------------------------
near, p_near = evaluate(model, nnip.read("test.extxyz"))
far, _ = evaluate(model, hot)
both, _ = evaluate(model, nnip.read("test.extxyz") + hot)
for name, m in (("300 K test", near), ("1000 K", far)):
    print(f"--- {name}\n{format_metrics(m)}")
print(f"Spearman(std, error) over both sets: {both['uncertainty_spearman']:.2f}")

# --- 3. Calibration, checked by hand ------------------------------------------------------------
# evaluate's variances already include the stored scale; divide it out to see the raw spread.
_, p_val = evaluate(model, nnip.read("val.extxyz"))
ratio = ((p_val.forces - p_val.forces_ref) ** 2 / (p_val.extra["forces_var"] / scale)).ravel()
mean_scale = np.mean(ratio)  # the Gaussian maximum-likelihood factor
errors, variances = p_near.forces - p_near.forces_ref, p_near.extra["forces_var"] / scale
area_raw = miscalibration_area(errors, variances)
area_stored = miscalibration_area(errors, scale * variances)
area_mean = miscalibration_area(errors, mean_scale * variances)
print(f"miscalibration area on the 300 K test set: raw spread {area_raw:.3f}, stored scale "
      f"({scale:.1f}) {area_stored:.3f}, mean scale ({mean_scale:.0f}) {area_mean:.3f}")
# Why not the mean: an M-member variance has M - 1 degrees of freedom, so with 2 or 3 members
# many force components get a near-zero variance and a huge error^2/variance, and the mean of
# that ratio follows those few (for 3 members it has no finite expectation at all). The stored
# factor calibrates the whole distribution of |error|/std instead.

# --- 4. The calculator's uncertainty outputs ----------------------------------------------------
calc = nnip.Calculator(model)
spread = {}
for name, frames in (("300 K", nnip.read("test.extxyz")[:10]), ("1000 K", hot[:10])):
    values = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        atoms.get_forces()
        values.append((calc.results["energy_std"], calc.results["max_force_std"]))
    spread[name] = np.mean(values, axis=0)
    print(f"{name}: mean energy_std {spread[name][0]:.3f} eV, mean max_force_std {spread[name][1]:.3f} eV/Å")
first = nnip.read("test.extxyz")[0]
first.calc = calc
forces_std = calc.get_property("forces_std", first)  # (N,) eV/Å, one per atom
# (ASE's atoms.get_properties() knows only its standard names; calc.results holds the rest after a call)

# --- Checks ------------------------------------------------------------------------------------
assert far["forces_mae"] > 1.3 * near["forces_mae"]           # 1000 K is harder: extrapolation
assert far["forces_std_mean"] > 1.3 * near["forces_std_mean"]  # ... and the ensemble notices
assert both["uncertainty_spearman"] > 0.3                      # larger std goes with larger error
assert spread["1000 K"][1] > spread["300 K"][1]
# per-atom std = sqrt of the summed variance of the three components, as evaluate computes it
expected = np.sqrt(p_near.extra["forces_var"][: len(first)].sum(axis=1))
assert np.allclose(forces_std, expected, rtol=1e-3, atol=1e-5)
assert np.isclose(calc.results["max_force_std"], forces_std.max())
assert area_stored < 0.1  # error bars that hold on data they were not fitted to
assert area_stored < area_mean
