"""Well-tempered metadynamics on a dihedral angle, as an ASE calculator added to any other.

The bias is a sum of periodic Gaussians deposited every ``pace`` steps at the current
dihedral s_t (radians):

    V(s) = sum_k w_k exp(-d(s, s_k)^2 / (2 sigma^2)),   d = the angle difference wrapped to [-pi, pi)
    w_k = w_0 exp(-V(s_k) / (k_B (gamma - 1) T))     (well-tempered; gamma = bias factor)

and the free-energy profile is F(s) = -gamma / (gamma - 1) V(s) (up to a constant). The
dihedral's gradient comes from autograd, so the bias forces are exact.

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

__all__ = ["dihedral", "DihedralMetadynamics"]


def dihedral(positions: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
    """Dihedral angle (radians, in (-pi, pi]) of atoms i-j-k-l. Shapes: positions (N, 3) -> ()."""
    a, b, c, d = (positions[i] for i in indices)
    b0, b1, b2 = a - b, c - b, d - c
    b1 = b1 / b1.norm()
    v = b0 - (b0 @ b1) * b1
    w = b2 - (b2 @ b1) * b1
    return torch.atan2(torch.linalg.cross(b1, v) @ w, v @ w)


class DihedralMetadynamics(Calculator):
    """The metadynamics bias energy (eV) and forces; combine with a potential by ASE's SumCalculator.

    Args:
        indices: the four atoms of the dihedral. height: w_0, eV. width: sigma, radians.
        pace: MD steps between Gaussians (one ``calculate`` per step is assumed).
        bias_factor: gamma (> 1; well-tempered). temperature: K.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, indices: Sequence[int], height: float = 0.01, width: float = 0.35, pace: int = 50,
                 bias_factor: float = 10.0, temperature: float = 300.0, **kwargs):
        super().__init__(**kwargs)
        if len(indices) != 4 or bias_factor <= 1 or width <= 0 or pace < 1:
            raise ValueError("need 4 atom indices, bias_factor > 1, width > 0 and pace >= 1")
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
        delta = torch.remainder(s[..., None] - centres + math.pi, 2 * math.pi) - math.pi
        return (heights * torch.exp(-delta**2 / (2 * self.width**2))).sum(-1)

    def free_energy(self, grid: np.ndarray) -> np.ndarray:
        """F(s) = -gamma / (gamma - 1) V(s), eV, shifted to a minimum of 0, on angles ``grid`` (radians)."""
        values = -self.bias_factor / (self.bias_factor - 1) * self.bias(torch.as_tensor(grid)).numpy()
        return values - values.min()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        positions = torch.tensor(self.atoms.positions, dtype=torch.float64, requires_grad=True)
        s = dihedral(positions, self.indices)
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
