"""Classical terms against independent references: ASE's calculators, closed forms, literature."""

import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.calculators.morse import MorsePotential as AseMorse

from nnip import Calculator
from nnip.potentials import (
    ZBL, Buckingham, BuckinghamConfig, CoulombDSF, CoulombDSFConfig, Harmonic, HarmonicConfig,
    LennardJones, LennardJonesConfig, Morse, MorseConfig, Potential, ZBLConfig,
)
from nnip.testing import cluster
from nnip.testing.structures import evaluate


def _structures(symbol: str, a: float, spacing: float):
    rattled = bulk(symbol, "fcc", a=a, cubic=True).repeat(2)
    rattled.rattle(0.05, seed=1)
    rattled.set_cell(rattled.cell.array @ (np.eye(3) + [[0.0, 0.03, 0.0], [0.0, 0.0, -0.02], [0.01, 0.0, 0.0]]),
                     scale_atoms=True)
    return {"cluster": cluster([Atoms(symbol).numbers[0]], 13, spacing, seed=3), "fcc": rattled}


def _compare(ours_calc, ase_calc, atoms):
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = ours_calc, ase_calc
    assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-8)
    if atoms.pbc.all():
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), atol=1e-8)


@pytest.mark.parametrize("name", ["cluster", "fcc"])
def test_lennard_jones_matches_ase(name):
    atoms = _structures("Ar", 5.26, 3.7)[name]
    term = LennardJones(LennardJonesConfig(epsilon=0.0104, sigma=3.40, cutoff=8.0), ["Ar"])
    ours = Calculator(Potential([term], ["Ar"]), dtype="float64")
    _compare(ours, AseLennardJones(epsilon=0.0104, sigma=3.40, rc=8.0), atoms)


@pytest.mark.parametrize("name", ["cluster", "fcc"])
def test_morse_matches_ase(name):
    atoms = _structures("Cu", 3.61, 2.55)[name]
    epsilon, rho0, r0 = 0.3429, 3.90, 2.866
    config = MorseConfig(D=epsilon, a=rho0 / r0, r0=r0, cutoff=2.7 * r0, switch_on=1.9 * r0, shift=False)
    ours = Calculator(Potential([Morse(config, ["Cu"])], ["Cu"]), dtype="float64")
    _compare(ours, AseMorse(epsilon=epsilon, rho0=rho0, r0=r0, rcut1=1.9, rcut2=2.7), atoms)


def _dimer_energy(term, z1, z2, r):
    dimer = Atoms(numbers=[z1, z2], positions=[[0, 0, 0], [r, 0, 0]])
    return evaluate(Potential([term], term.elements).double(), dimer)["energy"]


def test_zbl_matches_closed_form():
    # Independent evaluation of the ZBL universal potential (Ziegler, Biersack, Littmark 1985).
    k = 14.399645  # e^2 / (4 pi eps0), eV Å
    z1, z2, r = 14, 8, 0.9
    a = 0.8854 * 0.529177 / (z1**0.23 + z2**0.23)
    x = r / a
    phi = 0.1818 * math.exp(-3.2 * x) + 0.5099 * math.exp(-0.9423 * x) + 0.2802 * math.exp(-0.4029 * x) \
        + 0.02817 * math.exp(-0.2016 * x)
    expected = k * z1 * z2 / r * phi
    term = ZBL(ZBLConfig(cutoff=3.0, switch_on=2.5), [8, 14])
    assert _dimer_energy(term, z1, z2, r) == pytest.approx(expected, rel=2e-4)


def test_buckingham_and_harmonic_match_closed_forms():
    buck = Buckingham(BuckinghamConfig(A={"O": 22764.0, "Mg": 1284.38}, B={"O": 1 / 0.149, "Mg": 1 / 0.2997},
                                       C={"O": 27.88, "Mg": 0.0}, shift=False, cutoff=10.0), [8, 12])
    r = 2.4
    assert _dimer_energy(buck, 8, 8, r) == pytest.approx(22764.0 * math.exp(-r / 0.149) - 27.88 / r**6, rel=1e-12)
    rho_mg_o = 0.5 * (0.149 + 0.2997)
    expected = math.sqrt(22764.0 * 1284.38) * math.exp(-r / rho_mg_o)
    assert _dimer_energy(buck, 8, 12, r) == pytest.approx(expected, rel=1e-12)
    harmonic = Harmonic(HarmonicConfig(k=2.0, r0=1.1, cutoff=2.0), [1])
    assert _dimer_energy(harmonic, 1, 1, 1.3) == pytest.approx(2.0 * (0.2**2 - 0.9**2), rel=1e-12)


def test_lorentz_berthelot_and_explicit_pairs():
    config = LennardJonesConfig(epsilon={"Ar": 0.0104, "Kr": 0.014, "Xe": 0.02}, sigma={"Ar": 3.4, "Kr": 3.6, "Xe": 4.0},
                                pairs={"Kr-Xe": {"sigma": 3.9}}, shift=False, cutoff=20.0)
    term = LennardJones(config, ["Ar", "Kr", "Xe"])
    r = 4.0

    def lj(eps, sig):
        return 4 * eps * ((sig / r) ** 12 - (sig / r) ** 6)

    assert _dimer_energy(term, 18, 36, r) == pytest.approx(lj(math.sqrt(0.0104 * 0.014), 3.5), rel=1e-12)
    assert _dimer_energy(term, 36, 54, r) == pytest.approx(lj(math.sqrt(0.014 * 0.02), 3.9), rel=1e-12)


def test_damped_shifted_force_gives_the_madelung_energy_of_rock_salt():
    # NaCl with unit charges: E per ion pair = -M k / r0, Madelung constant M = 1.747565.
    r0 = 2.82
    atoms = bulk("NaCl", "rocksalt", a=2 * r0, cubic=True)
    alpha, rc = 0.2, 14.0
    term = CoulombDSF(CoulombDSFConfig(charges={"Na": 1.0, "Cl": -1.0}, alpha=alpha, cutoff=rc), ["Na", "Cl"])
    energy = evaluate(Potential([term], ["Na", "Cl"]).double(), atoms)["energy"]
    k = 14.399645
    self_energy = -(math.erfc(alpha * rc) / (2 * rc) + alpha / math.sqrt(math.pi)) * k * len(atoms)
    per_pair = (energy + self_energy) / (len(atoms) / 2)
    assert per_pair == pytest.approx(-1.747565 * k / r0, rel=2e-3)
