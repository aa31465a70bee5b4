"""Tutorial 4: active learning with your own reference method ("oracle").

What you learn
--------------
Active learning grows a training set where the model is unsure: train an ensemble, search
for structures where its members disagree, have the reference method label the most
uncertain of them, retrain. Here the search is an adversarial attack (Schwalbe-Koda, Tan
and Gomez-Bombarelli, Nat. Commun. 12, 5104 (2021)): each seed structure is displaced by
gradient ascent on p(X) * sigma_F(X)^2, the ensemble's force variance weighted by a
Boltzmann factor that keeps energies plausible.

The reference method is yours. nnip asks only for an ASE calculator class that can be
built without arguments and returns ``energy`` (eV) and ``forces`` (eV/Å); the config
names it as ``oracle: module:Class``, exactly as ``nnip label --oracle module:Class``.
Put the class in a module on your PYTHONPATH (``my_dft.py`` -> ``oracle: my_dft:MyDFT``);
read settings such as a functional or a scratch folder from its defaults or environment
variables. In this tutorial the class lives in this script, so it is ``__main__:...``
(which works with the default ``workers: 1``; oracle processes need a real module).
From Python you can also hand ``run_active`` the object itself:
``run_active(..., oracle=nnip.oracles.base.CalculatorOracle("my-dft", MyDFT))``.

Steps
-----
1. The oracle: ``MyReference`` wraps ASE's EMT potential for copper (cheap, so the
   tutorial runs in seconds; replace the marked lines by your code) and counts its calls.
2. Initial data: 30 slightly rattled (0.05 Å) Cu13 icosahedra, labelled with the same
   class through ``nnip.oracles.CalculatorOracle`` (what ``nnip label`` does); a test set of
   strongly rattled (0.2 Å) clusters the initial data do not cover.
3. ``run_active`` with 1 generation: train a 2-member ensemble, attack 10 seeds, keep the
   candidates above the 50th percentile of the training spread and at least 0.02 Å RMSD
   from known structures, label them, retrain. Everything is in ``runs/active``:
   ``store.db`` (ASE database with every structure and its provenance), ``active.csv``,
   ``gen_00`` and ``gen_01`` with the ensembles.
4. Check what happened: the oracle was called once per chosen candidate and never more,
   the attacked structures were uncertain, the retrained ensemble learned them, and its
   error on the strongly rattled test clusters fell. (With budgets this small the test
   error of one generation is noisy; real runs watch it fall over several generations
   in ``active.csv`` / ``active.png``.)

Run time: about 15 s on one core.
"""

import numpy as np
import yaml
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT
from ase.cluster import Icosahedron
from ase.optimize import BFGS

import nnip
from nnip.active.loop import load_active_config, run_active
from nnip.active.samplers import spreads
from nnip.active.store import Store
from nnip.oracles import CalculatorOracle
from nnip.training.evaluate import evaluate


# --- 1. Your oracle ----------------------------------------------------------------------------
class MyReference(Calculator):
    """Energy (eV) and forces (eV/Å) from your reference method; here EMT stands in for it."""

    implemented_properties = ["energy", "forces"]
    calls = 0  # for the checks at the end; counts labelled structures in this process

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        MyReference.calls += 1
        reference = self.atoms.copy()        # --- replace these three lines by your code:
        reference.calc = EMT()               # write an input file, run the program,
        energy, forces = reference.get_potential_energy(), reference.get_forces()  # parse the output
        self.results = {"energy": energy, "forces": forces}


# --- 2. Initial data and a test set ------------------------------------------------------------
cluster = Icosahedron("Cu", noshells=2)  # 13 atoms, isolated (no periodic cell)
cluster.calc = EMT()
BFGS(cluster, logfile=None).run(fmax=1e-3)
rng = np.random.default_rng(0)


def rattled(count, amplitude):
    frames = []
    for _ in range(count):
        atoms = cluster.copy()
        atoms.calc = None
        atoms.rattle(amplitude, seed=int(rng.integers(2**31)))
        frames.append(atoms)
    return frames


oracle = CalculatorOracle("my_reference", MyReference)  # the object nnip builds from "__main__:MyReference"
nnip.write("cu13_initial.extxyz", oracle.label(rattled(30, 0.05)))
nnip.write("cu13_test.extxyz", oracle.label(rattled(20, 0.2)))
calls_before = MyReference.calls  # 50

# --- 3. One generation of adversarial active learning -------------------------------------------
config = {
    "seed": 0, "output": "runs/active", "ensemble": 2,
    "data": {"train": "cu13_initial.extxyz", "test": "cu13_test.extxyz", "split": {"val": 5}},
    "model": {"name": "schnet", "cutoff": 5.0, "features": 32, "interactions": 2, "basis": 20},
    "training": {"max_epochs": 40,  # tutorial budget; raise to 300 (and ensemble to 4) for real use
                 "batch_size": 5, "lr": 0.01, "schedule": "cosine",
                 "loss": {"energy_weight": 10.0, "forces_weight": 10.0}},
}
active = {
    "generations": 1,  # real runs: 4-10 generations until the test error stops falling
    "oracle": "__main__:MyReference",
    "sampler": "adversarial", "seeds": 10,  # attack 10 training structures
    "select": {"percentile": 50, "rmsd": 0.02, "max_new": 10},
    "new_weight": 2.0,  # labelled structures count twice in the loss
    # kT (eV per structure): how far above the training energies the attack may climb; lr: Å per step
    "attack": {"kT": 1.0, "steps": 30, "lr": 0.01},
}
with open("active.yaml", "w") as handle:  # the file `nnip active active.yaml` would run
    yaml.safe_dump({**config, "active": active}, handle, sort_keys=False)
rows = run_active(*load_active_config("active.yaml"))  # rows of runs/active/active.csv

# --- 4. What happened ----------------------------------------------------------------------------
# run_active printed one line per generation; active.csv holds the same rows with more columns.
store = Store("runs/active/store.db")
new = [a for a in store.labelled() if a.info["sampler"] == "adversarial"]
chosen = rows[0]["chosen"]
print(f"attack: {rows[0]['candidates']} candidates, {chosen} chosen, oracle calls in the loop: "
      f"{MyReference.calls - calls_before}")
displacements = [a.info["displacement"] for a in new]
print("RMSD of the chosen structures from their seeds (Å):", np.round(displacements, 3).tolist())

gen0, gen1 = (nnip.load(f"runs/active/gen_0{g}/model/model.pt") for g in (0, 1))
initial = nnip.read("cu13_initial.extxyz")
# sigma_F per structure (eV/Å), the quantity selection thresholds on. Its absolute value means
# little here: with 2 members the variance scale fitted on 5 validation structures is unreliable
# (tutorial 3 shows how to check calibration), but the ranking is what selection uses.
ratio = np.median(spreads(gen0, new)) / np.median(spreads(gen0, initial))
print(f"generation-0 ensemble spread on the attacked structures: {ratio:.0f} x that on the initial data")
before, _ = evaluate(gen0, new)  # errors on the structures the attack found, before and after
after, _ = evaluate(gen1, new)
print(f"force MAE on the attacked structures: generation 0 {1000 * before['forces_mae']:.0f} meV/Å, "
      f"generation 1 {1000 * after['forces_mae']:.0f} meV/Å")

# --- Checks ------------------------------------------------------------------------------------
assert len(rows) == 2 and chosen >= 1
assert MyReference.calls - calls_before == chosen == len(new)  # one oracle call per chosen structure
assert all(r.oracle == "__main__:MyReference" for r in store.rows(sampler="adversarial"))
assert int(rows[1]["n_train"]) == 30 + chosen
assert np.all(spreads(gen0, new) > float(rows[0]["threshold"]))  # above the 50th percentile of the data
assert ratio > 1.5                                                  # the attack found uncertain structures
assert after["forces_mae"] < before["forces_mae"]               # which the retrained ensemble learned
assert rows[1]["test_forces_mae"] < rows[0]["test_forces_mae"]  # and the test error fell
