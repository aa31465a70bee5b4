"""Multilayer perceptrons and the activations the models share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ShiftedSoftplus", "mlp", "ACTIVATIONS"]


class ShiftedSoftplus(nn.Module):
    """ssp(x) = ln(0.5 e^x + 0.5), SchNet's activation: smooth, ssp(0) = 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(x) - math.log(2.0)


#: Smooth activations by config name (smooth so forces and their derivatives exist everywhere).
ACTIVATIONS = {"ssp": ShiftedSoftplus, "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(sizes: Sequence[int], activation: str = "silu") -> nn.Sequential:
    """Linear layers of widths ``sizes`` (input first) with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if k < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)
