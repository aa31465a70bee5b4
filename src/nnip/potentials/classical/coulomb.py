"""Coulomb interaction of fixed (trainable) per-element charges, truncated at a cutoff.

Two truncations, two classes: plain cutoff (optionally shifted) and the damped shifted
force of Fennell & Gezelter, J. Chem. Phys. 124, 234104 (2006), which approximates the
Ewald energy of neutral systems with a short cutoff. Ewald summation comes with the
long-range electrostatics of predicted charges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import torch
from ase.data import chemical_symbols
from torch import nn

from nnip.errors import ConfigError
from nnip.potentials.classical.pair import PairConfig, PairTerm, per_edge
from nnip.units import COULOMB_CONSTANT
from nnip.strict import CUTOFF

__all__ = ["Coulomb", "CoulombConfig", "CoulombDSF", "CoulombDSFConfig"]


@dataclass
class CoulombConfig(PairConfig):
    """Fixed-charge Coulomb, V = k q_i q_j / r (k = 14.3996 eV Å / e^2), shifted to zero at the cutoff.

    charges: e per element symbol; elements not listed carry no charge.
    """

    charges: dict[str, float] = field(default_factory=dict)
    cutoff: Annotated[float, CUTOFF] = 10.0


@dataclass
class CoulombDSFConfig(CoulombConfig):
    """Damped shifted force Coulomb; ``alpha`` is the damping parameter, 1/Å.

    The energy and force vanish at the cutoff by construction (``shift`` has no effect).
    The self-energy -(erfc(alpha rc)/(2 rc) + alpha/sqrt(pi)) k q_i^2 is a constant per
    element for fixed charges, so it is left to the reference energies E0.
    """

    alpha: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be > 0 1/Å, got {self.alpha}")


class _FixedCharges(PairTerm):
    """Pair term whose pair parameter is the product of per-element charges."""

    def __init__(self, config: CoulombConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        symbols = [chemical_symbols[z] for z in self.elements]
        for symbol in config.charges:
            if symbol not in chemical_symbols:
                raise ConfigError(f"charges: unknown element {symbol!r}")
        values = [float(config.charges.get(s, 0.0)) for s in symbols]
        self.charges = nn.Parameter(torch.tensor(values, dtype=torch.float64))

    def charge_product(self, pair_id: torch.Tensor) -> torch.Tensor:
        """q_a q_b of each edge's species pair. Shapes: (E,) -> (E,)."""
        return per_edge(self.charges[self.pair_first] * self.charges[self.pair_second], pair_id)


class Coulomb(_FixedCharges):
    """Plain-cutoff Coulomb between fixed per-element charges."""

    name = "coulomb"
    Config = CoulombConfig

    def pair_energy(self, r, pair_id):
        return COULOMB_CONSTANT * self.charge_product(pair_id) / r


class CoulombDSF(_FixedCharges):
    """Damped shifted force Coulomb (Fennell & Gezelter 2006) between fixed per-element charges."""

    name = "coulomb_dsf"
    Config = CoulombDSFConfig

    def pair_energy(self, r, pair_id):
        alpha, rc = self.config.alpha, self.cutoff
        erfc_rc = math.erfc(alpha * rc) / rc
        slope = math.erfc(alpha * rc) / rc**2 + 2.0 * alpha / math.sqrt(math.pi) * math.exp(-(alpha * rc) ** 2) / rc
        shape = torch.erfc(alpha * r) / r - erfc_rc + slope * (r - rc)
        return COULOMB_CONSTANT * self.charge_product(pair_id) * shape
