"""Ghost atoms' node features between message-passing layers, for potentials run on LAMMPS's domains.

On one MPI rank, LAMMPS holds the rank's own atoms and, within one cutoff (plus skin) of its domain,
ghost atoms: atoms of other ranks and periodic images. Messages are formed towards the rank's own atoms
only, so after a layer the ghosts' features are stale; :func:`exchange` replaces each ghost's row by its
owner's (a LAMMPS forward communication) before the next layer reads it, and its gradient adds each
ghost's gradient to its owner and zeroes the ghost's (a reverse communication). Then a model of L
layers needs ghosts within one cutoff, not L, and every rank's result is exact.

In Python there are no ghosts: both operators are the identity. The LAMMPS plugin registers the same two
operators, ``nnip::exchange`` and ``nnip::exchange_reverse``, with LAMMPS's communication; a deployed
program calls them by name.
"""

from __future__ import annotations

import torch

__all__ = ["exchange", "exchange_reverse"]


@torch.library.custom_op("nnip::exchange", mutates_args=())
def exchange(features: torch.Tensor) -> torch.Tensor:
    """Rows of ghost atoms replaced by their owners'. Shape (N, ...) -> (N, ...); the identity here."""
    return features.clone()


@exchange.register_fake
def _exchange_shape(features: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(features)


@torch.library.custom_op("nnip::exchange_reverse", mutates_args=())
def exchange_reverse(gradient: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`exchange`: ghost rows added to their owners' and set to zero; the identity here."""
    return gradient.clone()


@exchange_reverse.register_fake
def _exchange_reverse_shape(gradient: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(gradient)


def _backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
    return exchange_reverse(gradient)


exchange.register_autograd(_backward)
