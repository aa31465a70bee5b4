"""The naive model: an MLP on the flattened Cartesian coordinates of a fixed-size system.

    E = MLP(x_1, y_1, z_1, ..., x_n, y_n, z_n),  shared out as E / n per atom

It is what the lecture starts from (Blank et al., J. Chem. Phys. 103, 4129 (1995)) and is
kept to show what invariance buys, and to model toy surfaces such as the 2-D double well
of one particle. It is NOT invariant under rotation, translation or permutation of the
atoms, has no locality, and works only for structures of exactly ``n_atoms`` atoms; the
contract suite runs on it and records those failures as expected. The output is
dimensionless (times the potential's scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import torch

from nnip.errors import ConfigError, DataError
from nnip.nn.mlp import ACTIVATIONS, mlp
from nnip.potentials.contract.base import Edges, GlobalTerm, System
from nnip.strict import CUTOFF, check

__all__ = ["CoordinateMLP", "CoordinateMLPConfig"]


@dataclass
class CoordinateMLPConfig:
    """The naive coordinate MLP (not invariant; the lecture's starting point).

    Args:
        n_atoms: atoms per structure. hidden: layer widths. activation: smooth activation.
        cutoff: Å, only sets the neighbour list the potential asks for (the model uses no edges).
    """

    n_atoms: int = 1
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "silu"
    cutoff: Annotated[float, CUTOFF] = 0.5

    def __post_init__(self) -> None:
        if self.n_atoms < 1 or any(h < 1 for h in self.hidden):
            raise ConfigError("n_atoms and every hidden width must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation: expected one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        check("cutoff", self.cutoff, CUTOFF)


class CoordinateMLP(GlobalTerm):
    """Energy from flattened coordinates (dimensionless); see the module docstring."""

    name = "coordinate_mlp"
    Config = CoordinateMLPConfig
    dimensionless = True

    def __init__(self, config: CoordinateMLPConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.network = mlp([3 * config.n_atoms, *config.hidden, 1], config.activation)

    def forward(self, species: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:
        n = self.config.n_atoms
        if bool((system.n_atoms != n).any()):
            raise DataError(f"coordinate_mlp was built for {n} atoms per structure, got {system.n_atoms.tolist()}")
        energy = self.network(system.positions.reshape(-1, 3 * n)).squeeze(-1)  # (B,)
        return (energy / n).repeat_interleave(n)
