"""Classical pair potentials with trainable per-element-pair parameters.

All follow the pair-term conventions of :mod:`nnip.potentials.classical.pair` (energy shift and/or
C2 switch at the cutoff) and combine per-element values into pair values by the rule
named in each class; any pair can be given explicitly in ``pairs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import torch

from nnip.errors import ConfigError
from nnip.potentials.classical.pair import (
    PairConfig,
    PairTable,
    PairTerm,
    PerElement,
    arithmetic_mean,
    geometric_mean,
    harmonic_mean,
    per_edge,
)
from nnip.units import COULOMB_CONSTANT
from nnip.strict import CUTOFF, NON_NEGATIVE, POSITIVE

__all__ = [
    "LennardJones", "LennardJonesConfig", "Morse", "MorseConfig", "Harmonic", "HarmonicConfig",
    "Buckingham", "BuckinghamConfig", "ZBL", "ZBLConfig",
]

PairValues = dict[str, dict[str, float]]


class TabulatedPairTerm(PairTerm):
    """Pair term whose parameters are per-element-pair tables named in ``mixing_rules``.

    Each name in ``mixing_rules()`` becomes a :class:`PairTable` attribute, initialised from
    the config field of that name (one value or one per element) combined by its rule,
    with explicit values from ``config.pairs``.
    """

    rules: ClassVar[dict] = {}

    def mixing_rules(self) -> dict:
        """Parameter name -> combination rule."""
        return self.rules

    def __init__(self, config, elements: Sequence[int]):
        super().__init__(config, elements)
        rules = self.mixing_rules()
        for key, values in config.pairs.items():
            unknown = set(values) - set(rules)
            if unknown:
                raise ConfigError(f"pairs.{key}: unknown parameter(s) {sorted(unknown)}; expected {sorted(rules)}")
        for name, rule in rules.items():
            explicit = {key: v[name] for key, v in config.pairs.items() if name in v}
            setattr(self, name, PairTable(name, self.elements, getattr(config, name), explicit, rule))


@dataclass
class LennardJonesConfig(PairConfig):
    """Lennard-Jones: V = 4 eps [(sigma/r)^12 - (sigma/r)^6].

    epsilon (eV) and sigma (Å) per element, combined by Lorentz-Berthelot (sigma arithmetic,
    eps geometric) or ``mixing="geometric"`` (both geometric). Defaults: argon.
    """

    epsilon: Annotated[PerElement, NON_NEGATIVE] = 0.0104
    sigma: Annotated[PerElement, POSITIVE] = 3.40
    pairs: PairValues = field(default_factory=dict)
    mixing: str = "lorentz-berthelot"
    cutoff: Annotated[float, CUTOFF] = 8.5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mixing not in ("lorentz-berthelot", "geometric"):
            raise ConfigError(f"mixing must be 'lorentz-berthelot' or 'geometric', got {self.mixing!r}")


class LennardJones(TabulatedPairTerm):
    """Lennard-Jones pair potential (Lennard-Jones, Proc. R. Soc. A 106, 463 (1924))."""

    name = "lj"
    Config = LennardJonesConfig

    def mixing_rules(self) -> dict:
        sigma_rule = arithmetic_mean if self.config.mixing == "lorentz-berthelot" else geometric_mean
        return {"epsilon": geometric_mean, "sigma": sigma_rule}

    def pair_energy(self, r, pair_id):
        c2 = (self.sigma(pair_id) / r).square()
        c6 = c2 * c2 * c2  # products: a float power is ~20x slower on the CPU
        return 4.0 * self.epsilon(pair_id) * (c6 * c6 - c6)


@dataclass
class MorseConfig(PairConfig):
    """Morse: V = D [(1 - exp(-a (r - r0)))^2 - 1], zero at infinity, minimum -D at r0.

    The lecture's A [1 - exp(-a (r - r_eq))]^2 differs by the constant D per pair. ASE's
    MorsePotential(epsilon, rho0, r0) is D = epsilon, a = rho0 / r0. D (eV) geometric,
    a (1/Å) and r0 (Å) arithmetic. Defaults: a Cu-like well, switched smoothly to zero.
    """

    D: Annotated[PerElement, NON_NEGATIVE] = 0.3429
    a: Annotated[PerElement, POSITIVE] = 1.3588
    r0: Annotated[PerElement, POSITIVE] = 2.866
    pairs: PairValues = field(default_factory=dict)
    cutoff: Annotated[float, CUTOFF] = 6.0
    shift: bool = False
    switch_on: float | None = 5.0


class Morse(TabulatedPairTerm):
    """Morse pair potential (Morse, Phys. Rev. 34, 57 (1929))."""

    name = "morse"
    Config = MorseConfig
    rules = {"D": geometric_mean, "a": arithmetic_mean, "r0": arithmetic_mean}

    def pair_energy(self, r, pair_id):
        x = torch.exp(-self.a(pair_id) * (r - self.r0(pair_id)))
        return self.D(pair_id) * x * (x - 2.0)


@dataclass
class HarmonicConfig(PairConfig):
    """Harmonic pair: V = k (r - r0)^2 for r < cutoff (shifted to zero there by default).

    k (eV/Å^2) geometric, r0 (Å) arithmetic. A bond-like spring between every pair within
    the cutoff: meant for diatomics, toy models and restraints, with a cutoff below the
    second-neighbour distance.
    """

    k: Annotated[PerElement, NON_NEGATIVE] = 1.0
    r0: Annotated[PerElement, NON_NEGATIVE] = 1.0
    pairs: PairValues = field(default_factory=dict)
    cutoff: Annotated[float, CUTOFF] = 2.0


class Harmonic(TabulatedPairTerm):
    """Harmonic pair potential."""

    name = "harmonic"
    Config = HarmonicConfig
    rules = {"k": geometric_mean, "r0": arithmetic_mean}

    def pair_energy(self, r, pair_id):
        return self.k(pair_id) * (r - self.r0(pair_id)) ** 2


@dataclass
class BuckinghamConfig(PairConfig):
    """Buckingham: V = A exp(-B r) - C / r^6.

    A (eV) and C (eV Å^6) geometric, B (1/Å) harmonic mean (arithmetic mean of rho = 1/B).
    Add a Coulomb term for Buckingham-Coulomb. Beware the unphysical collapse at short r
    when C > 0 (the 'Buckingham catastrophe'); pair with ZBL for high-energy sampling.
    """

    A: Annotated[PerElement, NON_NEGATIVE] = 1000.0
    B: Annotated[PerElement, POSITIVE] = 3.0
    C: Annotated[PerElement, NON_NEGATIVE] = 10.0
    pairs: PairValues = field(default_factory=dict)
    cutoff: Annotated[float, CUTOFF] = 8.0


class Buckingham(TabulatedPairTerm):
    """Buckingham exp-6 pair potential (Buckingham, Proc. R. Soc. A 168, 264 (1938))."""

    name = "buckingham"
    Config = BuckinghamConfig
    rules = {"A": geometric_mean, "B": harmonic_mean, "C": geometric_mean}

    def pair_energy(self, r, pair_id):
        repulsion = self.A(pair_id) * torch.exp(-self.B(pair_id) * r)
        r2 = r.square()
        return repulsion - self.C(pair_id) / (r2 * r2 * r2)


#: Universal ZBL screening function: coefficients and exponents (Ziegler, Biersack, Littmark 1985).
ZBL_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)
#: Screening length prefactor 0.8854 a0 in Å.
ZBL_LENGTH = 0.46850


@dataclass
class ZBLConfig(PairConfig):
    """ZBL universal screened nuclear repulsion; no trainable parameters.

    V = k Z_i Z_j / r * phi(r / a), a = 0.46850 / (Z_i^0.23 + Z_j^0.23) Å, switched to zero
    between ``switch_on`` and ``cutoff`` (as LAMMPS' pair zbl does between its inner and
    outer cutoffs). A core-repulsion prior for learned potentials.
    """

    cutoff: Annotated[float, CUTOFF] = 2.0
    shift: bool = False
    switch_on: float | None = 1.0


class ZBL(PairTerm):
    """Ziegler-Biersack-Littmark repulsion (The Stopping and Range of Ions in Solids, 1985)."""

    name = "zbl"
    Config = ZBLConfig

    def __init__(self, config: ZBLConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        z = torch.tensor(self.elements, dtype=torch.float64)
        zi, zj = z[self.pair_first], z[self.pair_second]
        self.register_buffer("charge_product", zi * zj, persistent=False)
        self.register_buffer("inverse_screening_length", (zi**0.23 + zj**0.23) / ZBL_LENGTH, persistent=False)

    def pair_energy(self, r, pair_id):
        x = r * per_edge(self.inverse_screening_length, pair_id)
        phi = sum(c * torch.exp(-e * x) for c, e in zip(ZBL_COEFFICIENTS, ZBL_EXPONENTS))
        return COULOMB_CONSTANT * per_edge(self.charge_product, pair_id) / r * phi
