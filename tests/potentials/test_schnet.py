"""SchNet passes the potential contract, alone and on top of a ZBL prior, and its pair filters give
the sum over directed edges."""

import pytest
import torch

from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.nn import execution
from nnip.nn.execution import Memory
from nnip.nn.radial import cosine_cutoff
from nnip.potentials import ZBL, Potential, ZBLConfig
from nnip.potentials.contract.edges import build_edges
from nnip.potentials.learned.schnet import SchNet, SchNetConfig
from nnip.testing import PotentialContract
from nnip.testing.structures import periodic_cell

ELEMENTS = ["H", "C", "O"]


def small_schnet(cutoff: float = 4.0) -> SchNet:
    return SchNet(SchNetConfig(cutoff=cutoff, features=16, interactions=2, basis=12), ELEMENTS)


class TestSchNet(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_schnet()], ELEMENTS, e0={"H": -0.5, "C": -1.5, "O": -2.0}, scale=0.5)


class TestZBLPlusSchNet(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        zbl = ZBL(ZBLConfig(cutoff=1.2, switch_on=0.8), ELEMENTS)
        return Potential([zbl, small_schnet()], ELEMENTS, scale=0.3)


def directed_edge_reference(term: SchNet, species: torch.Tensor, edges) -> torch.Tensor:
    """SchNet as written: a filter per directed edge i -> j, lone atoms from a pass without edges. (N,)"""

    def readout(species: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor, lengths: torch.Tensor):
        x = term.embedding(species)
        rbf, envelope = term.basis(lengths), cosine_cutoff(lengths, term.cutoff)
        for block in term.interactions:
            messages = block.in2f(x)[neighbor] * block.filter(rbf) * envelope[:, None]
            x = x + block.f2out(torch.zeros_like(x).index_add(0, center, messages))
        return term.readout(x).squeeze(-1)

    none = torch.zeros(0, dtype=torch.int64)
    lone = readout(torch.arange(len(term.elements)), none, none, edges.lengths[:0])
    return readout(species, edges.center, edges.neighbor, edges.lengths) - lone[species]


@pytest.mark.parametrize("memory", ["keep", "stream"])
def test_pair_filters_on_full_or_half_edges_equal_the_sum_over_directed_edges(memory, monkeypatch):
    """Given full edges (as in a sum with a term that needs them) or half edges, in a cell smaller than
    the cutoff (pairs of an atom with its own images), energies and forces match the textbook formula,
    with the messages kept or streamed over chunks of edges (the edges carry the potential's memory setting)."""
    streamed = []
    apply = execution._StreamedMessages.apply
    monkeypatch.setattr(execution._StreamedMessages, "apply", lambda *args: streamed.append(1) or apply(*args))
    torch.manual_seed(3)
    term = small_schnet().double()
    atoms = periodic_cell([1, 6, 8], 1.4, seed=5)
    graph = AtomicGraph.from_atoms(atoms, term.cutoff)
    species = torch.as_tensor([[1, 6, 8].index(z) for z in atoms.numbers])
    results = []
    for half, function in ((False, directed_edge_reference), (False, term), (True, term)):
        positions = graph.positions.clone().requires_grad_(True)
        request = NeighborRequest(term.cutoff, full=not half)
        edges = build_edges(graph, positions, graph.cell, request, Memory(mode=memory))
        assert edges.is_half == half and (half or bool((edges.center == edges.neighbor).any()))
        energy = (function(term, species, edges) if function is directed_edge_reference else function(species, edges)).sum()
        results.append((energy, torch.autograd.grad(energy, positions)[0]))
    assert len(streamed) == (2 * term.config.interactions if memory == "stream" else 0)  # two calls of the term
    (want_e, want_f), *others = results
    assert want_f.abs().max() > 1e-3
    for energy, forces in others:
        torch.testing.assert_close(energy, want_e, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(forces, want_f, rtol=1e-11, atol=1e-12)
