"""Well-tempered metadynamics on a distance, an angle or a dihedral, as one more energy term.

The bias is a sum of Gaussians deposited every ``pace`` MD steps at the current value s_t
of the collective variable (Å for a distance, radians for angles):

    V(s) = sum_k w_k exp(-d(s, s_k)^2 / (2 sigma^2)),   d = s - s_k (wrapped to [-pi, pi) for a dihedral)
    w_k = w_0 exp(-V(s_k) / (k_B (gamma - 1) T))     (well-tempered; gamma = bias factor)

and the free-energy profile is F(s) = -gamma / (gamma - 1) V(s) (up to a constant).

:class:`MetadynamicsBias` is a :class:`~nnip.potentials.contract.base.GlobalTerm` under the same
contract as every potential (species, edges, positions -> per-atom energies; forces by
autograd), so it sums with a model's terms in a :class:`~nnip.potentials.contract.base.Potential`
or, through :class:`~nnip.md.biased.BiasedCalculator`, with any ASE calculator (an oracle).
The deposited hills can be saved to plot the profile later.

References: A. Laio and M. Parrinello, PNAS 99, 12562 (2002); A. Barducci, G. Bussi and
M. Parrinello, Phys. Rev. Lett. 100, 020603 (2008).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import units

from nnip.errors import ConfigError
from nnip.potentials.contract.base import Edges, GlobalTerm, System

__all__ = ["distance", "angle", "dihedral", "VARIABLES", "MetadynamicsConfig", "MetadynamicsBias"]


def distance(points: torch.Tensor) -> torch.Tensor:
    """Distance (Å) between the two atoms of ``points`` (..., 2, 3) -> (...); no periodic images."""
    return (points[..., 1, :] - points[..., 0, :]).norm(dim=-1)


def angle(points: torch.Tensor) -> torch.Tensor:
    """Angle i-j-k (radians, in [0, pi]) at the middle atom. Shapes: (..., 3, 3) -> (...)."""
    a, b = points[..., 0, :] - points[..., 1, :], points[..., 2, :] - points[..., 1, :]
    return torch.atan2(torch.linalg.cross(a, b).norm(dim=-1), (a * b).sum(-1))


def dihedral(points: torch.Tensor) -> torch.Tensor:
    """Dihedral angle (radians, in (-pi, pi]) of atoms i-j-k-l. Shapes: (..., 4, 3) -> (...)."""
    b0 = points[..., 0, :] - points[..., 1, :]
    b1 = points[..., 2, :] - points[..., 1, :]
    b2 = points[..., 3, :] - points[..., 2, :]
    b1 = b1 / b1.norm(dim=-1, keepdim=True)
    v = b0 - (b0 * b1).sum(-1, keepdim=True) * b1
    w = b2 - (b2 * b1).sum(-1, keepdim=True) * b1
    return torch.atan2((torch.linalg.cross(b1, v) * w).sum(-1), (v * w).sum(-1))


#: collective variables: name -> (function, number of atoms, periodic)
VARIABLES = {"distance": (distance, 2, False), "angle": (angle, 3, False), "dihedral": (dihedral, 4, True)}


@dataclass
class MetadynamicsConfig:
    """variable: "distance", "angle" or "dihedral"; indices: its atoms (0-based, within each structure).

    height: w_0, eV. width: sigma, in the variable's unit (Å or radians). pace: MD steps
    between hills. bias_factor: gamma (> 1). temperature: K. cutoff: none needed (0 Å).
    """

    variable: str
    indices: list[int] = field(default_factory=list)
    height: float = 0.01
    width: float = 0.35
    pace: int = 50
    bias_factor: float = 10.0
    temperature: float = 300.0
    cutoff: float = 0.0

    def __post_init__(self) -> None:
        if self.variable not in VARIABLES:
            raise ConfigError(f"unknown collective variable {self.variable!r}; known: {', '.join(VARIABLES)}")
        n_atoms = VARIABLES[self.variable][1]
        if len(self.indices) != n_atoms or len(set(self.indices)) != n_atoms or min(self.indices) < 0:
            raise ConfigError(f"need {n_atoms} different atom indices >= 0 for a {self.variable}")
        if self.bias_factor <= 1 or self.width <= 0 or self.pace < 1 or self.height < 0 or self.temperature <= 0:
            raise ConfigError("need bias_factor > 1, width > 0, pace >= 1, height >= 0 and temperature > 0")


class MetadynamicsBias(GlobalTerm):
    """The bias V(s) of every structure, spread evenly over its atoms (per-atom energies, eV).

    The hills (centres in the variable's unit, heights in eV) are float64 buffers that grow
    with :meth:`deposit`; the term has no trainable parameters.
    """

    name = "metadynamics"

    def __init__(self, config: MetadynamicsConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.function, _, self.periodic = VARIABLES[config.variable]
        self.register_buffer("centres", torch.zeros(0, dtype=torch.float64))
        self.register_buffer("heights", torch.zeros(0, dtype=torch.float64))

    def _apply(self, fn, recurse=True):  # hills stay float64 when the model changes dtype
        centres, heights = self.centres, self.heights
        super()._apply(fn, recurse)
        self.centres, self.heights = centres.to(self.centres.device), heights.to(self.heights.device)
        return self

    @property
    def variable(self) -> str:
        return self.config.variable

    @property
    def width(self) -> float:
        return self.config.width

    def value(self, positions: torch.Tensor, first_atom: torch.Tensor | int = 0) -> torch.Tensor:
        """The variable of each structure whose atoms start at ``first_atom`` (B,) in ``positions`` (N, 3)."""
        indices = torch.as_tensor(self.config.indices, device=positions.device)
        rows = torch.as_tensor(first_atom, device=positions.device).reshape(-1, 1) + indices
        return self.function(positions[rows])

    def bias(self, s: torch.Tensor) -> torch.Tensor:
        """V(s) in eV for values ``s`` of the variable (any shape)."""
        centres, heights = self.centres.to(s.dtype), self.heights.to(s.dtype)
        delta = s[..., None] - centres
        if self.periodic:
            delta = torch.remainder(delta + math.pi, 2 * math.pi) - math.pi
        return (heights * torch.exp(-delta**2 / (2 * self.config.width**2))).sum(-1)

    def forward(self, species: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:
        first_atom = torch.cumsum(system.n_atoms, 0) - system.n_atoms
        if bool((system.n_atoms <= max(self.config.indices)).any()):
            raise ValueError(f"the {self.variable} needs atoms {self.config.indices}; a structure has fewer")
        energy = self.bias(self.value(system.positions, first_atom))
        return (energy / system.n_atoms.to(energy.dtype))[system.structure_index]

    @torch.no_grad()
    def deposit(self, positions: np.ndarray) -> None:
        """Add a well-tempered hill at the variable's value for ``positions`` (N, 3) Å of one structure."""
        s = self.value(torch.as_tensor(np.asarray(positions), dtype=torch.float64, device=self.centres.device))
        scale = units.kB * (self.config.bias_factor - 1) * self.config.temperature
        height = self.config.height * torch.exp(-self.bias(s) / scale)
        self.centres = torch.cat([self.centres, s])
        self.heights = torch.cat([self.heights, height])

    def grid(self, points: int = 361) -> np.ndarray:
        """Values of the variable to tabulate the profile on: (-pi, pi) for a dihedral, else the visited range."""
        if self.periodic:
            return np.linspace(-np.pi, np.pi, points)
        visited = self.centres.cpu().numpy() if len(self.centres) else np.zeros(1)
        return np.linspace(visited.min() - 3 * self.width, visited.max() + 3 * self.width, points)

    def save_hills(self, path) -> None:
        """The deposited hills as CSV: centre (variable's unit), height (eV), width."""
        centres, heights = self.centres.cpu().numpy(), self.heights.cpu().numpy()
        rows = np.column_stack([centres, heights, np.full(len(centres), self.width)])
        np.savetxt(path, rows.reshape(-1, 3), delimiter=",", header="centre,height_eV,width", comments="")

    @torch.no_grad()
    def free_energy(self, grid: np.ndarray) -> np.ndarray:
        """F(s) = -gamma / (gamma - 1) V(s), eV, shifted to a minimum of 0, on the values ``grid``."""
        gamma = self.config.bias_factor
        values = -gamma / (gamma - 1) * self.bias(torch.as_tensor(grid, dtype=torch.float64)).cpu().numpy()
        return values - values.min()
