"""Lone-atom references computed in the same pass as the atoms themselves.

A network term subtracts, from each atom's output, the output of a lone atom of its element
(no neighbours), so that an isolated atom contributes exactly zero and its energy is E0.
Rather than running the network a second time on the S lone atoms, the S lone atoms are
appended to the N real ones: no edge touches them, so their rows receive no messages and
come out as the lone-atom features, in the same matrix products (fewer operations, which is
what small molecules pay for).
"""

from __future__ import annotations

import torch

__all__ = ["with_lone_atoms", "relative_to_lone"]


def with_lone_atoms(species: torch.Tensor, n_elements: int) -> torch.Tensor:
    """Species (N,) followed by one atom of each element, 0..S-1: (N + S,).

    Edges index only the first N atoms, so scatters onto atoms must use the length N + S.
    """
    lone = torch.arange(n_elements, dtype=species.dtype, device=species.device)
    return torch.cat([species, lone])


def relative_to_lone(values: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """Per-atom values (N + S, ...) of :func:`with_lone_atoms` atoms minus their element's lone value: (N, ...)."""
    n = species.shape[0]
    # one gather from the whole tensor: torch 2.13's inductor failed on values[n:].index_select(0, species)
    # for a single element on two threads (tests/potentials/test_compile.py)
    return values[:n] - values.index_select(0, species + n)
