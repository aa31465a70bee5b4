"""The tutorials under docs/tutorials run from an empty folder and their own physics checks hold.

Each tutorial is a script ending in ``assert`` statements (errors fall below the initial
ones, forces and stress are derivatives of the energy, uncertainty tracks the error, ...);
it runs here in a subprocess, in a temporary working directory, on one thread.
"""

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = ROOT / "docs" / "tutorials"

#: tutorial -> files it must leave in its working directory
OUTPUTS = {
    "train_on_your_extxyz.py": ["my_ethanol.extxyz", "runs/ethanol/model.pt", "runs/ethanol/report.json"],
    "fit_a_classical_potential.py": ["runs/morse_si/model.pt", "runs/morse_si/metrics.csv"],
    "ensembles_and_calibration.py": ["runs/ensemble/model.pt", "runs/ensemble/members/member_2/model.pt"],
    "active_learning_with_your_oracle.py": ["active.yaml", "runs/active/store.db", "runs/active/active.csv",
                                            "runs/active/gen_01/model/model.pt"],
    "periodic_solids_with_stress.py": ["cu_train.extxyz", "runs/cu_stress1000/model.pt"],
    "linear_ace_with_uncertainty.py": ["runs/linear_ace_si/model.pt", "runs/linear_ace_si/metrics.csv"],
    "three_families.py": ["runs/three_families/linear_ACE/model.pt", "runs/three_families/sparse_GP/model.pt",
                          "runs/three_families/SchNet/model.pt"],
}


def test_every_tutorial_is_tested():
    assert sorted(p.name for p in TUTORIALS.glob("*.py")) == sorted(OUTPUTS)


@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_tutorial_is_a_documented_script_with_checks(name):
    tree = ast.parse((TUTORIALS / name).read_text())
    docstring = ast.get_docstring(tree)
    assert docstring and len(docstring.splitlines()) >= 10, "the module docstring is the tutorial's text"
    asserts = [node for node in tree.body if isinstance(node, ast.Assert)]
    assert len(asserts) >= 3, "a tutorial ends with checks on what it computed"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_tutorial_runs_and_its_checks_hold(name, tmp_path):
    before = sorted(p.relative_to(ROOT) for p in TUTORIALS.rglob("*"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    env.pop("PYTHONOPTIMIZE", None)  # the checks are assert statements
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(TUTORIALS / name)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    print(f"{name}: {seconds:.1f} s\n{result.stdout}")
    assert result.returncode == 0, f"{name} failed after {seconds:.0f} s:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    for output in OUTPUTS[name]:
        assert (tmp_path / output).is_file(), f"{name} did not write {output} into its working directory"
    assert sorted(p.relative_to(ROOT) for p in TUTORIALS.rglob("*")) == before  # nothing written next to it
