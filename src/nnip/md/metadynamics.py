"""Well-tempered metadynamics on a distance, an angle or a dihedral, as an ASE calculator added to any other.

The bias is a sum of Gaussians deposited every ``pace`` steps at the current value s_t of
the collective variable (Å for a distance, radians for angles):

    V(s) = sum_k w_k exp(-d(s, s_k)^2 / (2 sigma^2)),   d = s - s_k (wrapped to [-pi, pi) for a dihedral)
    w_k = w_0 exp(-V(s_k) / (k_B (gamma - 1) T))     (well-tempered; gamma = bias factor)

and the free-energy profile is F(s) = -gamma / (gamma - 1) V(s) (up to a constant). The
variable's gradient comes from autograd, so the bias forces are exact. The deposited
hills (centre, height) can be saved to plot the profile later.

References: A. Laio and M. Parrinello, PNAS 99, 12562 (2002); A. Barducci, G. Bussi and
M. Parrinello, Phys. Rev. Lett. 100, 020603 (2008).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes

__all__ = ["distance", "angle", "dihedral", "VARIABLES", "Metadynamics"]


def distance(positions: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
    """Distance (Å) between atoms i and j (no periodic images)."""
    i, j = indices
    return (positions[j] - positions[i]).norm()


def angle(positions: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
    """Angle i-j-k (radians, in [0, pi]) at atom j."""
    i, j, k = indices
    a, b = positions[i] - positions[j], positions[k] - positions[j]
    return torch.atan2(torch.linalg.cross(a, b).norm(), a @ b)


def dihedral(positions: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
    """Dihedral angle (radians, in (-pi, pi]) of atoms i-j-k-l. Shapes: positions (N, 3) -> ()."""
    a, b, c, d = (positions[i] for i in indices)
    b0, b1, b2 = a - b, c - b, d - c
    b1 = b1 / b1.norm()
    v = b0 - (b0 @ b1) * b1
    w = b2 - (b2 @ b1) * b1
    return torch.atan2(torch.linalg.cross(b1, v) @ w, v @ w)


#: collective variables: name -> (function, number of atoms, periodic)
VARIABLES = {"distance": (distance, 2, False), "angle": (angle, 3, False), "dihedral": (dihedral, 4, True)}


class Metadynamics(Calculator):
    """The metadynamics bias energy (eV) and forces; combine with a potential by ASE's SumCalculator.

    Args:
        variable: "distance", "angle" or "dihedral". indices: its atoms (0-based).
        height: w_0, eV. width: sigma, in the variable's unit (Å or radians).
        pace: MD steps between Gaussians (one ``calculate`` per step is assumed).
        bias_factor: gamma (> 1; well-tempered). temperature: K.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, variable: str, indices: Sequence[int], height: float = 0.01, width: float = 0.35,
                 pace: int = 50, bias_factor: float = 10.0, temperature: float = 300.0, **kwargs):
        super().__init__(**kwargs)
        if variable not in VARIABLES:
            raise ValueError(f"unknown collective variable {variable!r}; known: {', '.join(VARIABLES)}")
        self.function, n_atoms, self.periodic = VARIABLES[variable]
        if len(indices) != n_atoms or bias_factor <= 1 or width <= 0 or pace < 1:
            raise ValueError(f"need {n_atoms} atom indices for a {variable}, bias_factor > 1, width > 0, pace >= 1")
        self.variable = variable
        self.indices = list(indices)
        self.height, self.width, self.pace = height, width, pace
        self.bias_factor, self.temperature = bias_factor, temperature
        self.centres: list[float] = []
        self.heights: list[float] = []
        self.calls = 0

    def bias(self, s: torch.Tensor) -> torch.Tensor:
        """V(s) in eV for angles s (any shape)."""
        if not self.centres:
            return s * 0.0  # zero, still differentiable
        centres = torch.tensor(self.centres, dtype=s.dtype)
        heights = torch.tensor(self.heights, dtype=s.dtype)
        delta = s[..., None] - centres
        if self.periodic:
            delta = torch.remainder(delta + math.pi, 2 * math.pi) - math.pi
        return (heights * torch.exp(-delta**2 / (2 * self.width**2))).sum(-1)

    def grid(self, points: int = 361) -> np.ndarray:
        """Values of the variable to tabulate the profile on: (-pi, pi) for a dihedral, else the visited range."""
        if self.periodic:
            return np.linspace(-np.pi, np.pi, points)
        visited = np.array(self.centres or [0.0])
        return np.linspace(visited.min() - 3 * self.width, visited.max() + 3 * self.width, points)

    def save_hills(self, path) -> None:
        """The deposited hills as CSV: centre (variable's unit), height (eV), width."""
        rows = np.column_stack([self.centres, self.heights, np.full(len(self.centres), self.width)])
        np.savetxt(path, rows.reshape(-1, 3), delimiter=",", header="centre,height_eV,width", comments="")

    def free_energy(self, grid: np.ndarray) -> np.ndarray:
        """F(s) = -gamma / (gamma - 1) V(s), eV, shifted to a minimum of 0, on the values ``grid``."""
        values = -self.bias_factor / (self.bias_factor - 1) * self.bias(torch.as_tensor(grid)).numpy()
        return values - values.min()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        positions = torch.tensor(self.atoms.positions, dtype=torch.float64, requires_grad=True)
        s = self.function(positions, self.indices)
        energy = self.bias(s)
        (gradient,) = torch.autograd.grad(energy, positions, allow_unused=True)
        forces = np.zeros((len(self.atoms), 3)) if gradient is None else -gradient.numpy()
        value = float(energy.detach())
        self.results = {"energy": value, "free_energy": value, "forces": forces}
        self.calls += 1
        if self.calls % self.pace == 0:
            scale = self.bias_factor - 1
            self.heights.append(self.height * math.exp(-value / (units.kB * scale * self.temperature)))
            self.centres.append(float(s.detach()))
