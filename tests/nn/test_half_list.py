"""Messages along both directions of the pairs of a half list (nnip.nn.half_list), directly and
streamed over chunks (nnip.nn.edge_stream with pairs=True): equal to the sum over the full list of
directed edges, with a filter that is the same both ways, and gradients that match finite differences."""

import torch
from ase.build import bulk

from nnip.data.graph import AtomicGraph
from nnip.nn.edge_stream import stream_over_edges
from nnip.nn.half_list import both_directions, pair_convolution, pair_messages
from nnip.nn.mlp import mlp
from nnip.potentials.edges import half_edge_mask


def small_cell_edges():
    """A 2-atom cell smaller than the cutoff: pairs of an atom with its own images (i == j) included."""
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    graph = AtomicGraph.from_atoms(atoms, 4.0, dtype=torch.float64)
    center, neighbor = graph.edge_index
    vectors = graph.positions[neighbor] - graph.positions[center] + graph.cell_shifts.double() @ graph.cell[0]
    return center, neighbor, graph.cell_shifts, vectors.norm(dim=1), len(atoms)


def test_pair_convolution_equals_the_full_list_sum_including_self_images():
    torch.manual_seed(0)
    center, neighbor, shifts, lengths, n_atoms = small_cell_edges()
    assert bool((center == neighbor).any())  # self-image pairs are part of the test
    filter_of = mlp([1, 6, 4], "ssp").double()
    h = torch.randn(n_atoms, 4, dtype=torch.float64)
    want = torch.zeros(n_atoms, 4, dtype=torch.float64).index_add_(0, center, filter_of(lengths[:, None]) * h[neighbor])
    keep = half_edge_mask(center, neighbor, shifts)
    assert 2 * int(keep.sum()) == center.shape[0]
    sources, targets = both_directions(center[keep], neighbor[keep])
    got = pair_convolution(h, filter_of(lengths[keep][:, None]), sources, targets)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)


def test_streamed_pairs_match_the_direct_sums_and_finite_differences():
    torch.manual_seed(1)
    n_atoms, n_pairs, features = 6, 19, 3
    network = mlp([1, 4, features], "ssp").double()
    h = torch.randn(n_atoms, features, dtype=torch.float64, requires_grad=True)
    lengths = (1.0 + 3.0 * torch.rand(n_pairs, dtype=torch.float64)).requires_grad_()
    center, neighbor = torch.randint(n_atoms, (2, n_pairs))
    parameters = tuple(network.parameters())

    def message(gathered, edge_parts):
        return (pair_messages(gathered[0], network(edge_parts[0][:, None])),)

    def streamed(h, lengths, *parameters):
        return stream_over_edges(message, [h], [lengths], center, neighbor, parameters, bytes_per_edge=2 * features * 8,
                                 chunk_bytes=4 * 2 * features * 8, pairs=True)[0]  # 4 pairs a chunk

    def direct(h, lengths, *parameters):
        sources, targets = both_directions(center, neighbor)
        return pair_convolution(h, network(lengths[:, None]), sources, targets)

    inputs = (h, lengths, *parameters)
    assert torch.autograd.gradcheck(streamed, inputs)
    torch.testing.assert_close(streamed(*inputs), direct(*inputs), rtol=1e-14, atol=1e-14)
    weights = torch.randn(n_atoms, features, dtype=torch.float64)
    got = torch.autograd.grad((streamed(*inputs) * weights).sum(), inputs)
    want = torch.autograd.grad((direct(*inputs) * weights).sum(), inputs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-13)
