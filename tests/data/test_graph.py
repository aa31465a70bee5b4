"""AtomicGraph construction and collate of mixed sizes and mixed periodic/non-periodic batches."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from nnip.data import AtomicGraph, collate
from nnip.data.neighbors import NeighborRequest


def test_from_atoms_fields_and_units():
    atoms = molecule("H2O")
    graph = AtomicGraph.from_atoms(atoms, 2.0)
    assert graph.positions.dtype == torch.float64
    assert graph.atomic_numbers.tolist() == [8, 1, 1]
    assert graph.cell.shape == (1, 3, 3) and torch.all(graph.cell == 0)
    assert graph.pbc.tolist() == [[False, False, False]]
    assert graph.edge_index.shape == (2, 6)  # O-H, O-H, H-H within 2 Å, both directions
    assert graph.n_atoms.tolist() == [3] and graph.structure_index.tolist() == [0, 0, 0]


def test_collate_offsets_edges_and_structures():
    frames = [molecule("H2O"), bulk("Si", "diamond", a=5.43), molecule("CH4")]
    graphs = [AtomicGraph.from_atoms(a, 3.0) for a in frames]
    batch = collate(graphs)
    assert batch.n_structures == 3
    assert batch.n_atoms.tolist() == [3, 2, 5]
    assert batch.structure_index.tolist() == [0] * 3 + [1] * 2 + [2] * 5
    assert batch.pbc.tolist() == [[False] * 3, [True] * 3, [False] * 3]
    assert torch.equal(batch.cell[1], graphs[1].cell[0])
    # every edge stays inside its structure
    centre, neighbour = batch.edge_index
    assert torch.equal(batch.structure_index[centre], batch.structure_index[neighbour])
    assert batch.edge_index.shape[1] == sum(g.edge_index.shape[1] for g in graphs)
    offset_edges = graphs[2].edge_index + 5
    assert torch.equal(batch.edge_index[:, -offset_edges.shape[1]:], offset_edges)


def test_graph_rejects_inconsistent_shapes():
    graph = AtomicGraph.from_atoms(molecule("H2O"), 2.0)
    with pytest.raises(ValueError, match="AtomicGraph.atomic_numbers has shape"):
        AtomicGraph(**{**graph.__dict__, "positions": torch.zeros(4, 3)})


def test_total_charge_is_read_from_info():
    atoms = Atoms("Na", positions=[[0, 0, 0]])
    atoms.info["charge"] = 1
    assert AtomicGraph.from_atoms(atoms, 3.0).total_charge.tolist() == [1.0]


def test_potential_refuses_edges_shorter_than_its_cutoff():
    from nnip.potentials import LennardJones, LennardJonesConfig, Potential

    potential = Potential([LennardJones(LennardJonesConfig(cutoff=6.0), ["Ar"])], ["Ar"])
    graph = AtomicGraph.from_atoms(Atoms("Ar2", positions=np.eye(2, 3) * 3.0), 4.0)
    with pytest.raises(ValueError, match="cutoff"):
        potential(graph)


def test_half_list_graph_built_without_edges_counts_each_pair_once():
    from nnip.potentials import LennardJones, LennardJonesConfig, Potential

    atoms = bulk("Ar", "fcc", a=5.26)
    potential = Potential([LennardJones(LennardJonesConfig(cutoff=8.0), ["Ar"])], ["Ar"])
    args = (atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc, 8.0)
    full = potential(AtomicGraph.from_arrays(*args))["energy"]
    half_graph = AtomicGraph.from_arrays(*args[:4], NeighborRequest(8.0, full=False))
    assert half_graph.neighbor_request.full is False
    half = potential(half_graph)["energy"]
    torch.testing.assert_close(half, full, rtol=1e-13, atol=0)


def test_collate_refuses_graphs_built_for_different_neighbour_requests():
    """A batch has one neighbour request (replaces the old rule that half and full lists do not mix, and the
    batch cutoff being the smallest of its graphs'): graphs of another cutoff, list kind or skin are refused."""
    atoms = molecule("H2O")
    base = NeighborRequest(3.0)
    assert collate([AtomicGraph.from_atoms(atoms, base), AtomicGraph.from_atoms(atoms, 3.0)]).neighbor_request == base
    for other in (NeighborRequest(3.5), NeighborRequest(3.0, full=False), NeighborRequest(3.0, skin=0.5)):
        with pytest.raises(ValueError, match="different neighbour requests"):
            collate([AtomicGraph.from_atoms(atoms, base), AtomicGraph.from_atoms(atoms, other)])
