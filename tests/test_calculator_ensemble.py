"""The ASE calculator on an ensemble: member means and the uncertainty results."""

import numpy as np
import pytest
from ase.build import molecule

from nnip import Calculator
from nnip.potentials import Ensemble, build_potential
from nnip.testing.structures import evaluate


def lj(sigma: float):
    return build_potential({"elements": [1, 6, 8], "terms": [
        {"name": "lj", "config": {"sigma": sigma, "epsilon": 0.01, "cutoff": 6.0}}]}).double()


def test_ensemble_calculator_gives_means_and_spreads():
    members = [lj(2.0), lj(2.1), lj(2.25)]
    atoms = molecule("CH3CH2OH")
    atoms.calc = Calculator(Ensemble(members))
    singles = [evaluate(m, atoms) for m in members]
    energies = np.array([s["energy"] for s in singles])
    forces = np.stack([s["forces"] for s in singles])
    assert atoms.get_potential_energy() == pytest.approx(energies.mean(), rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), forces.mean(axis=0), atol=1e-12)
    calc = atoms.calc
    assert calc.get_property("energy_std") == pytest.approx(energies.std(ddof=1), rel=1e-10)
    expected = np.sqrt(forces.var(axis=0, ddof=1).sum(axis=1))
    np.testing.assert_allclose(calc.get_property("forces_std"), expected, rtol=1e-10)
    assert calc.get_property("max_force_std") == pytest.approx(expected.max(), rel=1e-10)
