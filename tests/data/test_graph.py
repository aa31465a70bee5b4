"""AtomicGraph construction and collate of mixed sizes and mixed periodic/non-periodic batches."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from nnip.data import AtomicGraph, collate


def test_from_atoms_fields_and_units():
    atoms = molecule("H2O")
    graph = AtomicGraph.from_atoms(atoms, cutoff=2.0)
    assert graph.positions.dtype == torch.float64
    assert graph.atomic_numbers.tolist() == [8, 1, 1]
    assert graph.cell.shape == (1, 3, 3) and torch.all(graph.cell == 0)
    assert graph.pbc.tolist() == [[False, False, False]]
    assert graph.edge_index.shape == (2, 6)  # O-H, O-H, H-H within 2 Å, both directions
    assert graph.n_atoms.tolist() == [3] and graph.structure_index.tolist() == [0, 0, 0]


def test_collate_offsets_edges_and_structures():
    frames = [molecule("H2O"), bulk("Si", "diamond", a=5.43), molecule("CH4")]
    graphs = [AtomicGraph.from_atoms(a, cutoff=3.0) for a in frames]
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
    graph = AtomicGraph.from_atoms(molecule("H2O"), cutoff=2.0)
    with pytest.raises(ValueError, match="AtomicGraph.atomic_numbers has shape"):
        AtomicGraph(**{**graph.__dict__, "positions": torch.zeros(4, 3)})


def test_total_charge_is_read_from_info():
    atoms = Atoms("Na", positions=[[0, 0, 0]])
    atoms.info["charge"] = 1
    assert AtomicGraph.from_atoms(atoms, 3.0).total_charge.tolist() == [1.0]


def test_potential_refuses_edges_shorter_than_its_cutoff():
    from nnip.potentials import LennardJones, LennardJonesConfig, Potential

    potential = Potential([LennardJones(LennardJonesConfig(cutoff=6.0), ["Ar"])], ["Ar"])
    graph = AtomicGraph.from_atoms(Atoms("Ar2", positions=np.eye(2, 3) * 3.0), cutoff=4.0)
    with pytest.raises(ValueError, match="cutoff"):
        potential(graph)


def test_half_list_graph_built_without_edges_counts_each_pair_once():
    from nnip.potentials import LennardJones, LennardJonesConfig, Potential

    atoms = bulk("Ar", "fcc", a=5.26)
    potential = Potential([LennardJones(LennardJonesConfig(cutoff=8.0), ["Ar"])], ["Ar"])
    args = (atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc, 8.0)
    full = potential(AtomicGraph.from_arrays(*args))["energy"]
    half = potential(AtomicGraph.from_arrays(*args, half_list=True))["energy"]
    torch.testing.assert_close(half, full, rtol=1e-13, atol=0)
