"""Edges as the terms see them: neighbour pairs within a cutoff with differentiable vectors.

``build_edges`` turns a graph's neighbour list (possibly built with a Verlet skin) into
the pairs within the potential's cutoff, computing r_ij = r_j - r_i + S @ cell only for
those, so autograd never sees the skin. Terms that take one (pair terms, SchNet, the
equivariant model: ``Term.half_list``) get a half list, each unordered pair once, which halves
their work; :class:`nnip.potentials.contract.base.Potential` decides that, once per call. The edges also
carry the potential's memory setting, from which message-passing terms run their per-edge work
(:meth:`Edges.work`, nnip.nn.execution).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest, half_edge_mask
from nnip.nn.execution import EdgeWork, Geometry, Memory, exporting
from nnip.nn.halo import exchange, exchange_reverse

__all__ = ["Edges", "build_edges", "half_edge_mask", "exporting"]


@dataclass
class Edges:
    """Directed edges i -> j of a batch.

    Shapes: center, neighbor (E,) int64; shifts (E, 3) int; vectors (E, 3) Å; lengths (E,) Å.
    ``is_half``: each unordered pair appears once (i -> j but not j -> i).
    ``memory``: how message-passing terms run their per-edge work on these edges (:meth:`work`).
    ``halo``: the atoms include ghosts whose features come from elsewhere between layers (:meth:`exchange`),
    and whose rows of sums over a half list belong to other ranks (:meth:`collect`).
    """

    center: torch.Tensor
    neighbor: torch.Tensor
    shifts: torch.Tensor
    vectors: torch.Tensor
    lengths: torch.Tensor
    is_half: bool = False
    memory: Memory = field(default_factory=Memory)
    halo: bool = False

    def _select(self, keep: torch.Tensor, is_half: bool) -> "Edges":
        return Edges(self.center[keep], self.neighbor[keep], self.shifts[keep], self.vectors[keep],
                     self.lengths[keep], is_half, self.memory, self.halo)

    def exchange(self, features: torch.Tensor) -> torch.Tensor:
        """Node features (N, ...) with ghost atoms' rows from their owners, between message-passing layers
        (nnip.nn.halo); unchanged unless these edges are one LAMMPS rank's (``halo``)."""
        return exchange(features) if self.halo else features

    def collect(self, sums: torch.Tensor) -> torch.Tensor:
        """Per-atom sums over these edges (N, ...) with ghost atoms' rows added to their owners' and zeroed
        (nnip.nn.halo): a half list of one LAMMPS rank holds a pair with another rank's atom on one rank only.
        Unchanged otherwise (a full list sums onto its centres, which are own atoms)."""
        return exchange_reverse(sums) if self.halo and self.is_half else sums

    def work(self, geometry: Geometry, geometry_parameters: Iterable[torch.Tensor], bytes_per_edge: int) -> EdgeWork:
        """The per-edge work of one model call on these edges (nnip.nn.execution.EdgeWork): ``geometry`` maps
        vectors and lengths to per-edge tensors; ``bytes_per_edge``: of the model's widest per-edge tensor, per
        edge (per pair, both directions, on a half list)."""
        return EdgeWork(self.memory, self.center, self.neighbor, self.vectors, self.lengths, geometry,
                        geometry_parameters, bytes_per_edge, pairs=self.is_half,
                        collect=self.collect if self.halo and self.is_half else None)

    def within(self, cutoff: float) -> "Edges":
        """The edges shorter than ``cutoff`` (no copy when all are)."""
        keep = self.lengths < cutoff
        if not exporting() and bool(keep.all()):
            return self
        return self._select(keep, self.is_half)

    def empty(self) -> "Edges":
        """No edges (and no ghosts), with this set's dtypes and device (e.g. to evaluate atoms without neighbours)."""
        return Edges(self.center[:0], self.neighbor[:0], self.shifts[:0], self.vectors[:0], self.lengths[:0],
                     self.is_half, self.memory)

    def half(self) -> "Edges":
        """Each unordered pair once: the edges kept by :func:`half_edge_mask`."""
        if self.is_half:
            return self
        return self._select(half_edge_mask(self.center, self.neighbor, self.shifts), True)


def _vectors(graph: AtomicGraph, positions: torch.Tensor, cell: torch.Tensor, center: torch.Tensor,
             neighbor: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """r_j - r_i + S @ cell. Shapes: (N, 3), (B, 3, 3), (E,), (E,), (E, 3) -> (E, 3)."""
    vectors = positions.index_select(0, neighbor) - positions.index_select(0, center)
    if exporting() or bool(graph.pbc.any()):  # an exported graph serves both kinds
        offsets = shifts.to(positions.dtype)
        if cell.shape[0] == 1:
            vectors = torch.addmm(vectors, offsets, cell[0])  # fused, and faster than a plain matmul here
        else:
            edge_cell = cell.index_select(0, graph.structure_index.index_select(0, center))
            vectors = vectors + torch.einsum("ea,eab->eb", offsets, edge_cell)
    return vectors


def _keep(mask: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rows of each tensor where ``mask`` holds (the tensors themselves when it holds everywhere)."""
    if bool(mask.all()):
        return tensors
    index = torch.nonzero(mask).squeeze(1)
    return tuple(t.index_select(0, index) for t in tensors)


def build_edges(graph: AtomicGraph, positions: torch.Tensor, cell: torch.Tensor, request: NeighborRequest,
                memory: Memory | None = None) -> Edges:
    """Edges of ``graph`` for ``request``: within its cutoff, a half list unless it asks for a full one.

    The graph's edges must cover the request (``graph.neighbor_request.covers(request)``): a half list
    serves only half-list requests. Pairs beyond the cutoff (a Verlet skin) and, for a half list from a
    full one, the reverse direction of each pair are dropped without gradients before the differentiable
    vectors are formed.
    """
    center, neighbor = graph.edge_index
    shifts = graph.cell_shifts
    built = graph.neighbor_request
    if not request.full and built.full:
        center, neighbor, shifts = _keep(half_edge_mask(center, neighbor, shifts), center, neighbor, shifts)
    if built.list_cutoff > request.cutoff:
        with torch.no_grad():
            lengths = torch.linalg.vector_norm(_vectors(graph, positions, cell, center, neighbor, shifts), dim=1)
        center, neighbor, shifts = _keep(lengths < request.cutoff, center, neighbor, shifts)
    vectors = _vectors(graph, positions, cell, center, neighbor, shifts)
    return Edges(center, neighbor, shifts, vectors, torch.linalg.vector_norm(vectors, dim=1),
                 is_half=not request.full, memory=memory or Memory())
