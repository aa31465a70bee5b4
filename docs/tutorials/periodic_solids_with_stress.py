"""Tutorial 5: periodic solids, stress, and the lattice constant.

What you learn
--------------
For crystals the stress tensor matters as much as the forces: it decides the lattice
constant, elastic constants and anything at constant pressure. nnip computes the stress of
any potential by differentiating the energy with respect to a symmetric strain,

    stress = (1/V) dE/d(strain)       (eV/Å^3, ASE's sign: NEGATIVE under compression;
                                       pressure P = -trace(stress)/3; 1 eV/Å^3 = 160.2 GPa)

and can train on it (``training.loss.stress_weight``). You will

1. make reference data: 70 strained (up to ±3 %) and rattled (0.05 Å) 8-atom fcc copper
   cells labelled by ASE's EMT potential through nnip's ``emt`` oracle (energy, forces and,
   for cells periodic in 3 directions, stress);
2. train the same SchNet twice, without and with a stress term in the loss, and compare
   their stress errors on held-out cells;
3. check that the model's stress is the strain derivative of its energy (finite
   differences), that a compressed crystal has negative stress (positive pressure) as in
   EMT, and that relaxing the cell (``nnip.md.run.relax(..., cell=True)``, what
   ``nnip relax --cell`` does) gives EMT's lattice constant.

EMT stands in for DFT here because it costs nothing; with your own data, stress labels
come from the ``stress`` key of an extxyz file (eV/Å^3, ASE sign). Run time: about 15 s.
"""

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

import nnip
from nnip.md.run import relax
from nnip.oracles import get_oracle
from nnip.training import run_training
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate

rng = np.random.default_rng(0)


def strained_cells(count):
    """8-atom fcc Cu cells with random symmetric strain (±3 %) and rattled atoms, unlabelled."""
    cells = []
    for _ in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
        strain = rng.uniform(-0.03, 0.03, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + (strain + strain.T) / 2), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(2**31)))
        cells.append(atoms)
    return cells


# --- 1. Reference data ------------------------------------------------------------------------
emt = get_oracle("emt")  # the same oracles `nnip label --oracle emt` uses
nnip.write("cu_train.extxyz", emt.label(strained_cells(60)))
nnip.write("cu_test.extxyz", emt.label(strained_cells(10)))
test = nnip.read("cu_test.extxyz", require=("energy", "forces", "stress"))
mean_stress = np.mean([np.abs(a.get_stress()).mean() for a in test])
print(f"mean |stress component| of the test cells: {mean_stress:.4f} eV/Å^3 ({mean_stress / GPa:.2f} GPa)")


# --- 2. Train without and with the stress term --------------------------------------------------
def train(stress_weight):
    config = {
        "seed": 0, "output": f"runs/cu_stress{stress_weight:g}",
        "data": {"train": "cu_train.extxyz", "test": "cu_test.extxyz", "split": {"val": 5}},
        "model": {"name": "schnet", "cutoff": 4.5, "features": 32, "interactions": 2, "basis": 20},
        "training": {
            "max_epochs": 30,  # tutorial budget; raise max_epochs to 300 (and use more cells) for a real fit
            "batch_size": 5, "lr": 0.01, "schedule": "cosine", "progress": False, "plots": False,
            # energy per atom in eV, forces eV/Å, stress eV/Å^3 (small numbers: a large weight)
            "loss": {"energy_weight": 10.0, "forces_weight": 10.0, "stress_weight": stress_weight},
        },
    }
    run = parse_config(config)
    run_training(run, run.as_dict())
    return nnip.load(f"{config['output']}/model.pt")


results = {}
for weight in (0.0, 1000.0):
    model = train(weight)
    metrics, _ = evaluate(model, test)
    results[weight] = (model, metrics)
    print(f"stress_weight {weight:6g}: test stress MAE {metrics['stress_mae']:.5f} eV/Å^3, "
          f"forces MAE {1000 * metrics['forces_mae']:.0f} meV/Å, energy MAE "
          f"{1000 * metrics['energy_mae_per_atom']:.1f} meV/atom")
model = results[1000.0][0]
calc = nnip.Calculator(model, dtype="float64")

# --- 3a. Stress is the strain derivative of the energy --------------------------------------
atoms = test[0].copy()
atoms.calc = calc
stress = atoms.get_stress(voigt=False)
h, energies = 1e-4, []
for sign in (1, -1):
    strained = atoms.copy()
    strain = np.eye(3)
    strain[0, 1] = strain[1, 0] = sign * h / 2  # symmetric xy strain of magnitude h
    strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
    strained.calc = calc
    energies.append(strained.get_potential_energy())
numeric_xy = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
print(f"stress xy: autograd {stress[0, 1]:.6f}, finite difference {numeric_xy:.6f} eV/Å^3")
reference = test[0].get_stress(voigt=False)
print(f"held-out cell, model vs EMT stress (GPa):\n{np.round(np.c_[stress, reference] / GPa, 2)}")

# --- 3b. A compressed crystal and the lattice constant ------------------------------------------
ideal = bulk("Cu", "fcc", a=3.6, cubic=True)
a_emt = relax(ideal, EMT(), fmax=1e-4, cell=True).cell.lengths()[0]
a_model = relax(ideal, calc, fmax=1e-4, cell=True).cell.lengths()[0]
print(f"lattice constant: EMT {a_emt:.4f} Å, model {a_model:.4f} Å")
compressed = bulk("Cu", "fcc", a=0.98 * a_emt, cubic=True)
pressure = {}
for name, calculator in (("EMT", EMT()), ("model", calc)):
    compressed.calc = calculator
    s = compressed.get_stress()  # Voigt: xx yy zz yz xz xy
    pressure[name] = -s[:3].mean() / GPa
    print(f"2 % compressed, {name}: stress xx {s[0]:.4f} eV/Å^3, pressure {pressure[name]:.2f} GPa")

# --- Checks ------------------------------------------------------------------------------------
without, with_stress = results[0.0][1]["stress_mae"], results[1000.0][1]["stress_mae"]
assert with_stress < 0.5 * without                   # the stress term is what teaches the stress
assert with_stress < 0.2 * mean_stress               # and it predicts held-out stresses
assert abs(numeric_xy - stress[0, 1]) < 1e-5         # stress = (1/V) dE/d(strain), by autograd
assert np.abs(stress - reference).max() < 0.3 * np.abs(reference).max()
assert pressure["EMT"] > 0 and pressure["model"] > 0  # compressed: positive pressure, negative stress
assert abs(pressure["model"] - pressure["EMT"]) < 0.3 * pressure["EMT"]
assert abs(a_model - a_emt) < 0.02                    # Å: the model's crystal has EMT's lattice constant
