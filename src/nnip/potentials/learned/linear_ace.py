"""Linear ACE: atomic energies linear in the atomic cluster expansion basis, one coefficient vector per element.

    e_i = sum_b c_{Z_i, b} B_b(i) / s_b

B: the ACE invariants of atom i's neighbourhood up to body order 4 (nnip.nn.ace); s_b: the root
mean square of feature b over the training atoms (set by :meth:`LinearACE.fit_to_data`), so the
coefficients of all features are on one scale and a ridge penalty treats them alike. e_i is in eV,
added to E0 and the shift by the Potential; a lone atom has B = 0 and so the energy E0.

The coefficients are fitted in closed form by regularised least squares on energies, forces and
stress (``training.optimizer: least_squares``, nnip.training.least_squares), or by the usual trainer
like any other parameters.

References: R. Drautz, Phys. Rev. B 99, 014104 (2019); D. P. Kovacs et al., J. Chem. Theory
Comput. 17, 7696 (2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import torch
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.ace import ACEBasis
from nnip.potentials.contract.base import Edges
from nnip.potentials.contract.linear import DensityTerm
from nnip.strict import AT_LEAST_ONE, CUTOFF, NON_NEGATIVE, Bounds, check

__all__ = ["LinearACE", "LinearACEConfig"]


@dataclass
class LinearACEConfig:
    """Linear ACE hyperparameters.

    Args:
        cutoff: Å. radial: radial functions per neighbour element. l_max: largest degree of the
            spherical harmonics. degrees: largest total degree sum (n + l) of a basis function, per
            correlation order 1, 2, 3 (body order 2, 3, 4); fewer entries stop at a lower body order.
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    radial: Annotated[int, AT_LEAST_ONE] = 8
    l_max: Annotated[int, Bounds(0, 6)] = 4
    degrees: list[int] = field(default_factory=lambda: [7, 8, 6])

    def __post_init__(self) -> None:
        check("cutoff", self.cutoff, CUTOFF)
        check("l_max", self.l_max, Bounds(0, 6))
        if not 1 <= len(self.degrees) <= 3:
            raise ConfigError(f"degrees: one to three correlation orders (body order 2 to 4), got {self.degrees}")
        for degree in self.degrees:
            check("degrees", degree, NON_NEGATIVE)


class LinearACE(DensityTerm):
    """Per-atom energies linear in the ACE basis (module docstring). Shapes: species (N,), edges -> (N,) eV."""

    name = "linear_ace"

    def __init__(self, config: LinearACEConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.basis = ACEBasis(len(self.elements), config.cutoff, config.radial, config.l_max, config.degrees)
        n_features = self.basis.n_features
        self.coefficients = nn.Parameter(torch.zeros(len(self.elements), n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))

    @property
    def n_features(self) -> int:
        """Basis functions per element."""
        return self.basis.n_features

    def from_invariants(self, species: torch.Tensor, invariants: torch.Tensor) -> torch.Tensor:
        """B_b(i) / s_b, (N, n_features)."""
        return invariants / self.feature_scale

    def fit_to_data(self, batches: Sequence[tuple[torch.Tensor, Edges]]) -> None:
        """s_b = root mean square of feature b over the training atoms (1 where it is zero)."""
        squares = torch.zeros(self.n_features, dtype=torch.float64)
        atoms = 0
        for species, edges in batches:
            raw = self.basis(species, edges.center, edges.neighbor, edges.vectors, edges.lengths)
            squares += (raw.to(torch.float64) ** 2).sum(dim=0)
            atoms += raw.shape[0]
        rms = (squares / max(atoms, 1)).sqrt()
        self.feature_scale.copy_(torch.where(rms > 0, rms, torch.ones_like(rms)).to(self.feature_scale.dtype))
