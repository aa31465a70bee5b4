"""Batching: many AtomicGraphs -> one. Index offsetting lives only here."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nnip.data.graph import AtomicGraph

__all__ = ["collate"]


def collate(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    """Concatenate graphs of any sizes, periodic or not, into one batch.

    Edge indices are offset by the atoms before each graph and structure indices by the
    structures before it. All graphs must share one neighbour request (the batch's).
    """
    if len(graphs) == 0:
        raise ValueError("collate needs at least one graph")
    if len(graphs) == 1:
        return graphs[0]
    if len({g.neighbor_request for g in graphs}) > 1:
        raise ValueError("cannot collate graphs built for different neighbour requests: "
                         f"{sorted({str(g.neighbor_request) for g in graphs})}")
    atom_counts = torch.tensor([g.positions.shape[0] for g in graphs])
    structure_counts = torch.tensor([g.n_structures for g in graphs])
    atom_offsets = torch.cumsum(atom_counts, 0) - atom_counts
    structure_offsets = torch.cumsum(structure_counts, 0) - structure_counts
    return AtomicGraph(
        positions=torch.cat([g.positions for g in graphs]),
        atomic_numbers=torch.cat([g.atomic_numbers for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        edge_index=torch.cat([g.edge_index + int(o) for g, o in zip(graphs, atom_offsets)], dim=1),
        cell_shifts=torch.cat([g.cell_shifts for g in graphs]),
        structure_index=torch.cat([g.structure_index + int(o) for g, o in zip(graphs, structure_offsets)]),
        n_atoms=torch.cat([g.n_atoms for g in graphs]),
        total_charge=torch.cat([g.total_charge for g in graphs]),
        neighbor_request=graphs[0].neighbor_request,
    )
