"""A continuous-filter convolution streamed over chunks of edges.

    out_i = sum_{j in N(i)} W(r_ij) * h_j        W: (E, F) filters of edge inputs r (E,), h: (N, F)

computed a chunk of edges at a time, in the forward pass and again in the backward pass,
into one (N, F) accumulator. No (E, F) tensor is ever formed: memory is O(N F + E) instead
of tens of (E, F) tensors, and each chunk's temporaries are small enough (a few MB) for any
allocator to hand the same memory back chunk after chunk. On large systems this is what
matters: glibc malloc gives every allocation above its mmap threshold (at most 32 MiB) fresh
pages from the kernel and returns them on free, so an unstreamed call page-faults through
all its per-edge tensors every time (SchNet at 10^4-10^5 atoms of Cu ran 2.5-4x slower under glibc than under
jemalloc, whose freed pages stay mapped).

The price is one more forward pass of the filter network in the backward pass (as with
nnip.nn.recompute), and the custom backward is not itself differentiable: a backward pass
with ``create_graph`` (training on forces, Hessians) through it raises. Models use it only
where recomputing is allowed (:func:`nnip.nn.recompute.recompute_allowed`), which
``Potential.forward`` rules out for ``create_graph``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["CHUNK_BYTES", "streamed_convolution"]

#: bytes of one (chunk, F) tensor: 4 MiB, below glibc's largest mmap threshold (32 MiB), so once
#: glibc's dynamic threshold has risen past it (after the first chunk's blocks are freed) chunk
#: temporaries come from the heap and are reused; 16384 edges for 64 float32 features.
CHUNK_BYTES = 4 * 2**20


def streamed_convolution(filters: Callable[[torch.Tensor], torch.Tensor], h: torch.Tensor,
                         edge_input: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
                         parameters: tuple[torch.Tensor, ...], chunk_bytes: int | None = None) -> torch.Tensor:
    """sum_j filters(edge_input)_ij * h_j onto the centres, a chunk of edges at a time.

    Args:
        filters: (Ec,) -> (Ec, F) edge filters, deterministic. Gradients reach only ``edge_input`` and
            ``parameters``: any other tensor it uses gets none.
        h: (N, F) features gathered from the neighbours.
        edge_input: (E,) per-edge input of ``filters`` (e.g. lengths in Å); gradients flow to it.
        center, neighbor: (E,) int64 edge ends, < N.
        parameters: every tensor ``filters`` uses that may need a gradient (its module's parameters).
        chunk_bytes: size of one (chunk, F) temporary (None: :data:`CHUNK_BYTES`); chunks have at least one edge.
    Returns: (N, F).
    """
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    chunk = max(1, chunk_bytes // max(1, h.shape[1] * h.element_size()))
    return _StreamedConvolution.apply(filters, chunk, h, edge_input, center, neighbor, *parameters)


class _StreamedConvolution(torch.autograd.Function):
    """Forward: one pass over the chunks. Backward: the filters of each chunk again, then their vector-Jacobian
    products for h, the edge input and the parameters, accumulated in place."""

    @staticmethod
    def forward(ctx, filters, chunk, h, edge_input, center, neighbor, *parameters):
        ctx.filters, ctx.chunk = filters, chunk
        ctx.save_for_backward(h, edge_input, center, neighbor, *parameters)  # saved: checked for in-place changes
        out = torch.zeros_like(h)
        for start in range(0, edge_input.shape[0], chunk):
            part = slice(start, start + chunk)
            messages = filters(edge_input[part]) * h.index_select(0, neighbor[part])
            out.index_add_(0, center[part], messages)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():  # create_graph: raise rather than leave this term out of second derivatives
            raise RuntimeError("a streamed convolution (nnip.nn.edge_stream) has no second derivatives: evaluate "
                               "the model under nnip.nn.recompute.keep_activations() (Potential.forward does so for "
                               "create_graph=True) or set the term's stream_above_bytes = None")
        h, edge_input, center, neighbor, *parameters = ctx.saved_tensors
        needs_h, needs_edge = ctx.needs_input_grad[2:4]
        wanted = [k for k, need in enumerate(ctx.needs_input_grad[6:]) if need]
        grad_h = torch.zeros_like(h) if needs_h else None
        grad_edge = torch.zeros_like(edge_input) if needs_edge else None
        grad_parameters: list[torch.Tensor | None] = [None] * len(parameters)
        for k in wanted:
            grad_parameters[k] = torch.zeros_like(parameters[k])
        for start in range(0, edge_input.shape[0], ctx.chunk):
            part = slice(start, start + ctx.chunk)
            grad_messages = grad_out.index_select(0, center[part])  # (Ec, F)
            edge_part = edge_input[part].detach().requires_grad_(needs_edge)
            with torch.enable_grad():
                weights = ctx.filters(edge_part)
            if needs_h:
                grad_h.index_add_(0, neighbor[part], grad_messages * weights.detach())
            inputs = ([edge_part] if needs_edge else []) + [parameters[k] for k in wanted]
            if not inputs:
                continue
            grads = list(torch.autograd.grad(weights, inputs, grad_messages * h.index_select(0, neighbor[part]),
                                             allow_unused=True))
            if needs_edge:
                grad = grads.pop(0)
                if grad is not None:
                    grad_edge[part] = grad
            for k, grad in zip(wanted, grads):
                if grad is not None:
                    grad_parameters[k] += grad
        return (None, None, grad_h, grad_edge, None, None, *grad_parameters)
