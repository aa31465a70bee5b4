"""Recompute a large per-edge layer in the backward pass instead of keeping its activations.

Forces by autograd keep every intermediate of every message-passing layer until the
backward pass: for SchNet (64 features, float32) about 6 kB per edge, so more than 23 GB
at 10^5 atoms of fcc Cu. Run through :func:`recompute_if_large`, a layer whose per-edge
activations exceed a size keeps only its inputs and runs again during the backward pass
(activation checkpointing, ``torch.utils.checkpoint`` without re-entrance). Results are
the same to rounding; the price is one more forward pass of those layers, paid only above
the size and only for plain energy/force/stress evaluation: under :func:`keep_activations`
(which ``Potential.forward`` enters for ``create_graph``, i.e. training, attacks and
Hessians, where every further backward pass would recompute again and the first pass's
activations stay alive anyway) and in compiled or exported terms, activations are kept.

Calls nest: a model can recompute a cheap part of a layer first and the whole layer only
at a larger size (SchNet, with its streaming off, recomputes its convolution, the atom-wise
in2f product, gather, two elementwise products and scatter, above the limit, and the whole
block with its filter network above 1.5 times it); inside a layer recomputed as a whole,
inner calls keep their activations. By default SchNet, PaiNN and the equivariant model
stream their messages over chunks of edges on the CPU from a much smaller size
(nnip.nn.edge_stream), which keeps less than either.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["RECOMPUTE_ABOVE_BYTES", "keep_activations", "recompute_allowed", "recompute_if_large"]


def _physical_memory() -> int | None:
    """Bytes of RAM of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


#: default of ``Term.recompute_above_bytes``: recompute a layer whose largest per-edge tensor exceeds
#: 1/32 of the machine's RAM (512 MiB where it is unknown). A model keeps tens of such tensors
#: (layers x intermediates), so above this its activations approach the machine's memory. On a
#: 23.6 GiB machine (0.74 GiB) with fcc Cu at a 5 Å cutoff (43 neighbours per atom), float32:
#: SchNet 64 (not streaming) recomputes its convolutions above about 7 x 10^4 atoms and whole
#: blocks above about 1.1 x 10^5, PaiNN 64 (not streaming; filters E x 3F) above 2.4 x 10^4,
#: the equivariant model with 32 channels and l_max 2 (its products z, E x 12 x 32) above 1.2 x 10^4.
RECOMPUTE_ABOVE_BYTES = (_physical_memory() or 16 * 2**30) // 32

_KEEPING = contextvars.ContextVar("nnip_keep_activations", default=False)


@contextlib.contextmanager
def keep_activations() -> Iterator[None]:
    """Within this block no layer is recomputed, whatever its size."""
    token = _KEEPING.set(True)
    try:
        yield
    finally:
        _KEEPING.reset(token)


def recompute_allowed() -> bool:
    """False under :func:`keep_activations` and while compiling or exporting (``is_compiling`` holds for
    both; a size check on the symbolic number of edges would add a guard, and compiled code keeps its
    activations)."""
    return not (torch.compiler.is_compiling() or _KEEPING.get())  # in this order: dynamo breaks graphs at ContextVars


def recompute_if_large(layer: Callable[..., Any], *args, edge_tensor_bytes: int,
                       limit: int | None) -> Any:
    """``layer(*args)``, recomputed in the backward pass when ``edge_tensor_bytes > limit``.

    Args:
        layer: a deterministic module or function (no dropout: it runs twice).
        edge_tensor_bytes: bytes of the layer's largest per-edge tensor, e.g. E x F x 4 in float32.
        limit: the size above which to recompute; None never recomputes, 0 always does.
    """
    # the size last: while compiling or exporting, comparing it would add a guard on the number of edges
    if limit is None or not torch.is_grad_enabled() or not recompute_allowed() or edge_tensor_bytes <= limit:
        return layer(*args)
    return checkpoint(_keeping_inside, layer, *args, use_reentrant=False, preserve_rng_state=False)


def _keeping_inside(layer: Callable[..., Any], *args) -> Any:
    """``layer(*args)`` with its own nested recompute_if_large calls keeping their activations: the
    layer as a whole is recomputed already, and its forward pass and its recomputation must run
    the same operations."""
    with keep_activations():
        return layer(*args)
