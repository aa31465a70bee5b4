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


def test_separately_saved_models_form_an_ensemble_in_python_and_on_the_command_line(tmp_path, capsys):
    import json

    import nnip
    from nnip.cli import main
    from nnip.errors import CheckpointError

    paths = [tmp_path / f"lj{k}.pt" for k in range(3)]
    for path, sigma in zip(paths, (2.0, 2.1, 2.25)):
        nnip.save(lj(sigma), path)
    nnip.save(Ensemble([lj(2.0), lj(2.1)]), tmp_path / "pair.pt")
    ensemble = nnip.load([paths[2], tmp_path / "pair.pt"])  # ensemble files contribute their members
    assert isinstance(ensemble, Ensemble) and len(ensemble) == 3
    atoms = molecule("CH3CH2OH")
    atoms.calc = Calculator(ensemble)
    reference = atoms.copy()
    reference.calc = Calculator(Ensemble([lj(2.0), lj(2.1), lj(2.25)]))
    expected = reference.calc.get_property("energy_std", reference)
    assert atoms.calc.get_property("energy_std", atoms) == pytest.approx(expected, rel=1e-10)
    atoms.calc = None
    atoms.info["energy"] = 0.0
    data = tmp_path / "ethanol.extxyz"
    atoms.arrays["forces"] = np.zeros((len(atoms), 3))
    nnip.write(data, atoms)
    capsys.readouterr()
    assert main(["evaluate", ",".join(map(str, paths)), str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["forces_std_mean"] > 0  # only an ensemble reports a spread
    nnip.save(build_potential({"elements": [1, 6], "terms": [
        {"name": "lj", "config": {"sigma": 2.0, "epsilon": 0.01, "cutoff": 6.0}}]}), tmp_path / "ch.pt")
    with pytest.raises(CheckpointError, match="cannot form an ensemble .*different elements"):
        nnip.load([paths[0], tmp_path / "ch.pt"])
