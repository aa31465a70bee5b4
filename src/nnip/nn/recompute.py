"""Recompute a large per-edge layer in the backward pass instead of keeping its activations.

Forces by autograd keep every intermediate of every message-passing layer until the
backward pass: for SchNet (64 features) about 7 kB per edge, so 24 GB at 10^5 atoms of
fcc Cu. Run through :func:`recompute_if_large`, a layer whose per-edge activations
exceed a size keeps only its inputs and runs again during the backward pass (activation
checkpointing, ``torch.utils.checkpoint`` without re-entrance, so ``torch.autograd.grad``
and ``create_graph`` work). Results are the same to rounding; the price is one more
forward pass of those layers, paid only above the size. Compiled terms
(``Potential.compile_terms``) keep their activations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["RECOMPUTE_ABOVE_BYTES", "recompute_if_large"]

#: default of ``Term.recompute_above_bytes``: recompute a layer whose largest per-edge tensor
#: exceeds this many bytes. 512 MiB is 2 x 10^6 edges x 64 float32 features: SchNet 64 recomputes
#: above about 5 x 10^4 atoms of fcc Cu at a 5 Å cutoff (45 neighbours each), PaiNN 64 above
#: 1.6 x 10^4, the equivariant model with 32 channels and l_max 2 above 6 x 10^3.
RECOMPUTE_ABOVE_BYTES = 512 * 2**20


def recompute_if_large(layer: Callable[..., Any], *args, edge_tensor_bytes: int,
                       limit: int | None) -> Any:
    """``layer(*args)``, recomputed in the backward pass when ``edge_tensor_bytes > limit``.

    Args:
        layer: a deterministic module or function (no dropout: it runs twice).
        edge_tensor_bytes: bytes of the layer's largest per-edge tensor, e.g. E x F x 4 in float32.
        limit: the size above which to recompute; None never recomputes, 0 always does.
    """
    # compiling or exporting first: comparing the symbolic size would add a guard on the number of edges
    if (limit is None or torch.compiler.is_compiling() or not torch.is_grad_enabled()
            or edge_tensor_bytes <= limit):
        return layer(*args)
    return checkpoint(layer, *args, use_reentrant=False, preserve_rng_state=False)
