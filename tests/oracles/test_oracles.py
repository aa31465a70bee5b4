"""Oracles: analytic double well, EMT against ASE, labelling files in parallel, kill and resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

import nnip
from nnip.cli import main
from nnip.errors import OracleError
from nnip.oracles import DoubleWell, get_oracle, label_frames


def test_double_well_forces_are_minus_the_gradient():
    atoms = Atoms("H", positions=[[0.37, -0.21, 0.5]])
    atoms.calc = DoubleWell()
    x, y = 0.37, -0.21
    assert atoms.get_potential_energy() == pytest.approx(10 * x**4 - 10 * x**2 + 2 * x + 4 * y**2)
    h, numeric = 1e-6, []
    for c in range(3):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[0, c] += h
        minus.positions[0, c] -= h
        plus.calc, minus.calc = DoubleWell(), DoubleWell()
        numeric.append(-(plus.get_potential_energy() - minus.get_potential_energy()) / (2 * h))
    np.testing.assert_allclose(atoms.get_forces()[0], numeric, atol=1e-7)


def copper(n, seed=0):
    frames = []
    for k in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(0.05, seed=seed + k)
        frames.append(atoms)
    return frames


def test_emt_oracle_agrees_with_ase_and_keeps_the_order():
    frames = copper(4)
    labelled = label_frames(frames, get_oracle("emt"), progress=False)
    for atoms, result in zip(frames, labelled):
        reference = atoms.copy()
        reference.calc = EMT()
        assert result.get_potential_energy() == pytest.approx(reference.get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(result.get_forces(), reference.get_forces(), atol=1e-12)
        np.testing.assert_allclose(result.get_stress(), reference.get_stress(), atol=1e-12)
    assert [a.info["source_index"] for a in labelled] == [0, 1, 2, 3]


def test_unknown_oracle_and_failing_frames_are_clear_errors():
    with pytest.raises(OracleError, match="unknown oracle 'emtt' \\(did you mean 'emt'\\?\\)"):
        get_oracle("emtt")
    frames = [Atoms("H", positions=[[0, 0, 0]]), Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]])]
    with pytest.raises(OracleError, match="1 of 2 frames failed .* frame 1: ValueError"):
        label_frames(frames, get_oracle("double_well"), progress=False)


#: EMT that, in its 51st calculation, says so in a file and then waits for good: a labelling run to kill at a
#: known point, whatever the machine's speed
GATE = """
import time
from pathlib import Path
from ase.calculators.emt import EMT


class GatedEMT(EMT):
    calls = 0

    def calculate(self, *args, **kwargs):
        GatedEMT.calls += 1
        if GatedEMT.calls == 51:
            Path(__file__).with_name("blocked").touch()
            while True:
                time.sleep(1)
        super().calculate(*args, **kwargs)
"""


def test_label_command_killed_then_resumed_in_parallel(tmp_path):
    data = tmp_path / "copper.extxyz"
    nnip.write(data, copper(400))
    output = tmp_path / "labelled.extxyz"
    (tmp_path / "gate.py").write_text(GATE)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "nnip", "label", str(data), "--oracle", "gate:GatedEMT", "--output", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment)
    while not (tmp_path / "blocked").exists():  # synchronised on the event, not on a deadline
        assert process.poll() is None, "the labelling run ended before its 51st structure"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert main(["label", str(data), "--oracle", "emt", "--output", str(output)]) == 2  # no silent overwrite
    assert len(nnip.inspect(output).frames) == 50
    assert main(["label", str(data), "--oracle", "emt", "--output", str(output), "--resume", "--workers", "2"]) == 0
    labelled = nnip.read(output)
    assert sorted(a.info["source_index"] for a in labelled) == list(range(400))  # each exactly once
    first = next(a for a in labelled if a.info["source_index"] == 0)
    reference = nnip.read(data, index=0)[0]
    reference.calc = EMT()
    assert first.get_potential_energy() == pytest.approx(reference.get_potential_energy(), rel=1e-12)


def test_gfn2_forces_agree_with_finite_differences_of_its_energies():
    from ase.build import molecule

    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=2)
    oracle = get_oracle("gfn2")
    forces = label_frames([atoms], oracle, progress=False)[0].get_forces()
    h = 1e-4
    for a, c in [(0, 0), (2, 1), (8, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[a, c] += h
        minus.positions[a, c] -= h
        e_plus, e_minus = (x.get_potential_energy() for x in label_frames([plus, minus], oracle, progress=False))
        assert forces[a, c] == pytest.approx(-(e_plus - e_minus) / (2 * h), abs=1e-4)  # SCF tolerance


def test_label_records_failures_with_their_reason_and_labels_the_rest(tmp_path):
    frames = [Atoms("H", positions=[[0.1, 0, 0]]), Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]]),
              Atoms("H", positions=[[0.3, 0, 0]])]
    data = tmp_path / "points.extxyz"
    nnip.write(data, frames)
    output = tmp_path / "labelled.extxyz"
    assert main(["label", str(data), "--oracle", "double_well", "--output", str(output)]) == 0
    assert [a.info["source_index"] for a in nnip.read(output)] == [0, 2]
    reasons = (tmp_path / "labelled.extxyz.failures.txt").read_text().splitlines()
    assert len(reasons) == 1 and "frame 1" in reasons[0] and "one particle" in reasons[0]


def test_a_classical_potential_spelled_out_in_yaml_is_an_oracle(tmp_path):
    from ase.calculators.lj import LennardJones

    spec = tmp_path / "argon.yaml"
    spec.write_text("elements: [Ar]\nterms:\n  - name: lj\n    config: {sigma: 3.4, epsilon: 0.0104, cutoff: 8.0,"
                    " switch_on: null, shift: true}\n")
    frames = []
    for k in range(2):
        atoms = bulk("Ar", "fcc", a=5.3, cubic=True)
        atoms.rattle(0.1, seed=k)
        frames.append(atoms)
    labelled = label_frames(frames, get_oracle(f"model:{spec}"), progress=False)
    for atoms, result in zip(frames, labelled):
        reference = atoms.copy()
        reference.calc = LennardJones(sigma=3.4, epsilon=0.0104, rc=8.0)
        assert result.get_potential_energy() == pytest.approx(reference.get_potential_energy(), rel=1e-10)
        np.testing.assert_allclose(result.get_forces(), reference.get_forces(), atol=1e-10)
    learned = tmp_path / "net.yaml"
    learned.write_text("elements: [Ar]\nterms:\n  - {name: schnet, config: {cutoff: 5.0}}\n")
    with pytest.raises(OracleError, match="schnet must be trained first"):
        get_oracle(f"model:{learned}").factory()


def test_a_gfn2_label_does_not_depend_on_what_was_labelled_before():
    """tblite starts each SCF from the previous structure's wavefunction unless reset: the same structure
    labelled after different predecessors differed by up to 2e-4 eV/Å in forces."""
    from ase.build import molecule

    target = molecule("CH3CH2OH")
    target.rattle(0.05, seed=1)
    before = [molecule("H2O"), molecule("CH3CH2OH")]
    before[1].rattle(0.3, seed=2)
    results = []
    for predecessor in before:
        oracle = get_oracle("gfn2")
        first, second = oracle.label([predecessor, target])
        results.append(second)
    alone = get_oracle("gfn2").label([target])[0]
    for labelled in results:
        assert labelled.get_potential_energy() == pytest.approx(alone.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(labelled.get_forces(), alone.get_forces(), rtol=0, atol=1e-10)
