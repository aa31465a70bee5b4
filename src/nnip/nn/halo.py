"""Ghost atoms' node features between message-passing layers, for potentials run on LAMMPS's domains.

On one MPI rank, LAMMPS holds the rank's own atoms and, within one cutoff (plus skin) of its domain,
ghost atoms: atoms of other ranks and periodic images. Messages are formed towards the rank's own atoms
only, so after a layer the ghosts' features are stale; :func:`exchange` replaces each ghost's row by its
owner's (a LAMMPS forward communication) before the next layer reads it, and its gradient adds each
ghost's gradient to its owner and zeroes the ghost's (a reverse communication). Then a model of L
layers needs ghosts within one cutoff, not L, and every rank's result is exact.

A pair of a half list that joins an own atom to another rank's is computed on one of the two ranks
only; what it adds to the ghost's row of a sum over pairs (messages, pair energies) belongs to the
ghost's owner: :func:`exchange_reverse` adds each ghost's row to its owner's and zeroes the ghost's (its
gradient is :func:`exchange`).

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
def exchange_reverse(values: torch.Tensor) -> torch.Tensor:
    """Ghost rows added to their owners' and set to zero (sums over pairs; the gradient of :func:`exchange`).
    Shape (N, ...) -> (N, ...); the identity here."""
    return values.clone()


@exchange_reverse.register_fake
def _exchange_reverse_shape(values: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(values)


def _exchange_backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
    return exchange_reverse(gradient)


def _exchange_reverse_backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
    return exchange(gradient)


exchange.register_autograd(_exchange_backward)
exchange_reverse.register_autograd(_exchange_reverse_backward)
