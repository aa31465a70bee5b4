"""Potentials: the term contract, Potential, classical terms, the registry and model files."""

from nnip.potentials.base import Potential, Term
from nnip.potentials.edges import Edges
from nnip.potentials.ensemble import Ensemble
from nnip.potentials.classical import (
    ZBL, Buckingham, BuckinghamConfig, Harmonic, HarmonicConfig, LennardJones,
    LennardJonesConfig, Morse, MorseConfig, ZBLConfig,
)
from nnip.potentials.coulomb import Coulomb, CoulombConfig, CoulombDSF, CoulombDSFConfig
from nnip.potentials.pair import PairConfig, PairTable, PairTerm
from nnip.potentials.registry import REGISTRY, build_potential, build_term
from nnip.potentials.serialization import load, read_metadata, save

__all__ = [
    "Edges", "Potential", "Term", "PairConfig", "PairTable", "PairTerm", "REGISTRY", "build_term",
    "build_potential", "load", "save", "read_metadata", "Ensemble",
    "LennardJones", "LennardJonesConfig", "Morse", "MorseConfig", "Harmonic", "HarmonicConfig",
    "Buckingham", "BuckinghamConfig", "ZBL", "ZBLConfig", "Coulomb", "CoulombConfig",
    "CoulombDSF", "CoulombDSFConfig",
]
