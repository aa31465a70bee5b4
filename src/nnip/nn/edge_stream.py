"""Message passing streamed over chunks of edges.

    out_k[i] = sum_{j in N(i)} m_k(a_j, e_ij)        k = 1..K outputs, shapes (N, ...)

with a_j atom features gathered from the neighbours and e_ij per-edge inputs (lengths, unit
vectors), computed a chunk of edges at a time, in the forward pass and again in the
backward pass, into one accumulator per output. No per-edge tensor of all E edges is formed
beyond the inputs: memory is O(N F + E) instead of tens of (E, F) tensors, and each chunk's
temporaries are small enough (a few MB) for any allocator to hand the same memory back chunk
after chunk. On large systems this is what matters: glibc malloc gives every allocation
above its mmap threshold (at most 32 MiB) fresh pages from the kernel and returns them on
free, so an unstreamed call page-faults through all its per-edge tensors every time (SchNet
at 10^4-10^5 atoms of Cu ran 2.5-4x slower under glibc than under jemalloc, whose freed pages
stay mapped).

The price is one more forward pass of the message function (its filter network included)
in the backward pass, as with nnip.nn.recompute, and the custom backward is not itself
differentiable: a backward pass with ``create_graph`` (training on forces, Hessians) through
it raises. Models stream only where :func:`should_stream` says so: on the CPU (the allocator
is what it is for; on GPUs it is not measured), where recomputing is allowed
(:func:`nnip.nn.recompute.recompute_allowed`, which ``Potential.forward`` rules out for
``create_graph``), and above a size. Parameters that require gradients get them computed in
every backward pass, even one that asks for forces only (an autograd Function is not told
which of its inputs a given backward pass wants): ``nnip.Calculator`` runs a frozen copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nnip.allocator import returns_freed_memory
from nnip.nn.half_list import both_directions
from nnip.nn.recompute import recompute_allowed

__all__ = ["CHUNK_BYTES", "STREAM_ABOVE_BYTES", "should_stream", "stream_over_edges"]

#: default of ``Term.stream_above_bytes``: SchNet, PaiNN and the equivariant model stream their messages
#: under glibc malloc when one (2P, F) (SchNet, P pairs), (E, 3F) (PaiNN) or (2P, edge_width) (equivariant)
#: tensor would exceed this many bytes: glibc's largest mmap threshold. Measured on fcc Cu, 2 threads:
#: SchNet 64x3 float32, 2197 atoms (23 MiB) 1.47x slower streamed, 4096 atoms (43 MiB) 1.26x faster;
#: equivariant l_max 1, 64 channels, frozen: 64 atoms float32 (4.0 MiB, streamed by force) 1.4x slower,
#: 512 atoms float32 (32.0 MiB, just above) 1.2x faster, float64 (64 MiB) 1.6x faster, 4096 atoms float64
#: 5.4x faster.
STREAM_ABOVE_BYTES = 32 * 2**20

#: bytes of the widest per-edge tensor of one chunk: 4 MiB, below glibc's largest mmap threshold
#: (32 MiB), so once glibc's dynamic threshold has risen past it (after the first chunk's blocks
#: are freed) chunk temporaries come from the heap and are reused.
CHUNK_BYTES = 4 * 2**20



def should_stream(stream_limit: int | None, memory_limit: int | None, edge_tensor_bytes: int,
                  device: torch.device) -> bool:
    """Whether a model streams its messages, given the bytes of its widest per-edge tensor.

    On the CPU and where recomputing is allowed only. Under an allocator that returns freed
    memory to the kernel (glibc's default, :func:`nnip.allocator.returns_freed_memory`) above
    ``stream_limit``; under one that keeps it (jemalloc, or glibc after
    ``retain_freed_memory``), where unstreamed calls were faster, only above ``memory_limit`` as
    well (the term's recompute limit), where streaming keeps far less than recomputing. None
    for either limit: never. The size is compared last, so compiling adds no guard on the
    number of edges.
    """
    if stream_limit is None or device.type != "cpu" or not recompute_allowed() or edge_tensor_bytes <= stream_limit:
        return False  # most calls (small systems) leave here
    return returns_freed_memory() or (memory_limit is not None and edge_tensor_bytes > memory_limit)


Message = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], Sequence[torch.Tensor]]


def stream_over_edges(message: Message, atom_inputs: Sequence[torch.Tensor], edge_inputs: Sequence[torch.Tensor],
                      center: torch.Tensor, neighbor: torch.Tensor, parameters: Sequence[torch.Tensor],
                      bytes_per_edge: int, chunk_bytes: int | None = None,
                      pairs: bool = False) -> tuple[torch.Tensor, ...]:
    """Sums over each atom's edges of ``message``, a chunk of edges at a time.

    Args:
        message: (gathered, edge_parts) -> per-edge messages (Ec, ...), deterministic; ``gathered``
            are ``atom_inputs`` at the chunk's neighbours, ``edge_parts`` the chunk's rows of
            ``edge_inputs``. Gradients reach only these and ``parameters``: any other tensor it
            uses gets none.
        atom_inputs: (N, ...) tensors; every output has N rows.
        edge_inputs: (E, ...) tensors.
        center, neighbor: (E,) int64 edge ends, < N.
        parameters: every tensor ``message`` uses that may need a gradient (its modules' parameters).
        bytes_per_edge: bytes of one edge's row of the widest per-edge tensor (e.g. 3F x 4 for
            (E, 3F) float32 filters); a chunk holds ``chunk_bytes`` of them (at least one edge).
        chunk_bytes: None: :data:`CHUNK_BYTES`.
        pairs: ``center`` and ``neighbor`` are a half list (each pair once) whose messages go both
            ways (nnip.nn.half_list): ``gathered`` then holds the atom inputs at the chunk's
            neighbours followed by those at its centres (2 Ec rows), and ``message`` returns 2 Ec
            rows, summed onto the centres and then onto the neighbours.
    Returns: the sums, (N, ...) each.
    """
    chunk = max(1, (CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, bytes_per_edge))
    return _StreamedMessages.apply(message, chunk, pairs, len(atom_inputs), len(edge_inputs), center, neighbor,
                                   *atom_inputs, *edge_inputs, *parameters)


def _chunks(n_edges: int, chunk: int) -> list[slice]:
    """Slices of at most ``chunk`` edges; one empty slice when there are no edges (to learn the output shapes)."""
    return [slice(start, start + chunk) for start in range(0, n_edges, chunk)] or [slice(0, 0)]


def _ends(center: torch.Tensor, neighbor: torch.Tensor, part: slice, pairs: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources and targets of a chunk's messages: its neighbours and centres, both ways for ``pairs``."""
    if pairs:
        return both_directions(center[part], neighbor[part])
    return neighbor[part], center[part]


class _StreamedMessages(torch.autograd.Function):
    """Forward: one pass over the chunks. Backward: each chunk's messages again, then their vector-Jacobian
    products for the atom inputs (scattered back to the message sources), the edge inputs and the parameters,
    accumulated in place."""

    @staticmethod
    def forward(ctx, message, chunk, pairs, n_atom, n_edge, center, neighbor, *inputs):
        ctx.message, ctx.chunk, ctx.pairs, ctx.n_atom, ctx.n_edge = message, chunk, pairs, n_atom, n_edge
        ctx.set_materialize_grads(False)  # an output nothing depends on gets None: its messages are not differentiated
        ctx.save_for_backward(center, neighbor, *inputs)  # saved: checked for in-place changes
        atom_inputs, edge_inputs = inputs[:n_atom], inputs[n_atom:n_atom + n_edge]
        n_atoms = atom_inputs[0].shape[0]
        sums = None
        for part in _chunks(center.shape[0], chunk):
            sources, targets = _ends(center, neighbor, part, pairs)
            gathered = [a.index_select(0, sources) for a in atom_inputs]
            messages = message(gathered, [e[part] for e in edge_inputs])
            if sums is None:
                sums = [m.new_zeros((n_atoms, *m.shape[1:])) for m in messages]
            for total, m in zip(sums, messages):
                total.index_add_(0, targets, m)
        return tuple(sums)

    @staticmethod
    def backward(ctx, *grad_sums):
        if torch.is_grad_enabled():  # create_graph: raise rather than leave this term out of second derivatives
            raise RuntimeError("streamed messages (nnip.nn.edge_stream) have no second derivatives: evaluate "
                               "the model under nnip.nn.recompute.keep_activations() (Potential.forward does so for "
                               "create_graph=True) or set the term's stream_above_bytes = None")
        center, neighbor, *inputs = ctx.saved_tensors
        n_atom, n_edge = ctx.n_atom, ctx.n_edge
        needs = ctx.needs_input_grad[7:]
        wanted = [k for k, need in enumerate(needs) if need]
        if not wanted or all(g is None for g in grad_sums):
            return (None,) * (7 + len(inputs))
        grads: list[torch.Tensor | None] = [torch.zeros_like(x) if need else None for x, need in zip(inputs, needs)]
        # gathered once per chunk below: a strided gradient (e.g. of a transposed sum) would be gathered element
        # by element, about 2x slower than copying it once
        grad_sums = tuple(None if g is None else g.contiguous() for g in grad_sums)
        atom_inputs, edge_inputs = inputs[:n_atom], inputs[n_atom:n_atom + n_edge]
        parameters = inputs[n_atom + n_edge:]
        for part in _chunks(center.shape[0], ctx.chunk):
            sources, targets = _ends(center, neighbor, part, ctx.pairs)
            gathered = [a.index_select(0, sources).requires_grad_(needs[k]) for k, a in enumerate(atom_inputs)]
            edge_parts = [e[part].detach().requires_grad_(needs[n_atom + k]) for k, e in enumerate(edge_inputs)]
            with torch.enable_grad():
                messages = ctx.message(gathered, edge_parts)
            outputs = [(m, g.index_select(0, targets)) for m, g in zip(messages, grad_sums)
                       if g is not None and m.requires_grad]
            if not outputs:
                continue
            differentiated = [*gathered, *edge_parts, *parameters]
            found = torch.autograd.grad([m for m, _ in outputs], [differentiated[k] for k in wanted],
                                        [g for _, g in outputs], allow_unused=True)
            for k, grad in zip(wanted, found):
                if grad is None:
                    continue
                if k < n_atom:
                    grads[k].index_add_(0, sources, grad)
                elif k < n_atom + n_edge:
                    grads[k][part] = grad
                else:
                    grads[k] += grad
        return (None,) * 7 + tuple(grads)
