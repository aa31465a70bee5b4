"""Normal-mode sampling holds k_B T / 2 per vibration (GFN2 ethanol); rattling has the asked amplitude."""

import numpy as np
import pytest
from ase import units
from ase.optimize import BFGS

import nnip
from nnip.active import hessian, normal_mode_samples, rattled
from nnip.oracles import get_oracle


def test_rattled_copies_have_the_asked_spread():
    atoms = nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=0)[0]
    samples = rattled(atoms, 400, 0.05, seed=1)
    displacements = np.array([s.positions - atoms.positions for s in samples])
    assert displacements.std() == pytest.approx(0.05, rel=0.03)
    assert samples[0].calc is None


def test_normal_mode_samples_follow_equipartition_with_gfn2():
    calculator = get_oracle("gfn2").factory()
    atoms = nnip.read(nnip.data.bundled("ethanol_gfn2_300K.extxyz"), index=0)[0]
    atoms.calc = calculator
    BFGS(atoms, logfile=None).run(fmax=1e-3, steps=300)
    minimum = atoms.get_potential_energy()
    matrix = hessian(atoms, calculator)
    temperature = 30.0  # low, so the harmonic picture holds
    samples = normal_mode_samples(atoms, matrix, temperature, 300, seed=2)
    energies = []
    for sample in samples:
        sample.calc = calculator
        energies.append(sample.get_potential_energy() - minimum)
    expected = (3 * len(atoms) - 6) / 2 * units.kB * temperature
    assert np.mean(energies) == pytest.approx(expected, rel=0.15)


def test_autograd_hessian_of_a_potential_matches_finite_differences_and_leaves_the_model_alone():
    from nnip import Calculator
    from nnip.active import potential_hessian
    from nnip.potentials import build_potential

    model = build_potential({"elements": ["C", "H", "O"], "terms": [
        {"name": "morse", "config": {"D": 0.2, "a": 1.4, "r0": 1.3, "cutoff": 5.0, "switch_on": 4.0}}]}).float()
    atoms = nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=0)[0]
    exact = potential_hessian(atoms, model)
    numeric = hessian(atoms, Calculator(model, dtype="float64"), delta=1e-4)
    assert exact.shape == (27, 27) and np.abs(exact).max() > 1.0
    np.testing.assert_allclose(exact, numeric, atol=1e-5 * np.abs(exact).max())
    np.testing.assert_allclose(exact.reshape(9, 3, 9, 3).sum(axis=2), 0.0, atol=1e-10)  # translation: zero rows
    assert str(model.dtype) == "torch.float32"  # the Hessian used a float64 copy


def test_sample_command_relaxes_then_samples_normal_modes_with_a_model_file(tmp_path, capsys):
    from nnip import Calculator
    from nnip.cli import main
    from nnip.potentials import build_potential

    model = build_potential({"elements": ["C", "H", "O"], "terms": [
        {"name": "morse", "config": {"D": 0.2, "a": 1.4, "r0": 1.3, "cutoff": 5.0, "switch_on": 4.0}}]})
    nnip.save(model, tmp_path / "morse.pt")
    start = tmp_path / "start.extxyz"
    nnip.write(start, nnip.read(nnip.data.bundled("ethanol_test.extxyz"), index=0))
    common = ["sample", str(start), "--calculator", str(tmp_path / "morse.pt"), "--count", "50"]
    assert main([*common, "--output", str(tmp_path / "unrelaxed.extxyz")]) == 2  # not a minimum: one clear line
    assert "relax the structure first (--relax FMAX does that)" in capsys.readouterr().err
    assert main([*common, "--relax", "1e-4", "--temperature", "50", "--output", str(tmp_path / "modes.extxyz")]) == 0
    samples = nnip.read(tmp_path / "modes.extxyz")
    assert len(samples) == 50 and samples[0].info["sampling"] == "normal-modes"
    minimum = nnip.read(start)[0]
    minimum.calc = Calculator(model, dtype="float64")
    BFGS(minimum, logfile=None).run(fmax=1e-4, steps=1000)
    excess = []
    for sample in samples:
        sample.calc = Calculator(model, dtype="float64")
        excess.append(sample.get_potential_energy() - minimum.get_potential_energy())
    assert np.mean(excess) == pytest.approx(21 / 2 * units.kB * 50, rel=0.2)  # k_B T / 2 per vibration
    assert main(["sample", str(start), "--method", "rattle", "--amplitude", "0.1", "--count", "20",
                 "--output", str(tmp_path / "rattled.extxyz")]) == 0
    assert len(nnip.read(tmp_path / "rattled.extxyz")) == 20
