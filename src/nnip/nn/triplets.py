"""Triplets (j, i, k): pairs of edges that share their centre atom i, built without Python loops.

Each unordered pair of distinct edges i->j and i->k of the same centre appears once, so a
sum over triplets is a sum over unordered neighbour pairs {j, k} of atom i. Periodic
images count as different neighbours (edges differ in their image shift).
"""

from __future__ import annotations

import torch

__all__ = ["triplet_edges"]


def triplet_edges(center: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge index pairs (first, second), first != second, with center[first] == center[second].

    Shapes: center (E,) int64 -> two (T,) int64 tensors, T = sum_i n_i (n_i - 1) / 2 for
    n_i edges at atom i.
    """
    order = torch.argsort(center, stable=True)
    sorted_center = center[order]
    counts = torch.bincount(sorted_center, minlength=n_atoms)
    offsets = torch.cumsum(counts, 0) - counts
    rank = torch.arange(center.shape[0], device=center.device) - offsets[sorted_center]
    partners = counts[sorted_center] - rank - 1  # edges after this one at the same centre
    first = torch.repeat_interleave(torch.arange(center.shape[0], device=center.device), partners)
    starts = torch.cumsum(partners, 0) - partners
    local = torch.arange(first.shape[0], device=center.device) - torch.repeat_interleave(starts, partners)
    second = first + 1 + local
    return order[first], order[second]
