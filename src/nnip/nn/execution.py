"""One way to run the per-edge work of message passing: kept, recomputed or streamed in chunks.

A message-passing layer states its message once, for any set of edges:

    out_k[i] = sum_{j in N(i)} m_k(a_j, g_ij)        k = 1..K outputs, (N, ...) each

with ``a_j`` atom inputs gathered at the neighbours and ``g_ij`` the edge geometry (radial basis,
envelope, harmonics ...) made from the edge vectors and lengths by the model's ``geometry``
function. :class:`EdgeWork` runs it under one of three strategies:

- ``keep``: the geometry of all edges once per call (shared by the layers), every message at
  once, all activations kept for the backward pass. Fastest for small and mid-sized systems,
  and the only strategy with second derivatives (training on forces, attacks, Hessians).
- ``recompute``: as ``keep``, but each layer's gather, messages and sum run again in the
  backward pass instead of keeping their activations (activation checkpointing).
- ``stream``: the geometry and the messages a chunk of edges at a time, in the forward pass
  and again in the backward pass, into one accumulator per output: no per-edge tensor of all
  E edges beyond the inputs, and chunk temporaries small enough (:data:`CHUNK_BYTES`) for any
  allocator to reuse. Under glibc malloc, which returns every large block to the kernel, an
  unstreamed call faults its per-edge tensors' pages in anew at every step; streaming avoids
  that. No second derivatives: a backward pass with ``create_graph`` through it raises.

The strategy comes from :class:`Memory`, a run-time setting of the potential that a user sees and
sets (``nnip.Calculator(..., memory=...)``, the ``memory`` key of training and MD configs). With
half lists (``pairs``) every pair's geometry is made once and its message goes both ways: the
messages j -> i of the P pairs first, then the P messages i -> j, so message k and message P + k
share pair k's geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch.fx.experimental.proxy_tensor import get_proxy_mode
from torch.fx.experimental.symbolic_shapes import guard_or_false
from torch.utils.checkpoint import checkpoint

from nnip.errors import ConfigError
from nnip.nn.scatter import scatter_sum

__all__ = ["CHUNK_BYTES", "MODES", "Memory", "EdgeWork", "both_directions", "per_pair", "row_chunks", "exporting"]

#: bytes of the widest per-edge tensor of one streamed chunk, and of the widest per-row tensor of a chunk
#: of rows (:func:`row_chunks`): 4 MiB, below glibc's largest mmap threshold (32 MiB), so that chunk
#: temporaries come from the heap and are reused chunk after chunk.
CHUNK_BYTES = 4 * 2**20

MODES = ("auto", "keep", "recompute", "stream")

Geometry = Callable[[torch.Tensor, torch.Tensor], Sequence[torch.Tensor]]
Message = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], Sequence[torch.Tensor]]


@dataclass(frozen=True)
class Memory:
    """How message-passing layers run their per-edge work (a run-time setting of a potential, not saved).

    Args:
        mode: ``"auto"`` (default): on the CPU stream when the model's widest per-edge tensor exceeds
            ``stream_above_mib``, on other devices recompute above ``recompute_above_mib``, keep below;
            ``"keep"``, ``"recompute"`` or ``"stream"``: that strategy at every size (see the module
            docstring). Calls that need second derivatives always keep.
        stream_above_mib: MiB; default 32, glibc's largest mmap threshold, above which streaming was
            measured faster on the CPU (a preloaded jemalloc keeps freed pages: raise it, or use "keep",
            where memory allows).
        recompute_above_mib: MiB; default 1024.
        chunk_mib: MiB of the widest per-edge tensor of one streamed chunk; default 4.
    """

    mode: str = "auto"
    stream_above_mib: float = 32.0
    recompute_above_mib: float = 1024.0
    chunk_mib: float = CHUNK_BYTES / 2**20

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"memory mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("stream_above_mib", "recompute_above_mib", "chunk_mib"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value == value and 0 <= value < float("inf")):
                raise ConfigError(f"memory.{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def of(cls, value: "Memory | str | dict | None") -> "Memory":
        """A Memory from itself, a mode name, a dict of its fields, or None (the default)."""
        if value is None:
            return cls()
        if isinstance(value, Memory):
            return value
        if isinstance(value, str):
            return cls(mode=value)
        return cls(**value)

    def strategy(self, edge_bytes: int, device: torch.device) -> str:
        """``keep``, ``recompute`` or ``stream`` for a call whose widest per-edge tensor has ``edge_bytes``."""
        if self.mode != "auto":
            return self.mode
        if device.type == "cpu":
            return "stream" if edge_bytes > self.stream_above_mib * 2**20 else "keep"
        return "recompute" if edge_bytes > self.recompute_above_mib * 2**20 else "keep"


#: the setting of calls whose derivatives are differentiated again
KEEP = Memory(mode="keep")


def exporting() -> bool:
    """True while ``torch.export`` or ``make_fx`` (LAMMPS deployment) traces a model: data-dependent
    branches and checks are skipped then, and operations whose sizes depend on data take forms that
    compile."""
    check = getattr(torch.compiler, "is_exporting", None)  # absent from older torch releases
    if check is not None and check():
        return True
    if torch.compiler.is_compiling():  # torch.compile (compile_terms) keeps the eager forms
        return False
    return get_proxy_mode() is not None


def both_directions(center: torch.Tensor, neighbor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources and targets (2P,) of the messages of P pairs (i = center, j = neighbor): j -> i, then i -> j."""
    return torch.cat([neighbor, center]), torch.cat([center, neighbor])


def per_pair(at_sources: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Messages W_p * h_source: the weights of P edges, or of P pairs broadcast over both directions (not copied).

    Shapes: (P, F) or (2P, F) messages' source features, (P, F) weights -> the shape of ``at_sources``.
    """
    pairs, features = weights.shape
    if guard_or_false(pairs == 0):  # no edges (in a traced program, where sizes are symbols, assumed not)
        return at_sources
    return (at_sources.view(-1, pairs, features) * weights).view(at_sources.shape)


def row_chunks(rows: int, row_bytes: int, chunk_bytes: int | None = None) -> int:
    """Rows per chunk so that one chunk's widest tensor holds at most ``chunk_bytes`` (None: :data:`CHUNK_BYTES`;
    at least one row)."""
    return max(1, (CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, row_bytes)) if rows else 1


class EdgeWork:
    """The per-edge work of one model call: its edges, their geometry and the strategy that runs its layers.

    Args:
        memory: the potential's setting (:class:`Memory`).
        center, neighbor: (E,) int64 edge ends; a half list when ``pairs``.
        vectors, lengths: (E, 3) and (E,) Å.
        geometry: (vectors, lengths) of some edges -> their per-edge geometry tensors (for ``pairs``,
            any of them may hold both directions, 2 rows per pair). Made once per call (keep, recompute)
            or per chunk (stream).
        geometry_parameters: every parameter ``geometry`` uses that may need a gradient.
        bytes_per_edge: bytes of one edge's row of the model's widest per-edge tensor (both directions
            of a pair for ``pairs``); decides the strategy and the chunk size.
        pairs: each pair once, its messages both ways (:func:`both_directions`).
        collect: applied to every sum before it is returned (the edges' ghost rows to their owners,
            ``Edges.collect``); None: none.
    """

    def __init__(self, memory: Memory, center: torch.Tensor, neighbor: torch.Tensor, vectors: torch.Tensor,
                 lengths: torch.Tensor, geometry: Geometry, geometry_parameters: Iterable[torch.Tensor],
                 bytes_per_edge: int, pairs: bool, collect: Callable[[torch.Tensor], torch.Tensor] | None = None):
        n_edges = center.shape[0]
        self.strategy = memory.strategy(n_edges * bytes_per_edge, vectors.device)
        self.center, self.neighbor, self.pairs, self.collect = center, neighbor, pairs, collect
        self.vectors, self.lengths, self.geometry = vectors, lengths, geometry
        self.geometry_parameters = tuple(geometry_parameters)
        self.bytes_per_edge, self.chunk_bytes = bytes_per_edge, int(memory.chunk_mib * 2**20)
        if self.strategy != "stream":  # made once, shared by the layers
            self.edge_geometry = tuple(geometry(vectors, lengths))
            self.sources, self.targets = both_directions(center, neighbor) if pairs else (neighbor, center)

    def sums(self, message: Message, atom_inputs: Sequence[torch.Tensor], parameters: Iterable[torch.Tensor],
             bytes_per_edge: int | None = None) -> tuple[torch.Tensor, ...]:
        """Sums over each atom's incoming messages, (N, ...) per output of ``message``.

        Args:
            message: (gathered, geometry) -> per-edge messages (Ec, ...) each; ``gathered`` are
                ``atom_inputs`` at the message sources, ``geometry`` the edges' geometry tensors.
                Deterministic (it may run twice). Gradients reach only its inputs and ``parameters``.
            atom_inputs: (N, ...) tensors.
            parameters: every parameter ``message`` uses that may need a gradient.
            bytes_per_edge: of this layer's widest per-edge tensor, when it is narrower than the model's (the
                chunks are then longer); None: the model's.
        """
        if self.strategy == "stream":
            chunk = row_chunks(self.center.shape[0], bytes_per_edge or self.bytes_per_edge, self.chunk_bytes)
            sums = _StreamedMessages.apply(self, message, chunk, len(atom_inputs), *atom_inputs, self.vectors,
                                           self.lengths, *self.geometry_parameters, *parameters)
        elif self.strategy == "recompute" and torch.is_grad_enabled():
            sums = checkpoint(self._summed, message, atom_inputs[0].shape[0], *atom_inputs, *self.edge_geometry,
                              use_reentrant=False, preserve_rng_state=False)
        else:
            sums = self._summed(message, atom_inputs[0].shape[0], *atom_inputs, *self.edge_geometry)
        return tuple(sums) if self.collect is None else tuple(self.collect(s) for s in sums)

    def _summed(self, message: Message, n_atoms: int, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """All messages at once: gather, message, sum (``tensors``: atom inputs, then the edge geometry)."""
        n_geometry = len(self.edge_geometry)
        atom_inputs, geometry = tensors[:len(tensors) - n_geometry], tensors[len(tensors) - n_geometry:]
        gathered = [a.index_select(0, self.sources) for a in atom_inputs]
        return tuple(scatter_sum(m, self.targets, n_atoms) for m in message(gathered, geometry))

    def chunks(self, chunk: int) -> list[slice]:
        """Slices of at most ``chunk`` edges; one empty slice when there are no edges (to learn the output shapes)."""
        return [slice(start, start + chunk) for start in range(0, self.center.shape[0], chunk)] or [slice(0, 0)]

    def ends(self, part: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Sources and targets of a chunk's messages: its neighbours and centres, both ways for pairs."""
        if self.pairs:
            return both_directions(self.center[part], self.neighbor[part])
        return self.neighbor[part], self.center[part]


class _StreamedMessages(torch.autograd.Function):
    """Forward: one pass over the chunks. Backward: each chunk's geometry and messages again, then their
    vector-Jacobian products for the atom inputs (scattered back to the message sources), the edge vectors
    and lengths and the parameters, accumulated in place."""

    @staticmethod
    def forward(ctx, work, message, chunk, n_atom, *inputs):
        ctx.work, ctx.message, ctx.chunk, ctx.n_atom = work, message, chunk, n_atom
        ctx.set_materialize_grads(False)  # an output nothing depends on gets None: its messages are not differentiated
        ctx.save_for_backward(*inputs)  # saved: checked for in-place changes
        atom_inputs, (vectors, lengths) = inputs[:n_atom], inputs[n_atom:n_atom + 2]
        sums = None
        for part in work.chunks(chunk):
            sources, targets = work.ends(part)
            gathered = [a.index_select(0, sources) for a in atom_inputs]
            messages = message(gathered, work.geometry(vectors[part], lengths[part]))
            if sums is None:
                sums = [m.new_zeros((atom_inputs[0].shape[0], *m.shape[1:])) for m in messages]
            for total, m in zip(sums, messages):
                total.index_add_(0, targets, m)
        return tuple(sums)

    @staticmethod
    def backward(ctx, *grad_sums):
        if torch.is_grad_enabled():  # create_graph: raise rather than leave this term out of second derivatives
            raise RuntimeError("streamed messages (nnip.nn.execution) have no second derivatives: run the potential "
                               "with memory='keep' (Potential.forward does so for create_graph=True)")
        inputs, work, n_atom = ctx.saved_tensors, ctx.work, ctx.n_atom
        needs = ctx.needs_input_grad[4:]
        wanted = [k for k, need in enumerate(needs) if need]
        if not wanted or all(g is None for g in grad_sums):
            return (None,) * (4 + len(inputs))
        grads: list[torch.Tensor | None] = [None] * len(inputs)  # made at the first gradient: an unused input gets none
        # gathered once per chunk below: a strided gradient would be gathered element by element (2x slower)
        grad_sums = tuple(None if g is None else g.contiguous() for g in grad_sums)
        atom_inputs, (vectors, lengths), parameters = inputs[:n_atom], inputs[n_atom:n_atom + 2], inputs[n_atom + 2:]
        for part in work.chunks(ctx.chunk):
            sources, targets = work.ends(part)
            gathered = [a.index_select(0, sources).requires_grad_(needs[k]) for k, a in enumerate(atom_inputs)]
            edge_parts = [e[part].detach().requires_grad_(needs[n_atom + k]) for k, e in enumerate((vectors, lengths))]
            with torch.enable_grad():
                messages = ctx.message(gathered, work.geometry(*edge_parts))
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
                if grads[k] is None:
                    grads[k] = torch.zeros_like(inputs[k])
                if k < n_atom:
                    grads[k].index_add_(0, sources, grad)
                elif k < n_atom + 2:
                    grads[k][part] = grad
                else:
                    grads[k] += grad
        return (None,) * 4 + tuple(grads)
