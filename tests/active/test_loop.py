"""The active-learning loop on the 2-D double well of the adversarial-attack paper."""

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.constraints import FixCartesian

import nnip
from nnip.active.store import Store
from nnip.cli import main
from nnip.oracles import DoubleWell
from nnip.plots import surface_plot


def particle(x, y):
    atoms = Atoms("H", positions=[[x, y, 0.0]])
    atoms.set_constraint(FixCartesian(0, mask=(False, False, True)))  # it moves in x and y only
    return atoms


def labelled(points):
    frames = []
    for x, y in points:
        atoms = particle(x, y)
        atoms.calc = DoubleWell()
        atoms.get_forces()
        frames.append(atoms)
    return frames


def double_well_data(tmp_path):
    """Training points only where E < -2 (the left well); a test grid over both wells and the barrier."""
    rng = np.random.default_rng(0)
    points = rng.uniform([-1.3, -0.8], [1.2, 0.8], size=(4000, 2))
    x, y = points.T
    energy = 10 * x**4 - 10 * x**2 + 2 * x + 4 * y**2
    train = points[energy < -2][:40]
    gx, gy = np.meshgrid(np.linspace(-1.1, 1.0, 15), np.linspace(-0.5, 0.5, 7))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    nnip.write(tmp_path / "train.extxyz", labelled(train))
    nnip.write(tmp_path / "test.extxyz", labelled(grid))


def config(tmp_path, generations=7, **active):
    return {
        "seed": 0, "output": str(tmp_path / "run"), "ensemble": 5,
        "data": {"train": str(tmp_path / "train.extxyz"), "test": str(tmp_path / "test.extxyz"),
                 "split": {"val": 0}},
        "model": {"name": "coordinate_mlp", "n_atoms": 1, "hidden": [32, 32], "activation": "silu"},
        "training": {"max_epochs": 150, "batch_size": 200, "lr": 0.01, "schedule": "cosine", "dtype": "float64",
                     "loss": {"energy_weight": 1.0, "forces_weight": 1.0}},
        "active": {"generations": generations, "oracle": "double_well", "sampler": "adversarial", "seeds": 10,
                   "rigid_invariant": False, "select": {"percentile": 50, "rmsd": 0.02, "max_new": 10},
                   "attack": {"kT": 5.0, "normalisation": "structure", "steps": 60, "lr": 0.01}, **active},
    }


def log(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_adversarial_loop_climbs_out_of_the_well_and_the_error_falls(tmp_path):
    double_well_data(tmp_path)
    path = tmp_path / "active.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path)))
    assert main(["active", str(path)]) == 0
    rows = log(tmp_path / "run" / "active.csv")
    errors = [float(r["test_energy_mae"]) for r in rows]
    print([round(e, 3) for e in errors], [r["labels"] for r in rows])
    assert len(rows) == 8
    assert errors[-1] < 0.5 * errors[0]
    store = Store(tmp_path / "run" / "store.db")
    points = {"training" if g < 0 else f"generation {g}": np.array([r.positions[0, :2] for r in store.rows(generation=g)])
              for g in range(-1, 7)}
    assert max(points["training"][:, 0]) < -0.3 and max(xy[:, 0].max() for xy in points.values()) > 0.0
    # the attacks climbed out of the left well to the barrier (x ~ 0.1) and beyond
    x, y = np.linspace(-1.5, 1.5, 120), np.linspace(-1.6, 1.6, 100)
    gx, gy = np.meshgrid(x, y)
    surface_plot(x, y, 10 * gx**4 - 10 * gx**2 + 2 * gx + 4 * gy**2, points, tmp_path / "double_well.png", levels=40)
    assert (tmp_path / "double_well.png").stat().st_size > 10000


COUNTING_ORACLE = '''
import os, signal, time
from nnip.oracles import DoubleWell


class CountingDoubleWell(DoubleWell):
    """The double well, logging every started and finished call; it kills its own process at listed calls."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        starts = os.environ["CALL_STARTS"]
        started = len(open(starts).read().split()) if os.path.exists(starts) else 0
        with open(starts, "a") as handle:
            handle.write("x ")
        if started + 1 in {int(k) for k in os.environ["KILL_AT"].split(",")}:
            os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of an oracle call
        super().calculate(atoms, properties)
        time.sleep(0.02)
        with open(os.environ["CALL_LOG"], "a") as handle:
            handle.write(f"{atoms.positions[0, 0]:.10f} {atoms.positions[0, 1]:.10f}\\n")
'''


def test_killed_runs_resume_without_losing_or_repeating_an_oracle_call(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    double_well_data(tmp_path)
    (tmp_path / "counting.py").write_text(COUNTING_ORACLE)
    small = config(tmp_path, generations=2, oracle="counting:CountingDoubleWell", seeds=6,
                   select={"percentile": 0, "rmsd": 0.0, "max_new": 6})
    small["ensemble"] = 2
    small["training"].update(max_epochs=40)
    path = tmp_path / "active.yaml"
    path.write_text(yaml.safe_dump(small))
    rng = np.random.default_rng(1)
    kill_at = sorted(rng.choice(np.arange(2, 12), size=2, replace=False).tolist())  # two random oracle calls
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "CALL_LOG": str(tmp_path / "calls.txt"),
           "CALL_STARTS": str(tmp_path / "starts.txt"), "KILL_AT": ",".join(map(str, kill_at)), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "nnip.cli", "active", str(path)]
    runs, killed_in_training = 0, False
    while True:
        process = subprocess.Popen(command + (["--resume"] if runs else []), env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        runs += 1
        if not killed_in_training and runs > len(kill_at):  # and once more while generation 1 trains
            checkpoint = tmp_path / "run" / "gen_01" / "model" / "members" / "member_0" / "checkpoint.pt"
            while process.poll() is None and not checkpoint.exists():
                time.sleep(0.05)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed_in_training = True
        _, error = process.communicate(timeout=600)
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL, error
        assert runs < 8
    assert runs == len(kill_at) + 2 and killed_in_training
    store = Store(tmp_path / "run" / "store.db")
    labelled = [(r.generation, r.candidate) for r in store.rows(status="labelled") if r.sampler != "initial"]
    assert len(labelled) == len(set(labelled)) == 2 * 6  # every chosen candidate once
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == len(labelled)  # every finished oracle call is in the store, none was made twice
    starts = (tmp_path / "starts.txt").read_text().split()
    assert len(starts) == len(labelled) + len(kill_at)  # only the calls killed mid-way were made again
    assert len(log(tmp_path / "run" / "active.csv")) == 3


def test_short_ethanol_loop_with_gfn2_and_the_shipped_config(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    nnip.write(tmp_path / "start.extxyz", nnip.read(nnip.data.bundled("ethanol_gfn2_300K.extxyz"), index=slice(0, 20)))
    nnip.write(tmp_path / "test.extxyz", nnip.read(nnip.data.bundled("ethanol_gfn2_1000K.extxyz"), index=slice(0, 20)))
    overrides = [f"output={tmp_path / 'run'}", f"data.train={tmp_path / 'start.extxyz'}",
                 f"data.test={tmp_path / 'test.extxyz'}", "data.split.val=4", "ensemble=2", "model.features=16",
                 "model.interactions=1", "training.max_epochs=10", "active.generations=2", "active.seeds=4",
                 "active.select.max_new=4", "active.select.percentile=0", "active.attack.steps=10"]
    monkeypatch.chdir(root)
    assert main(["active", "configs/active/ethanol_gfn2.yaml", *[f"--set={o}" for o in overrides]]) == 0
    rows = log(tmp_path / "run" / "active.csv")
    assert [int(r["generation"]) for r in rows] == [0, 1, 2] and 0 < int(rows[-1]["labels"]) <= 8
    new = [r for r in Store(tmp_path / "run" / "store.db").rows(status="labelled") if r.sampler == "adversarial"]
    assert all(r.oracle == "gfn2" and np.isfinite(r.energy) and r.forces.shape == (9, 3) for r in new)
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("test_forces_mae", "test_forces_std_max"))


def test_store_keeps_labels_info_and_refuses_a_second_label(tmp_path):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    store = Store(tmp_path / "store.db")
    crystal = bulk("Cu", "fcc", a=3.6, cubic=True)
    crystal.rattle(0.05, seed=0)
    crystal.info["charge"] = 1.0
    crystal.calc = EMT()
    stress = crystal.get_stress()
    store.add(crystal, 0, "random", candidate=3, objective=0.2, oracle="emt")
    (back,) = store.labelled()
    np.testing.assert_allclose(back.get_stress(), stress)
    assert back.info["charge"] == 1.0 and back.info["generation"] == 0
    with pytest.raises(ValueError, match="already in"):
        store.add(crystal, 0, "random", candidate=3)
    assert store.labelled(before_generation=0) == []


def test_an_oracle_object_passed_in_python_labels_the_run(tmp_path):
    from nnip.active.loop import load_active_config, run_active
    from nnip.oracles.base import CalculatorOracle

    double_well_data(tmp_path)
    made = []

    def factory():  # the user's own reference method, e.g. a DFT calculator
        made.append(1)
        return DoubleWell()

    small = config(tmp_path, generations=1, seeds=4)
    small["training"]["max_epochs"] = 5
    small["ensemble"] = 2
    path = tmp_path / "active.yaml"
    path.write_text(yaml.safe_dump(small))
    run_config, settings, resolved = load_active_config(path)
    rows = run_active(run_config, settings, resolved, oracle=CalculatorOracle("my-method", factory))
    records = list(Store(tmp_path / "run" / "store.db").rows(generation=0))
    assert len(rows) == 2 and len(records) == int(rows[-1]["labels"]) >= 1
    assert made and all(r.oracle == "my-method" for r in records)
