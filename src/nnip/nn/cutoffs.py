"""Smooth switching functions that take a pair interaction to zero at a cutoff."""

import torch

__all__ = ["quintic_switch"]


def quintic_switch(r: torch.Tensor, r_on: float, r_cut: float) -> torch.Tensor:
    """C2 smoothstep: 1 for r <= r_on, 0 for r >= r_cut, 6t^5 - 15t^4 + 10t^3 between.

    t = (r_cut - r) / (r_cut - r_on). Value, first and second derivative are continuous,
    so energies and forces go to zero smoothly. The same form as ASE's MorsePotential
    cutoff (JuLIP's C^{2,1} polynomial).

    Shapes: r (E,) Å -> (E,).
    """
    t = ((r_cut - r) / (r_cut - r_on)).clamp(0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)
