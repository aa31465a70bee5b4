"""SchNet passes the potential contract, alone and on top of a ZBL prior."""

from nnip.potentials import ZBL, Potential, ZBLConfig
from nnip.potentials.schnet import SchNet, SchNetConfig
from nnip.testing import PotentialContract

ELEMENTS = ["H", "C", "O"]


def small_schnet(cutoff: float = 4.0) -> SchNet:
    return SchNet(SchNetConfig(cutoff=cutoff, features=16, interactions=2, basis=12), ELEMENTS)


class TestSchNet(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_schnet()], ELEMENTS, e0={"H": -0.5, "C": -1.5, "O": -2.0}, scale=0.5)


class TestZBLPlusSchNet(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        zbl = ZBL(ZBLConfig(cutoff=1.2, switch_on=0.8), ELEMENTS)
        return Potential([zbl, small_schnet()], ELEMENTS, scale=0.3)
