"""Tutorial 1: train a potential on your own extended-XYZ file.

What you learn
--------------
How to take a labelled dataset as you would get it from your own reference calculations
(energies and forces stored under custom names, in kcal/mol), check it, train a SchNet
network on it, measure its errors on structures it never saw, and use the trained model
as an ASE calculator.

Units: nnip works in ASE's units (eV, Å, eV/Å). Other energy units are converted once,
when the file is read (``energy_unit="kcal/mol"``; forces are then taken in kcal/mol/Å).

Steps
-----
1. Make "your" file. We stand in for your data with 200 ethanol structures shipped with
   nnip (rMD17, DFT PBE/def2-SVP), written as a typical code would: energies in
   ``atoms.info["REF_energy"]`` and forces in ``atoms.arrays["REF_forces"]``, both in
   kcal/mol(/Å). A further 40 structures are kept apart as a test set.
2. Check the file with ``nnip.inspect`` (what ``nnip info`` prints): every problem
   (missing labels, NaN, atoms on top of each other, ...) is listed with its frame.
   ``nnip.read`` gives validated ``ase.Atoms`` with the labels converted to eV.
3. Train: a config (the same keys as a YAML file for ``nnip train``) naming the label keys
   and the unit, then ``run_training``. The run folder ``runs/ethanol`` gets
   ``model.pt``, ``report.json`` and ``metrics.csv``.
4. Evaluate on the held-out structures with ``nnip.training.evaluate.evaluate``.
5. Attach ``nnip.Calculator`` to an ``ase.Atoms``: energies and forces, and check that
   the forces are minus the gradient of the energy (finite differences).

Run it in an empty folder: ``python train_on_your_extxyz.py`` (about 15 s on one core).
"""

import numpy as np
from ase.units import kcal, mol

import nnip
from nnip.data.summary import format_summary, summarize
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate, format_metrics

KCAL_MOL = kcal / mol  # eV per kcal/mol

# --- 1. A file like yours: custom label names, kcal/mol --------------------------------------
reference = nnip.read(nnip.data.bundled("ethanol_train.extxyz"))[:200]  # eV, eV/Å
held_out = nnip.read(nnip.data.bundled("ethanol_test.extxyz"))[:40]


def as_user_file(frames, path):
    """Write frames with REF_energy / REF_forces in kcal/mol, without ASE's standard labels."""
    out = []
    for atoms in frames:
        copy = atoms.copy()  # positions, numbers, cell; no calculator
        copy.info["REF_energy"] = atoms.get_potential_energy() / KCAL_MOL
        copy.arrays["REF_forces"] = atoms.get_forces() / KCAL_MOL
        out.append(copy)
    nnip.write(path, out)


as_user_file(reference, "my_ethanol.extxyz")
as_user_file(held_out, "my_ethanol_test.extxyz")

# --- 2. Check the file ---------------------------------------------------------------------
labels = dict(energy_key="REF_energy", forces_key="REF_forces", energy_unit="kcal/mol")
report = nnip.inspect("my_ethanol.extxyz", require=("energy", "forces"), **labels)
print(format_summary("my_ethanol.extxyz", summarize(report.frames), report.n_frames_in_file))
print("problems:", report.problems or "none")
assert not report.problems
frames = nnip.read("my_ethanol.extxyz", require=("energy", "forces"), **labels)
# the labels came back in eV and eV/Å, identical to the originals
assert np.allclose([a.get_potential_energy() for a in frames],
                   [a.get_potential_energy() for a in reference], rtol=0, atol=1e-6)
assert np.allclose(frames[0].get_forces(), reference[0].get_forces(), rtol=0, atol=1e-6)

# --- 3. Train ------------------------------------------------------------------------------
config = {
    "seed": 0,
    "output": "runs/ethanol",
    "data": {"train": "my_ethanol.extxyz", "test": "my_ethanol_test.extxyz",
             "split": {"val": 20},  # 20 structures cut from train to pick the best epoch
             **labels},
    "model": {"name": "schnet", "cutoff": 5.0, "features": 32, "interactions": 2, "basis": 20},
    "training": {
        "max_epochs": 40,  # small budget for the tutorial; raise max_epochs to 1000 (and features
                           # to 64, interactions to 3) for a real fit: see configs/schnet_ethanol.yaml
        "batch_size": 10, "lr": 0.01, "schedule": "cosine", "progress": False,
        "loss": {"energy_weight": 10.0, "forces_weight": 10.0},  # eV/atom and eV/Å, squared errors
    },
}
run = parse_config(config)  # validates every key; a typo is an error naming the closest valid key
result = run_training(run, run.as_dict())  # the same as `nnip train config.yaml`
print(f"trained {result['epochs']} epochs in {result['train_seconds']:.1f} s")

# --- 4. Errors on structures the model never saw -------------------------------------------
model = nnip.load("runs/ethanol/model.pt")
test = nnip.read("my_ethanol_test.extxyz", **labels)
metrics, predictions = evaluate(model, test)
print(format_metrics(metrics))
mean_abs_force = np.mean([np.abs(a.get_forces()).mean() for a in test])  # error of predicting F = 0
energy_spread = np.std([a.get_potential_energy() for a in test])       # error of predicting the mean
print(f"baselines: mean |F| {1000 * mean_abs_force:.0f} meV/Å, energy std {1000 * energy_spread:.0f} meV")

# --- 5. The model as an ASE calculator -----------------------------------------------------
atoms = test[0].copy()
atoms.calc = nnip.Calculator(model, dtype="float64")  # float64 for clean finite differences
energy, forces = atoms.get_potential_energy(), atoms.get_forces()
print(f"E = {energy:.4f} eV (reference {test[0].get_potential_energy():.4f} eV)")

# forces are -dE/dr: central differences of the energy for a few coordinates
h, numeric = 1e-4, []
for i, k in [(0, 0), (3, 1), (8, 2)]:
    displaced = [atoms.copy() for _ in range(2)]
    for sign, copy in zip((1, -1), displaced):
        copy.positions[i, k] += sign * h
        copy.calc = atoms.calc
    e_plus, e_minus = (c.get_potential_energy() for c in displaced)
    numeric.append((-(e_plus - e_minus) / (2 * h), forces[i, k]))
print("finite-difference vs autograd force (eV/Å):", np.round(numeric, 5).tolist())

# --- Checks ------------------------------------------------------------------------------------
assert metrics["forces_mae"] < 0.3 * mean_abs_force  # learned the forces, not just their scale
assert metrics["energy_mae"] < 0.6 * energy_spread   # and the energy differences between structures
assert abs(energy - predictions.energy[0]) < 1e-4    # calculator and evaluate agree
assert all(abs(fd - f) < 1e-4 for fd, f in numeric)
assert np.abs(forces.sum(axis=0)).max() < 1e-6       # no net force on an isolated molecule
