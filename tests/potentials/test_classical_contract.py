"""Every classical term, and a sum of terms, passes the full potential contract."""

from nnip.potentials import (
    ZBL, Buckingham, BuckinghamConfig, Coulomb, CoulombConfig, CoulombDSF, CoulombDSFConfig,
    Harmonic, HarmonicConfig, LennardJones, LennardJonesConfig, Morse, MorseConfig, Potential, ZBLConfig,
)
from nnip.testing import PotentialContract


class TestLennardJones(PotentialContract):
    distance = 3.8
    nve_timestep = 5.0

    def make_potential(self):
        config = LennardJonesConfig(epsilon={"Ar": 0.0104, "Kr": 0.0140}, sigma={"Ar": 3.40, "Kr": 3.65},
                                    pairs={"Ar-Kr": {"epsilon": 0.012}}, cutoff=7.0)
        return Potential([LennardJones(config, ["Ar", "Kr"])], ["Ar", "Kr"])


class TestLennardJonesSwitched(PotentialContract):
    distance = 3.8
    nve_timestep = 5.0

    def make_potential(self):
        config = LennardJonesConfig(cutoff=7.0, shift=False, switch_on=5.5)
        return Potential([LennardJones(config, ["Ar"])], ["Ar"])


class TestMorse(PotentialContract):
    distance = 2.6
    nve_timestep = 2.0

    def make_potential(self):
        config = MorseConfig(D={"Cu": 0.34, "Ni": 0.42}, a={"Cu": 1.36, "Ni": 1.40}, r0={"Cu": 2.87, "Ni": 2.78},
                             cutoff=5.0, switch_on=4.0)
        return Potential([Morse(config, ["Cu", "Ni"])], ["Cu", "Ni"])


class TestHarmonic(PotentialContract):
    distance = 1.5
    nve_timestep = 0.2

    def make_potential(self):
        config = HarmonicConfig(k={"C": 5.0, "O": 6.0}, r0={"C": 1.4, "O": 1.3}, cutoff=1.9,
                                shift=False, switch_on=1.6)
        return Potential([Harmonic(config, ["C", "O"])], ["C", "O"])


class TestBuckingham(PotentialContract):
    distance = 2.8
    nve_timestep = 1.0

    def make_potential(self):
        config = BuckinghamConfig(A={"Mg": 1284.0, "O": 9547.0}, B={"Mg": 3.34, "O": 6.67},
                                  C={"Mg": 0.5, "O": 3.0}, cutoff=6.0)
        return Potential([Buckingham(config, ["Mg", "O"])], ["Mg", "O"])


class TestZBL(PotentialContract):
    distance = 1.3
    trainable = False
    nve_timestep = 0.05

    def make_potential(self):
        return Potential([ZBL(ZBLConfig(cutoff=2.0, switch_on=1.0), ["H", "Si"])], ["H", "Si"])


class TestCoulomb(PotentialContract):
    """Like charges (bare opposite charges collapse in MD), switched off smoothly for NVE."""

    distance = 2.8
    nve_timestep = 0.25

    def make_potential(self):
        config = CoulombConfig(charges={"Na": 0.6, "Cl": 0.3}, cutoff=6.0, shift=False, switch_on=5.0)
        return Potential([Coulomb(config, ["Na", "Cl"])], ["Na", "Cl"])


class TestBuckinghamCoulombDSFWithZBL(PotentialContract):
    """A sum of terms with different cutoffs, in eV, on top of E0."""

    distance = 2.8
    nve_timestep = 1.0

    def make_potential(self):
        elements = ["Na", "Cl"]
        terms = [
            Buckingham(BuckinghamConfig(A={"Na": 1000.0, "Cl": 3000.0}, B={"Na": 3.0, "Cl": 3.2},
                                        C={"Na": 5.0, "Cl": 60.0}, cutoff=6.0), elements),
            CoulombDSF(CoulombDSFConfig(charges={"Na": 1.0, "Cl": -1.0}, alpha=0.25, cutoff=7.0), elements),
            ZBL(ZBLConfig(cutoff=1.8, switch_on=1.0), elements),
        ]
        return Potential(terms, elements, e0={"Na": -1.3, "Cl": -2.7})
