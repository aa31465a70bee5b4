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
