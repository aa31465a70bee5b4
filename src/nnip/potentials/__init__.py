"""Potentials: the term contract, Potential, classical terms, the registry and model files."""

from nnip.potentials.contract.base import Potential, Term
from nnip.potentials.contract.edges import Edges
from nnip.potentials.contract.ensemble import Ensemble
from nnip.potentials.classical.terms import (
    ZBL, Buckingham, BuckinghamConfig, Harmonic, HarmonicConfig, LennardJones,
    LennardJonesConfig, Morse, MorseConfig, ZBLConfig,
)
from nnip.potentials.classical.coulomb import Coulomb, CoulombConfig, CoulombDSF, CoulombDSFConfig
from nnip.potentials.classical.pair import PairConfig, PairTable, PairTerm
from nnip.potentials.contract.registry import REGISTRY, build_potential, build_term
from nnip.potentials.files.serialization import load, read_metadata, save

__all__ = [
    "Edges", "Potential", "Term", "PairConfig", "PairTable", "PairTerm", "REGISTRY", "build_term",
    "build_potential", "load", "save", "read_metadata", "Ensemble",
    "LennardJones", "LennardJonesConfig", "Morse", "MorseConfig", "Harmonic", "HarmonicConfig",
    "Buckingham", "BuckinghamConfig", "ZBL", "ZBLConfig", "Coulomb", "CoulombConfig",
    "CoulombDSF", "CoulombDSFConfig",
]
