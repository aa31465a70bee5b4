"""Tutorial 2: fit the parameters of a classical potential (Morse) to DFT silicon.

What you learn
--------------
A classical potential is a functional form with a handful of parameters. nnip trains it
with the same trainer, loss and data as a neural network; for few parameters the
full-batch L-BFGS optimizer converges in a few dozen steps. You will fit a Morse pair
potential

    V(r) = D [(1 - exp(-a (r - r0)))^2 - 1]     (D in eV, a in 1/Å, r0 in Å)

to periodic DFT (PBE) silicon cells shipped with nnip (mlearn Si: 12 training and 5 test
cells of 8 to 64 atoms), print the fitted parameters next to the initial ones, and compare
the errors before and after.

Steps
-----
1. The initial Morse potential from textbook-like guesses (D = 2 eV, a = 1.5/Å,
   r0 = 2.35 Å, the Si-Si bond length) and its force errors on the test cells.
2. The fit: ``optimizer: lbfgs`` on energies and forces. Because the DFT energies are
   absolute (about -5.4 eV/atom), the per-element reference energy E0 is fitted too
   (``train_e0: true``). This is ``configs/morse_si.yaml`` written as a Python dict.
3. The fitted parameters, read from the saved model, and the errors after the fit.

Physics to expect: a pair potential cannot describe silicon's tetrahedral bonding (that
needs three-body terms, e.g. Stillinger-Weber, or a learned potential), so errors stay at
a few hundred meV/Å; the fit still cuts the force error of the initial guess by more than
half. Run time: a few seconds on one core.
"""

import numpy as np
from ase import Atoms

import nnip
from nnip.potentials import Morse, MorseConfig, Potential
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate

train_file, test_file = nnip.data.bundled("si_train.extxyz"), nnip.data.bundled("si_test.extxyz")
test = nnip.read(test_file, require=("energy", "forces"))
initial = {"D": 2.0, "a": 1.5, "r0": 2.35}  # eV, 1/Å, Å

# --- 1. The initial guess --------------------------------------------------------------------
morse = Morse(MorseConfig(**initial, cutoff=5.0, switch_on=4.0), elements=[14])  # C2 switch 4 -> 5 Å
start = Potential([morse], elements=["Si"], e0={"Si": 0.0})
before, _ = evaluate(start, test)  # forces do not depend on E0, so the force errors are fair
print(f"initial Morse: test force MAE {1000 * before['forces_mae']:.0f} meV/Å")

# --- 2. The fit --------------------------------------------------------------------------------
config = {
    "seed": 0,
    "output": "runs/morse_si",
    "data": {"train": str(train_file), "test": str(test_file), "split": {"val": 2}},
    "model": {"name": "morse", **initial, "cutoff": 5.0, "switch_on": 4.0,
              "e0": "least_squares"},  # E0 starts from a least-squares fit of the residual energies
    "training": {
        "optimizer": "lbfgs", "lr": 1.0, "schedule": "constant",  # full batch with line search
        "max_epochs": 30,  # L-BFGS converges in a few epochs here (metrics.csv goes flat); a real fit
                           # of a richer form (more pairs, more terms) may need 100
        "dtype": "float64", "train_e0": True, "progress": False,
        "loss": {"energy_weight": 1.0, "forces_weight": 1.0},
    },
}
run = parse_config(config)
report = run_training(run, run.as_dict())
# model.pt holds the epoch with the lowest validation loss
print(f"{report['epochs']} L-BFGS epochs, best at epoch {report['best_epoch']}")

# --- 3. Fitted parameters and errors -----------------------------------------------------------
fitted_model = nnip.load("runs/morse_si/model.pt")
term = fitted_model.terms[0]
# each parameter is a table over element pairs (here only Si-Si); .values holds the fitted numbers
fitted = {name: float(getattr(term, name).values.detach()[0]) for name in initial}
e0 = float(fitted_model.e0[0])
print(f"{'':8}{'initial':>10}{'fitted':>10}")
for name, unit in (("D", "eV"), ("a", "1/Å"), ("r0", "Å")):
    print(f"{name + ' (' + unit + ')':8}{initial[name]:10.3f}{fitted[name]:10.3f}")
print(f"E0(Si) fitted: {e0:.3f} eV")

after, predictions = evaluate(fitted_model, test)
print(f"fitted Morse: test force MAE {1000 * after['forces_mae']:.0f} meV/Å, "
      f"energy MAE {1000 * after['energy_mae_per_atom']:.0f} meV/atom")

# the fitted pair curve: where the Si-Si dimer energy is lowest (should be near r0)
r = np.linspace(1.8, 4.0, 221)
curve = fitted["D"] * ((1 - np.exp(-fitted["a"] * (r - fitted["r0"]))) ** 2 - 1)
print(f"pair minimum at {r[np.argmin(curve)]:.2f} Å, depth {-curve.min():.3f} eV")

# --- Checks ------------------------------------------------------------------------------------
assert after["forces_mae"] < 0.5 * before["forces_mae"]  # the fit more than halves the force error
assert after["energy_mae_per_atom"] < 0.5                 # eV/atom: absolute energies reproduced via E0
assert fitted["D"] > 0 and fitted["a"] > 0
assert 2.0 < fitted["r0"] < 2.8                            # a Si-Si bond length, not a runaway parameter
assert fitted != initial
# a classical model's energy follows the formula exactly: two Si atoms 2.6 Å apart, away from the switch
dimer = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.6]])
dimer.calc = nnip.Calculator(fitted_model, dtype="float64")
expected = 2 * e0 + fitted["D"] * ((1 - np.exp(-fitted["a"] * (2.6 - fitted["r0"]))) ** 2 - 1)
assert abs(dimer.get_potential_energy() - expected) < 1e-8
