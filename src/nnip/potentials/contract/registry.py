"""Registry of term names: one literal dict, no decorators, no hidden imports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential, Term
from nnip.potentials.classical.terms import (
    ZBL, Buckingham, BuckinghamConfig, Harmonic, HarmonicConfig, LennardJones,
    LennardJonesConfig, Morse, MorseConfig, ZBLConfig,
)
from nnip.potentials.classical.coulomb import Coulomb, CoulombConfig, CoulombDSF, CoulombDSFConfig
from nnip.potentials.learned.behler_parrinello import BehlerParrinello, BehlerParrinelloConfig
from nnip.potentials.learned.coordinate_mlp import CoordinateMLP, CoordinateMLPConfig
from nnip.potentials.learned.electrostatics import Electrostatics, ElectrostaticsConfig
from nnip.potentials.learned.equivariant import Equivariant, EquivariantConfig
from nnip.potentials.learned.linear_ace import LinearACE, LinearACEConfig
from nnip.potentials.learned.painn import PaiNN, PaiNNConfig
from nnip.potentials.learned.schnet import SchNet, SchNetConfig
from nnip.potentials.learned.sparse_gp import SparseGP, SparseGPConfig
from nnip.strict import closest, from_dict

__all__ = ["REGISTRY", "build_term", "build_potential"]

REGISTRY: dict[str, tuple[type, type[Term]]] = {
    "lj": (LennardJonesConfig, LennardJones),
    "morse": (MorseConfig, Morse),
    "harmonic": (HarmonicConfig, Harmonic),
    "buckingham": (BuckinghamConfig, Buckingham),
    "zbl": (ZBLConfig, ZBL),
    "coulomb": (CoulombConfig, Coulomb),
    "coulomb_dsf": (CoulombDSFConfig, CoulombDSF),
    "schnet": (SchNetConfig, SchNet),
    "painn": (PaiNNConfig, PaiNN),
    "equivariant": (EquivariantConfig, Equivariant),
    "behler_parrinello": (BehlerParrinelloConfig, BehlerParrinello),
    "electrostatics": (ElectrostaticsConfig, Electrostatics),
    "coordinate_mlp": (CoordinateMLPConfig, CoordinateMLP),
    "linear_ace": (LinearACEConfig, LinearACE),
    "sparse_gp": (SparseGPConfig, SparseGP),
}


def build_term(name: str, config: Mapping[str, Any] | None, elements: Sequence[int], where: str = "term") -> Term:
    """Term ``name`` from plain-data ``config`` for the given sorted atomic numbers."""
    if name not in REGISTRY:
        raise ConfigError(f"{where}: unknown potential {name!r}{closest(name, REGISTRY)}; known: {', '.join(REGISTRY)}")
    config_class, term_class = REGISTRY[name]
    return term_class(from_dict(config_class, config, where), elements)


def build_potential(spec: Mapping[str, Any]) -> Potential:
    """Potential from ``Potential.spec()`` data: {'elements': [Z...], 'terms': [{'name', 'config'}...]}."""
    elements = list(spec["elements"])
    terms = [build_term(t["name"], t.get("config"), elements, where=f"terms[{k}]") for k, t in enumerate(spec["terms"])]
    return Potential(terms, elements)
