"""Messages streamed over chunks of edges (nnip.nn.edge_stream): the same energies, forces,
stress and parameter gradients as the unstreamed messages of SchNet, PaiNN and the equivariant
model, gradients that match finite differences, and no (E, F) tensor kept for the backward pass."""

import copy

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from ase import Atoms
from ase.build import bulk

from nnip.data.graph import AtomicGraph
from nnip.nn import edge_stream
from nnip.nn.edge_stream import stream_over_edges
from nnip.nn.mlp import mlp
from nnip.nn.radial import BesselBasis
from nnip.potentials import build_potential

CONFIG = {"features": 16, "interactions": 2, "basis": 8}
LAYERS = 2  # message-passing layers of every model below: one streamed pass each
CONFIGS = {"schnet": CONFIG, "painn": CONFIG,
           "equivariant": {"channels": 8, "layers": LAYERS, "basis": 8, "l_max": 2, "hidden_l": 1, "correlation": 2,
                           "avg_neighbors": 10.0}}
MODELS = list(CONFIGS)
#: a substring of the names of each model's filter-network parameters (used inside the streamed messages)
FILTERS = {"schnet": ".filter.", "painn": ".filters.", "equivariant": ".radial."}


def pair(name: str):
    """The same float64 model of Cu and Ni twice: unstreamed, and streaming at any size."""
    torch.manual_seed(0)
    plain = build_potential({"elements": [28, 29], "terms": [{"name": name, "config": CONFIGS[name]}]}).double()
    plain.terms[0].stream_above_bytes = None
    streamed = copy.deepcopy(plain)
    streamed.terms[0].stream_above_bytes = 0
    return plain, streamed


def chunk_bytes(name: str, rows: int, element_size: int = 8) -> int:
    """CHUNK_BYTES for chunks of about ``rows`` edges (SchNet, PaiNN) or pairs (the equivariant model, whose
    widest per-pair row is both directions of its widest per-edge tensor)."""
    if name == "equivariant":
        _, model = pair(name)
        return rows * 2 * max(i.edge_width for i in model.terms[0].interactions) * element_size
    return rows * CONFIG["features"] * element_size


def alloy_graph(cutoff: float) -> AtomicGraph:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.symbols[::3] = "Ni"
    atoms.rattle(0.1, seed=2)
    return AtomicGraph.from_atoms(atoms, cutoff, dtype=torch.float64)


@pytest.fixture(autouse=True)
def page_faulting_allocator(monkeypatch):
    """The tests stream as under glibc malloc, whatever allocator runs them (see should_stream)."""
    monkeypatch.setattr(edge_stream, "returns_freed_memory", lambda: True)


@pytest.fixture
def stream_calls(monkeypatch):
    """A list that gets one entry per streamed message pass."""
    calls = []
    apply = edge_stream._StreamedMessages.apply
    monkeypatch.setattr(edge_stream._StreamedMessages, "apply", lambda *args: calls.append(1) or apply(*args))
    return calls


def saved_tensors(potential, graph) -> list[torch.Tensor]:
    """The tensors autograd keeps for the backward pass of one energy evaluation."""
    kept = []

    def pack(tensor):
        kept.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        potential(graph, compute_forces=False, compute_stress=False)["energy"]
    return kept


@pytest.mark.parametrize("chunk_edges", [1, 37, 10**6])  # one edge, uneven chunks, one chunk
@pytest.mark.parametrize("name", MODELS)
def test_streamed_gives_the_same_energy_forces_and_stress(name, chunk_edges, monkeypatch, stream_calls):
    monkeypatch.setattr(edge_stream, "CHUNK_BYTES", chunk_bytes(name, chunk_edges))
    plain, streamed = pair(name)
    graph = alloy_graph(plain.cutoff)
    want = plain(graph, compute_stress=True)
    assert not stream_calls
    got = streamed(graph, compute_stress=True)
    assert len(stream_calls) == LAYERS
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
    assert want["forces"].abs().max() > 1e-3 and want["stress"].abs().max() > 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_streamed_gives_the_same_parameter_gradients(name, monkeypatch, stream_calls):
    """An energy's gradient by every parameter (backward without create_graph, as for a fit to energies)."""
    monkeypatch.setattr(edge_stream, "CHUNK_BYTES", chunk_bytes(name, 50))
    grads = []
    for potential in pair(name):
        energy = potential(alloy_graph(potential.cutoff), compute_forces=False)["energy"].sum()
        grads.append(torch.autograd.grad(energy, list(potential.parameters())))
    assert len(stream_calls) == LAYERS
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-13)
    filter_grads = [g for (parameter, _), g in zip(pair(name)[0].named_parameters(), grads[0]) if FILTERS[name] in parameter]
    assert filter_grads and all(g.abs().max() > 0 for g in filter_grads)


def test_streamed_equivariant_model_passes_gradients_to_trainable_radial_frequencies(monkeypatch, stream_calls):
    """A trainable Bessel basis (as NequIP has) is used inside the streamed messages: its frequencies must get
    the unstreamed gradient, not none."""
    monkeypatch.setattr(edge_stream, "CHUNK_BYTES", chunk_bytes("equivariant", 7))
    grads = []
    for potential in pair("equivariant"):
        term = potential.terms[0]
        term.basis = BesselBasis(CONFIGS["equivariant"]["basis"], term.cutoff, trainable=True).double()
        energy = potential(alloy_graph(potential.cutoff), compute_forces=False)["energy"].sum()
        grads.append(torch.autograd.grad(energy, term.basis.frequencies))
    assert len(stream_calls) == LAYERS
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-11, atol=1e-13)
    assert grads[0][0].abs().max() > 0


def test_equivariant_edge_width_is_its_widest_per_edge_tensor():
    """The width that sets the model's streaming and recompute limits, against every tensor an unstreamed
    energy and force call makes, counted independently (a dispatch mode sees each operation's output)."""
    plain, _ = pair("equivariant")
    graph = alloy_graph(plain.cutoff)
    widest = []

    class Widest(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            widest.extend(t.numel() for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor))
            return out

    with Widest():
        plain(graph, compute_forces=True)
    directed = graph.edge_index.shape[1]
    width = max(interaction.edge_width for interaction in plain.terms[0].interactions)
    assert max(widest) == directed * width


def test_streamed_messages_and_their_gradients_match_the_direct_sums_and_finite_differences():
    """Two atom inputs, two edge inputs, two outputs of different shapes (as PaiNN's scalar and vector messages)."""
    torch.manual_seed(1)
    n_atoms, n_edges, features = 5, 23, 3
    network = mlp([1, 4, features], "ssp").double()
    s = torch.randn(n_atoms, features, dtype=torch.float64, requires_grad=True)
    v = torch.randn(n_atoms, 3, features, dtype=torch.float64, requires_grad=True)
    lengths = (1.0 + 3.0 * torch.rand(n_edges, dtype=torch.float64)).requires_grad_()
    unit = torch.nn.functional.normalize(torch.randn(n_edges, 3, dtype=torch.float64), dim=1).requires_grad_()
    center, neighbor = torch.randint(n_atoms, (2, n_edges))
    parameters = tuple(network.parameters())

    def message(gathered, edge_parts):
        s_j, v_j = gathered
        r, u = edge_parts
        w = network(r[:, None])
        return w * s_j, v_j * w[:, None, :] + (w * s_j)[:, None, :] * u[:, :, None]

    def streamed(s, v, lengths, unit, *parameters):
        return stream_over_edges(message, [s, v], [lengths, unit], center, neighbor, parameters,
                                 bytes_per_edge=3 * features * 8, chunk_bytes=4 * 3 * features * 8)  # 4 edges each

    inputs = (s, v, lengths, unit, *parameters)
    assert torch.autograd.gradcheck(streamed, inputs)
    per_edge = message([s[neighbor], v[neighbor]], [lengths, unit])
    for got, edge_values in zip(streamed(*inputs), per_edge):
        want = torch.zeros((n_atoms, *edge_values.shape[1:]), dtype=torch.float64).index_add_(0, center, edge_values)
        torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)
    # one output unused downstream: its gradient is None and the other one's still flows
    loss = streamed(*inputs)[1].square().sum()
    direct = torch.zeros(n_atoms, 3, features, dtype=torch.float64).index_add_(0, center, per_edge[1]).square().sum()
    for got, want in zip(torch.autograd.grad(loss, inputs), torch.autograd.grad(direct, inputs)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", MODELS)
def test_streamed_keeps_no_edge_by_feature_tensor(name):
    plain, streamed = pair(name)
    graph = alloy_graph(plain.cutoff)
    n_edges = graph.edge_index.shape[1]
    edge_by_feature = n_edges * CONFIGS[name].get("features", CONFIGS[name].get("channels"))
    plain_kept, streamed_kept = saved_tensors(plain, graph), saved_tensors(streamed, graph)
    assert max(t.numel() for t in plain_kept) >= edge_by_feature  # the check can see one
    assert max(t.numel() for t in streamed_kept) < edge_by_feature
    assert sum(t.numel() for t in streamed_kept) < sum(t.numel() for t in plain_kept) / 5


@pytest.mark.parametrize("name", MODELS)
def test_frozen_float32_streamed_gives_the_same_forces_and_stress(name, monkeypatch, stream_calls):
    """As nnip.Calculator runs a model: parameters frozen (the first block then needs no gradient by h), float32."""
    monkeypatch.setattr(edge_stream, "CHUNK_BYTES", chunk_bytes(name, 40, element_size=4))
    plain, streamed = (p.float().requires_grad_(False) for p in pair(name))
    graph = alloy_graph(plain.cutoff).to(dtype=torch.float32)
    want, got = plain(graph, compute_stress=True), streamed(graph, compute_stress=True)
    assert len(stream_calls) == LAYERS
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6)
    assert want["forces"].abs().max() > 1e-3


@pytest.mark.parametrize("name", MODELS)
def test_create_graph_does_not_stream_and_second_derivatives_through_it_raise(name, stream_calls):
    """Potential.forward with create_graph (training on forces, Hessians) runs unstreamed; a second derivative
    taken by hand through a streamed call raises instead of leaving the term out."""
    _, streamed = pair(name)
    graph = alloy_graph(streamed.cutoff)
    out = streamed(graph, compute_forces=True, create_graph=True)
    assert not stream_calls
    loss = out["forces"].square().sum()
    filter_parameters = [p for parameter, p in streamed.named_parameters() if FILTERS[name] in parameter]
    assert all(g.abs().max() > 0 for g in torch.autograd.grad(loss, filter_parameters))
    positions = graph.positions.detach().requires_grad_()
    energy = streamed(graph.with_positions(positions), compute_forces=False)["energy"].sum()
    assert len(stream_calls) == LAYERS
    with pytest.raises(RuntimeError, match="no second derivatives"):
        torch.autograd.grad(energy, positions, create_graph=True)


@pytest.mark.parametrize("name", MODELS)
def test_streamed_isolated_atoms_have_their_reference_energies(name, stream_calls):
    """No edges at all (zero chunks): the energy is E0 of the two elements, with zero forces."""
    _, streamed = pair(name)
    streamed.terms[0].stream_above_bytes = -1  # stream even with zero edges
    streamed.set_reference(e0={"Cu": -1.5, "Ni": -2.25}, scale=0.7, shift=0.0)
    atoms = Atoms("CuNi", positions=[[0, 0, 0], [20.0, 0, 0]])
    out = streamed(AtomicGraph.from_atoms(atoms, streamed.cutoff, dtype=torch.float64))
    assert len(stream_calls) == LAYERS
    assert out["energy"].item() == pytest.approx(-3.75, abs=1e-12)
    assert out["forces"].abs().max() == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_models_stream_exactly_above_the_size_of_their_widest_per_edge_tensor(name, stream_calls):
    """SchNet's (E, F), PaiNN's (E, 3F) and the equivariant model's (E, edge_width) tensor against
    stream_above_bytes (float64 here; E directed edges)."""
    _, model = pair(name)
    graph = alloy_graph(model.cutoff)
    if name == "equivariant":
        width = max(interaction.edge_width for interaction in model.terms[0].interactions)
    else:
        width = CONFIG["features"] * (3 if name == "painn" else 1)
    widest = graph.edge_index.shape[1] * width * 8
    for limit, streams in ((widest, False), (widest - 1, True)):
        model.terms[0].stream_above_bytes = limit
        stream_calls.clear()
        model(graph, compute_forces=True)
        assert len(stream_calls) == (LAYERS if streams else 0), limit


def test_streamed_painn_with_shared_filters_gives_the_same_forces(monkeypatch):
    monkeypatch.setattr(edge_stream, "CHUNK_BYTES", 40 * 3 * CONFIG["features"] * 8)
    torch.manual_seed(0)
    spec = {"elements": [28, 29], "terms": [{"name": "painn", "config": {**CONFIG, "shared_filters": True}}]}
    plain = build_potential(spec).double()
    plain.terms[0].stream_above_bytes = None
    streamed = copy.deepcopy(plain)
    streamed.terms[0].stream_above_bytes = 0
    graph = alloy_graph(plain.cutoff)
    want, got = plain(graph, compute_stress=True), streamed(graph, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)


def test_under_an_allocator_that_keeps_freed_memory_models_stream_only_above_the_memory_limit(monkeypatch, stream_calls):
    """jemalloc or glibc after retain_freed_memory: unstreamed calls were faster, so streaming waits for
    the recompute limit (where it keeps far less than recomputing); None for it: never."""
    monkeypatch.setattr(edge_stream, "returns_freed_memory", lambda: False)
    _, model = pair("schnet")
    graph = alloy_graph(model.cutoff)
    widest = graph.edge_index.shape[1] * CONFIG["features"] * 8
    term = model.terms[0]
    for stream_limit, memory_limit, streams in ((0, widest, False), (0, widest - 1, True), (widest, widest - 1, False),
                                                (0, None, False), (None, 0, False)):
        term.stream_above_bytes, term.recompute_above_bytes = stream_limit, memory_limit
        stream_calls.clear()
        model(graph, compute_forces=True)
        assert len(stream_calls) == (LAYERS if streams else 0), (stream_limit, memory_limit)
