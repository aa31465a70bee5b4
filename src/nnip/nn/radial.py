"""Radial functions of edge lengths: smooth cutoffs and radial bases.

Shapes: lengths r (E,) Å -> (E,) for cutoffs, (E, K) for bases.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_cutoff", "GaussianBasis"]


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Behler's cutoff f_c(r) = 0.5 cos(pi r / r_c) + 0.5 for r < r_c, else 0 (value and slope vanish at r_c).

    Reference: J. Behler, J. Chem. Phys. 134, 074106 (2011), Eq. 4.
    """
    return torch.where(r < cutoff, 0.5 * torch.cos(math.pi * r / cutoff) + 0.5, torch.zeros_like(r))


class GaussianBasis(nn.Module):
    """K Gaussians exp(-gamma (r - mu_k)^2) with centres mu_k evenly spaced on [start, cutoff].

    gamma = 1 / (2 spacing^2): neighbouring Gaussians overlap at one standard deviation.
    SchNet (Schutt et al., J. Chem. Phys. 148, 241722 (2018)) used 0.1 Å spacing with
    gamma = 10 1/Å^2, i.e. broader Gaussians than this rule.
    """

    def __init__(self, n_basis: int, cutoff: float, start: float = 0.0):
        super().__init__()
        centers = torch.linspace(start, cutoff, n_basis, dtype=torch.float64)
        spacing = (cutoff - start) / max(n_basis - 1, 1)
        self.register_buffer("centers", centers.to(torch.get_default_dtype()))
        self.gamma = 0.5 / spacing**2

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """(E,) Å -> (E, K).

        Values below exp(-50) ~ 2e-22 are set to exactly zero: in float32 the far tails would
        be denormal numbers, which make every later product on the CPU several times slower.
        """
        exponent = self.gamma * (r[:, None] - self.centers) ** 2
        return torch.where(exponent < 50.0, torch.exp(-exponent.clamp(max=50.0)), torch.zeros_like(exponent))
