"""Radial functions of edge lengths: smooth cutoffs and radial bases.

Shapes: lengths r (E,) Å -> (E,) for cutoffs, (E, K) for bases.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["cosine_cutoff", "polynomial_cutoff", "GaussianBasis", "BesselBasis"]


def cosine_cutoff(r: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Behler's cutoff f_c(r) = 0.5 cos(pi r / r_c) + 0.5 for r < r_c, else 0 (value and slope vanish at r_c).

    Reference: J. Behler, J. Chem. Phys. 134, 074106 (2011), Eq. 4.
    """
    return (0.5 * torch.cos(r * (math.pi / cutoff)) + 0.5) * (r < cutoff)  # a mask product: fewer ops than where


def polynomial_cutoff(r: torch.Tensor, cutoff: float, p: int = 6) -> torch.Tensor:
    """1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r / r_c, for r < r_c, else 0.

    Value and first two derivatives vanish at r_c (NequIP and MACE use p = 6). Evaluated as
    the equal (1 - x)^3 sum_{k<p} (k+1)(k+2)/2 x^k, which keeps full relative precision near
    r_c, where the expanded form loses it to cancellation (float32 noise ~1e-5 in forces).
    Reference: J. Klicpera, J. Gross, S. Gunnemann, ICLR 2020 (DimeNet), Eq. 8.
    """
    x = (r / cutoff).clamp(max=1.0)
    series = torch.full_like(x, 0.5 * p * (p + 1))
    for k in range(p - 2, -1, -1):  # Horner
        series = series * x + 0.5 * (k + 1) * (k + 2)
    return (1.0 - x) ** 3 * series  # exactly zero, with zero slope, from r_c on (x is clamped at 1)


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

        Values stop at exp(-50) ~ 2e-22 (with zero slope) more than 10 standard deviations from a
        centre: in float32 the far tails would be denormal numbers, which make every later product
        on the CPU several times slower.
        """
        return torch.exp((-self.gamma * (r[:, None] - self.centers) ** 2).clamp(min=-50.0))


class BesselBasis(nn.Module):
    """K radial Bessel functions sqrt(2 / r_c) sin(k pi r / r_c) / r, k = 1..K (r > 0).

    The eigenfunctions of a particle in a sphere of radius r_c: orthonormal on [0, r_c] with
    weight r^2, so the features stay of order one for any cutoff. Used by PaiNN
    (Schutt et al., ICML 2021) and DimeNet/NequIP (there with trainable frequencies).
    """

    def __init__(self, n_basis: int, cutoff: float, trainable: bool = False):
        super().__init__()
        frequencies = math.pi * torch.arange(1, n_basis + 1, dtype=torch.get_default_dtype()) / cutoff
        if trainable:
            self.frequencies = nn.Parameter(frequencies)
        else:
            self.register_buffer("frequencies", frequencies)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """(E,) Å -> (E, K)."""
        return self.prefactor * torch.sin(self.frequencies * r[:, None]) / r[:, None]
