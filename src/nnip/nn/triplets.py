"""Triplets (j, i, k): pairs of edges that share their centre atom i, built without Python loops.

Each unordered pair of distinct edges i->j and i->k of the same centre appears once, so a
sum over triplets is a sum over unordered neighbour pairs {j, k} of atom i. Periodic
images count as different neighbours (edges differ in their image shift).
"""

from __future__ import annotations

import torch
from torch.fx.experimental.symbolic_shapes import guard_or_false

from nnip.nn.execution import exporting

__all__ = ["triplet_edges"]


def _repeated_arange(counts: torch.Tensor) -> torch.Tensor:
    """0, 1, ... len(counts) - 1, each k repeated counts[k] times. Shapes: (E,) -> (sum counts,).

    While a program is traced for deployment, by a sorted search (repeat_interleave's size cannot be compiled)."""
    if not exporting():
        return torch.repeat_interleave(torch.arange(counts.shape[0], device=counts.device), counts)
    ends = torch.cumsum(counts, 0)
    total = counts.sum().item()  # a symbol while tracing (int() would need its value)
    return torch.searchsorted(ends, torch.arange(total, device=counts.device), right=True)


def triplet_edges(center: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge index pairs (first, second), first != second, with center[first] == center[second].

    Shapes: center (E,) int64 -> two (T,) int64 tensors, T = sum_i n_i (n_i - 1) / 2 for
    n_i edges at atom i.
    """
    if guard_or_false(center.shape[0] == 0):  # no triplets (spelled out: a traced program cannot index an empty
        # tensor; a count that is a symbol while tracing is taken as not zero)
        return center, center
    order = torch.argsort(center, stable=True)
    sorted_center = center[order]
    counts = torch.zeros(n_atoms, dtype=center.dtype, device=center.device).index_add_(
        0, sorted_center, torch.ones_like(sorted_center))  # not bincount, whose length depends on the data
    offsets = torch.cumsum(counts, 0) - counts
    rank = torch.arange(center.shape[0], device=center.device) - offsets[sorted_center]
    partners = counts[sorted_center] - rank - 1  # edges after this one at the same centre
    first = _repeated_arange(partners)
    starts = torch.cumsum(partners, 0) - partners
    local = torch.arange(first.shape[0], device=center.device) - starts[first]
    second = first + 1 + local
    return order[first], order[second]
