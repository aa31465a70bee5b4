"""How message-passing layers run their per-edge work (nnip.nn.execution): kept, recomputed in the backward
pass, or streamed over chunks of edges, as the potential's ``memory`` setting decides.

Streaming and recomputing give the same energies, forces, stress and parameter gradients as keeping the
activations (SchNet, PaiNN and the equivariant model), keep far fewer activations, and match direct sums and
finite differences; ``Memory("auto")`` streams on the CPU exactly above ``stream_above_mib``; calls that need
second derivatives keep; messages along both directions of the pairs of a half list equal the full-list sums.
"""

import copy
import math

import pytest
import torch
from ase import Atoms
from ase.build import bulk
from torch.utils._python_dispatch import TorchDispatchMode

import nnip
from nnip.data import bundled
from nnip.data.graph import AtomicGraph
from nnip.errors import ConfigError
from nnip.nn import execution
from nnip.nn.execution import EdgeWork, Memory, both_directions, per_pair, row_chunks
from nnip.nn.mlp import mlp
from nnip.nn.radial import BesselBasis
from nnip.nn.scatter import scatter_sum
from nnip.potentials import Ensemble, build_potential
from nnip.potentials.contract.edges import half_edge_mask

CONFIG = {"features": 16, "interactions": 2, "basis": 8}
LAYERS = 2  # message-passing layers of every model below: one streamed pass each
CONFIGS = {"schnet": CONFIG, "painn": CONFIG,
           "equivariant": {"channels": 8, "layers": LAYERS, "basis": 8, "l_max": 2, "hidden_l": 1, "correlation": 2,
                           "avg_neighbors": 10.0}}
MODELS = list(CONFIGS)
#: a substring of the names of each model's filter-network parameters (used inside the streamed messages)
FILTERS = {"schnet": ".filter.", "painn": ".filters.", "equivariant": ".radial."}
STRATEGIES = ["keep", "recompute", "stream"]


# ---------------------------------------------------------------------------------------------------------------
# Streaming (Cu-Ni alloy, float64)


def pair(name: str):
    """The same float64 model of Cu and Ni twice: keeping its activations, and streaming at any size."""
    torch.manual_seed(0)
    plain = build_potential({"elements": [28, 29], "terms": [{"name": name, "config": CONFIGS[name]}]}).double()
    plain.memory = "keep"
    streamed = copy.deepcopy(plain)
    streamed.memory = "stream"
    return plain, streamed


def row_bytes(name: str, element_size: int = 8) -> int:
    """Bytes of one row of a model's widest per-edge tensor: per edge (PaiNN, full lists) or per pair, both
    directions (SchNet and the equivariant model, which the Potential hands half lists)."""
    if name == "equivariant":
        _, model = pair(name)
        return 2 * max(i.edge_width for i in model.terms[0].interactions) * element_size
    if name == "schnet":
        return max(2 * CONFIG["features"], CONFIG["basis"]) * element_size
    return 3 * CONFIG["features"] * element_size


def streaming(name: str, rows: int, element_size: int = 8) -> Memory:
    """Stream at any size in chunks of ``rows`` edges (PaiNN) or pairs (SchNet, the equivariant model)."""
    return Memory(mode="stream", chunk_mib=rows * row_bytes(name, element_size) / 2**20)


def alloy_graph(cutoff: float) -> AtomicGraph:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
    atoms.symbols[::3] = "Ni"
    atoms.rattle(0.1, seed=2)
    return AtomicGraph.from_atoms(atoms, cutoff, dtype=torch.float64)


def rows_of(name: str, graph: AtomicGraph) -> int:
    """Rows a model streams over: directed edges (PaiNN), or pairs (SchNet, equivariant) of a full-list graph."""
    return graph.edge_index.shape[1] // (1 if name == "painn" else 2)


@pytest.fixture
def stream_calls(monkeypatch):
    """A list that gets one entry per streamed message pass."""
    calls = []
    apply = execution._StreamedMessages.apply
    monkeypatch.setattr(execution._StreamedMessages, "apply", lambda *args: calls.append(1) or apply(*args))
    return calls


@pytest.fixture
def chunk_counts(monkeypatch):
    """A list that gets the number of chunks of every pass over the chunks (forward and backward)."""
    counts = []
    chunks = EdgeWork.chunks
    monkeypatch.setattr(EdgeWork, "chunks", lambda self, chunk: counts.append(len(found := chunks(self, chunk))) or found)
    return counts


@pytest.fixture
def message_calls(monkeypatch):
    """A list that gets one entry per run of a layer's message function (EdgeWork.sums' message), whether in a
    forward pass, a recomputation or a streamed chunk."""
    calls = []
    sums = EdgeWork.sums

    def counted_sums(self, message, *args, **kwargs):
        def counted(*inputs):
            calls.append(1)
            return message(*inputs)

        return sums(self, counted, *args, **kwargs)

    monkeypatch.setattr(EdgeWork, "sums", counted_sums)
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


@pytest.mark.parametrize("chunk_rows", [1, 37, 10**6])  # one edge, uneven chunks, one chunk
@pytest.mark.parametrize("name", MODELS)
def test_streamed_gives_the_same_energy_forces_and_stress(name, chunk_rows, stream_calls, chunk_counts):
    plain, streamed = pair(name)
    streamed.memory = streaming(name, chunk_rows)
    graph = alloy_graph(plain.cutoff)
    want = plain(graph, compute_stress=True)
    assert not stream_calls
    got = streamed(graph, compute_stress=True)
    assert len(stream_calls) == LAYERS
    # the chunk size (Memory.chunk_mib) holds the chunk's rows of the model's widest per-edge tensor; a layer
    # whose own widest tensor is narrower (the equivariant model's first) takes longer chunks
    widths = [row_bytes(name)] if name != "equivariant" else \
        [2 * i.edge_width * 8 for i in streamed.terms[0].interactions]
    chunk_bytes = streamed.memory.chunk_mib * 2**20
    expected = {math.ceil(rows_of(name, graph) / max(1, int(chunk_bytes) // w)) for w in widths}
    assert set(chunk_counts) == expected and math.ceil(rows_of(name, graph) / chunk_rows) in expected
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
    assert want["forces"].abs().max() > 1e-3 and want["stress"].abs().max() > 1e-5


@pytest.mark.parametrize("name", MODELS)
def test_streamed_gives_the_same_parameter_gradients(name, stream_calls):
    """An energy's gradient by every parameter (backward without create_graph, as for a fit to energies)."""
    grads = []
    plain, streamed = pair(name)
    streamed.memory = streaming(name, 50)
    for potential in (plain, streamed):
        energy = potential(alloy_graph(potential.cutoff), compute_forces=False)["energy"].sum()
        grads.append(torch.autograd.grad(energy, list(potential.parameters())))
    assert len(stream_calls) == LAYERS
    for want, got in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-13)
    filter_grads = [g for (parameter, _), g in zip(plain.named_parameters(), grads[0]) if FILTERS[name] in parameter]
    assert filter_grads and all(g.abs().max() > 0 for g in filter_grads)


def test_streamed_equivariant_model_passes_gradients_to_trainable_radial_frequencies(stream_calls):
    """A trainable Bessel basis (as NequIP has) is used inside the streamed messages: its frequencies must get
    the unstreamed gradient, not none."""
    grads = []
    plain, streamed = pair("equivariant")
    streamed.memory = streaming("equivariant", 7)
    for potential in (plain, streamed):
        term = potential.terms[0]
        term.basis = BesselBasis(CONFIGS["equivariant"]["basis"], term.cutoff, trainable=True).double()
        energy = potential(alloy_graph(potential.cutoff), compute_forces=False)["energy"].sum()
        grads.append(torch.autograd.grad(energy, term.basis.frequencies))
    assert len(stream_calls) == LAYERS
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-11, atol=1e-13)
    assert grads[0][0].abs().max() > 0


def test_equivariant_edge_width_is_its_widest_per_edge_tensor():
    """The width that sets the model's streaming and recompute limits, against every tensor a kept
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


def test_edge_work_matches_the_direct_sums_and_finite_differences_under_every_strategy():
    """Two atom inputs, edge vectors and lengths through a geometry with a parameter of its own, two outputs of
    different shapes (as PaiNN's scalar and vector messages): kept, recomputed and streamed (4 edges a chunk)."""
    torch.manual_seed(1)
    n_atoms, n_edges, features = 5, 23, 3
    network = mlp([1, 4, features], "ssp").double()
    s = torch.randn(n_atoms, features, dtype=torch.float64, requires_grad=True)
    v = torch.randn(n_atoms, 3, features, dtype=torch.float64, requires_grad=True)
    vectors = torch.nn.functional.normalize(torch.randn(n_edges, 3, dtype=torch.float64), dim=1).requires_grad_()
    lengths = (1.0 + 3.0 * torch.rand(n_edges, dtype=torch.float64)).requires_grad_()
    scale = torch.tensor([0.8], dtype=torch.float64, requires_grad=True)  # a geometry parameter
    center, neighbor = torch.randint(n_atoms, (2, n_edges))
    parameters = tuple(network.parameters())
    row = 3 * features * 8

    def geometry(vectors, lengths):
        return lengths * scale, vectors

    def message(gathered, edge_parts):
        s_j, v_j = gathered
        r, u = edge_parts
        w = network(r[:, None])
        return w * s_j, v_j * w[:, None, :] + (w * s_j)[:, None, :] * u[:, :, None]

    def direct():
        per_edge = message([s[neighbor], v[neighbor]], geometry(vectors, lengths))
        return [torch.zeros((n_atoms, *m.shape[1:]), dtype=torch.float64).index_add(0, center, m) for m in per_edge]

    inputs = (s, v, vectors, lengths, scale, *parameters)
    for strategy in STRATEGIES:
        memory = Memory(mode=strategy, chunk_mib=4 * row / 2**20)

        def sums(s, v, vectors, lengths, scale, *parameters):
            work = EdgeWork(memory, center, neighbor, vectors, lengths, geometry, [scale], row, pairs=False)
            assert work.strategy == strategy and row_chunks(lengths.shape[0], row, work.chunk_bytes) == 4
            return work.sums(message, [s, v], parameters)

        assert torch.autograd.gradcheck(sums, inputs), strategy
        for got, want in zip(sums(*inputs), direct()):
            torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)
        # one output unused downstream: its gradient is None and the other one's still flows
        loss = sums(*inputs)[1].square().sum()
        reference = direct()[1].square().sum()
        for got, want in zip(torch.autograd.grad(loss, inputs), torch.autograd.grad(reference, inputs)):
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
def test_frozen_float32_streamed_gives_the_same_forces_and_stress(name, stream_calls):
    """As nnip.Calculator runs a model: parameters frozen (the first block then needs no gradient by h), float32."""
    plain, streamed = (p.float().requires_grad_(False) for p in pair(name))
    streamed.memory = streaming(name, 40, element_size=4)
    graph = alloy_graph(plain.cutoff).to(dtype=torch.float32)
    want = plain(graph, compute_stress=True)
    streamed(graph)  # the first call also runs the lone atoms alone (kept while frozen: nnip.nn.lone)
    stream_calls.clear()
    got = streamed(graph, compute_stress=True)
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
    """No edges at all (zero chunks; memory "stream" streams at every size, zero edges included): the energy
    is E0 of the two elements, with zero forces."""
    _, streamed = pair(name)
    streamed.set_reference(e0={"Cu": -1.5, "Ni": -2.25}, scale=0.7, shift=0.0)
    atoms = Atoms("CuNi", positions=[[0, 0, 0], [20.0, 0, 0]])
    out = streamed(AtomicGraph.from_atoms(atoms, streamed.cutoff, dtype=torch.float64))
    assert len(stream_calls) == LAYERS
    assert out["energy"].item() == pytest.approx(-3.75, abs=1e-12)
    assert out["forces"].abs().max() == 0.0


def widest_bytes(name: str, model, graph: AtomicGraph) -> int:
    """Bytes of SchNet's (E, F), PaiNN's (E, 3F) or the equivariant model's (E, edge_width) float64 tensor
    (E directed edges; SchNet and the equivariant model form them as both directions of the pairs)."""
    if name == "equivariant":
        width = max(interaction.edge_width for interaction in model.terms[0].interactions)
    else:
        width = CONFIG["features"] * (3 if name == "painn" else 1)
    return graph.edge_index.shape[1] * width * 8


@pytest.mark.parametrize("name", MODELS)
def test_auto_streams_on_the_cpu_exactly_above_stream_above_mib(name, stream_calls, message_calls):
    """Memory("auto") against the size of the model's widest per-edge tensor: a limit equal to it keeps, one
    byte less streams. On the CPU "auto" never recomputes, whatever recompute_above_mib (this replaces the
    old rule that under an allocator keeping freed memory streaming waited for the recompute limit: models no
    longer look at the allocator)."""
    _, model = pair(name)
    graph = alloy_graph(model.cutoff)
    widest = widest_bytes(name, model, graph)
    cases = ((widest, 1024.0, "keep"), (widest - 1, 1024.0, "stream"),
             (widest, 0.0, "keep"), (widest - 1, 0.0, "stream"))
    for limit, recompute_mib, strategy in cases:
        model.memory = Memory(stream_above_mib=limit / 2**20, recompute_above_mib=recompute_mib)
        assert model.memory.mode == "auto"
        stream_calls.clear()
        message_calls.clear()
        model(graph, compute_forces=True)
        assert len(stream_calls) == (LAYERS if strategy == "stream" else 0), (limit, recompute_mib)
        if strategy == "keep":  # each message once: neither streamed nor recomputed
            assert len(message_calls) == LAYERS, (limit, recompute_mib)


def test_memory_strategy_by_device_and_size():
    """"auto": on the CPU stream above stream_above_mib, elsewhere recompute above recompute_above_mib (exactly
    above; never stream); the other modes at every size."""
    memory = Memory(stream_above_mib=2.0, recompute_above_mib=3.0)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device object only: no GPU needed
    sizes = (0, 2 * 2**20, 2 * 2**20 + 1, 10**12)
    assert [memory.strategy(b, cpu) for b in sizes] == ["keep", "keep", "stream", "stream"]
    sizes = (0, 3 * 2**20, 3 * 2**20 + 1, 10**12)
    assert [memory.strategy(b, gpu) for b in sizes] == ["keep", "keep", "recompute", "recompute"]
    for mode in ("keep", "recompute", "stream"):
        assert {Memory(mode=mode).strategy(b, d) for b in (0, 10**12) for d in (cpu, gpu)} == {mode}
    assert Memory() == Memory.of(None) == Memory.of("auto") == Memory.of({}) and Memory.of(memory) is memory
    assert Memory.of({"mode": "stream", "chunk_mib": 1}) == Memory(mode="stream", chunk_mib=1)
    assert Memory().chunk_mib * 2**20 == execution.CHUNK_BYTES
    for bad in ({"mode": "fast"}, {"stream_above_mib": -1}, {"chunk_mib": float("nan")}, {"recompute_above_mib": "1"}):
        with pytest.raises(ConfigError):
            Memory(**bad)


def test_memory_is_a_run_time_setting_of_potentials_and_ensembles():
    """Set from a mode name, a dict or a Memory; not saved with the weights; an ensemble sets every member's."""
    model = build_potential({"elements": [28, 29], "terms": [{"name": "schnet", "config": CONFIG}]})
    assert model.memory == Memory()
    model.memory = "stream"
    assert model.memory == Memory(mode="stream") and copy.deepcopy(model).memory == Memory(mode="stream")
    model.memory = {"mode": "auto", "stream_above_mib": 8}
    assert model.memory == Memory(stream_above_mib=8.0)
    assert "memory" not in "".join(model.state_dict())
    ensemble = Ensemble([copy.deepcopy(model), copy.deepcopy(model)])
    ensemble.memory = "recompute"
    assert ensemble.memory == Memory(mode="recompute")
    assert all(member.memory == Memory(mode="recompute") for member in ensemble.members)


def test_streamed_painn_with_shared_filters_gives_the_same_forces(stream_calls):
    torch.manual_seed(0)
    spec = {"elements": [28, 29], "terms": [{"name": "painn", "config": {**CONFIG, "shared_filters": True}}]}
    plain = build_potential(spec).double()
    plain.memory = "keep"
    streamed = copy.deepcopy(plain)
    streamed.memory = streaming("painn", 40)
    graph = alloy_graph(plain.cutoff)
    want, got = plain(graph, compute_stress=True), streamed(graph, compute_stress=True)
    assert len(stream_calls) == LAYERS
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Recomputing (silicon, float64)

RECOMPUTE_MODELS = {
    "schnet": {"features": 16, "interactions": 2, "basis": 8},
    "painn": {"features": 16, "interactions": 2, "basis": 8},
    "equivariant": {"channels": 8, "l_max": 2, "hidden_l": 1, "correlation": 2, "layers": 2, "basis": 6},
}


def recompute_pair(name: str):
    """The same float64 model twice: keeping its activations, and recomputing every layer's per-edge work."""
    torch.manual_seed(0)
    keep = build_potential({"elements": [14], "terms": [{"name": name, "config": RECOMPUTE_MODELS[name]}]}).double()
    recompute = copy.deepcopy(keep)
    keep.memory = "keep"
    recompute.memory = "recompute"
    return keep, recompute


def silicon_graph(cutoff: float) -> AtomicGraph:
    atoms = nnip.read(bundled("si_test.extxyz"), index=":1")[0]
    atoms.rattle(0.05, seed=1)
    return AtomicGraph.from_atoms(atoms, cutoff, dtype=torch.float64)


def saved_bytes(potential, graph) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one energy evaluation (outside
    recomputed layers, whose own saved tensors are dropped and rebuilt)."""
    total = 0

    def pack(tensor):
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        potential(graph, compute_forces=False, compute_stress=False)["energy"]
    return total


@pytest.mark.parametrize("name", sorted(RECOMPUTE_MODELS))
def test_recomputed_layers_give_the_same_energy_forces_and_stress(name):
    keep, recompute = recompute_pair(name)
    graph = silicon_graph(keep.cutoff)
    want = keep(graph, compute_stress=True)
    got = recompute(graph, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
    assert want["forces"].abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(RECOMPUTE_MODELS))
def test_recomputed_layers_give_the_same_training_gradients(name):
    """create_graph with memory "recompute" (which then keeps): the gradient of a force loss by every parameter."""
    keep, recompute = recompute_pair(name)
    graph = silicon_graph(keep.cutoff)
    grads = []
    for potential in (keep, recompute):
        out = potential(graph, compute_forces=True, create_graph=True)
        loss = out["energy"].square().sum() + out["forces"].square().sum()
        grads.append(torch.autograd.grad(loss, list(potential.parameters()), allow_unused=True))
    for want, got in zip(*grads):
        if want is None:
            assert got is None
        else:
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert any(g is not None and g.abs().max() > 0 for g in grads[0])


@pytest.mark.parametrize("name", sorted(RECOMPUTE_MODELS))
def test_recomputed_layers_keep_far_fewer_activations(name):
    keep, recompute = recompute_pair(name)
    graph = silicon_graph(keep.cutoff)
    kept, recomputed = saved_bytes(keep, graph), saved_bytes(recompute, graph)
    assert recomputed < 0.6 * kept, (recomputed, kept)


@pytest.mark.parametrize("name", sorted(RECOMPUTE_MODELS))
def test_default_memory_keeps_activations_of_small_systems(name):
    """Below the default sizes nothing is recomputed or streamed, so ordinary systems pay nothing."""
    keep, _ = recompute_pair(name)
    default = copy.deepcopy(keep)
    default.memory = Memory()
    graph = silicon_graph(keep.cutoff)
    assert saved_bytes(default, graph) == saved_bytes(keep, graph)


@pytest.mark.parametrize("name", sorted(RECOMPUTE_MODELS))
def test_recompute_runs_each_layers_messages_again_in_the_backward_pass_only_when_it_helps(name, message_calls):
    """Under memory "recompute" each layer's per-edge work (gather, messages, sum) runs twice in an energy and
    forces call (forward pass and backward pass); training, attacks and Hessians (create_graph) keep the
    activations, as do calls without derivatives: each layer's messages run once there. (Replaces SchNet's
    two-level rule, convolution above the limit and whole block above 1.5 times it: recomputing is now one
    rule per layer for every model.)"""
    keep, recompute = recompute_pair(name)
    graph = silicon_graph(recompute.cutoff)
    recompute(graph, compute_forces=True)
    assert len(message_calls) == 2 * LAYERS
    message_calls.clear()
    keep(graph, compute_forces=True)
    assert len(message_calls) == LAYERS
    message_calls.clear()
    recompute(graph, compute_forces=True, create_graph=True)
    assert len(message_calls) == LAYERS
    message_calls.clear()
    with torch.no_grad():
        recompute(graph, compute_forces=False)
    assert len(message_calls) == LAYERS


# ---------------------------------------------------------------------------------------------------------------
# Pairs of a half list: messages both ways


def small_cell_edges():
    """A 2-atom cell smaller than the cutoff: pairs of an atom with its own images (i == j) included."""
    atoms = bulk("Cu", "fcc", a=3.6).repeat((2, 1, 1))
    atoms.rattle(0.1, seed=3)
    graph = AtomicGraph.from_atoms(atoms, 4.0, dtype=torch.float64)
    center, neighbor = graph.edge_index
    vectors = graph.positions[neighbor] - graph.positions[center] + graph.cell_shifts.double() @ graph.cell[0]
    return center, neighbor, graph.cell_shifts, vectors, len(atoms)


def test_pair_messages_equal_the_full_list_sum_including_self_images():
    torch.manual_seed(0)
    center, neighbor, shifts, vectors, n_atoms = small_cell_edges()
    lengths = vectors.norm(dim=1)
    assert bool((center == neighbor).any())  # self-image pairs are part of the test
    filter_of = mlp([1, 6, 4], "ssp").double()
    h = torch.randn(n_atoms, 4, dtype=torch.float64)
    want = torch.zeros(n_atoms, 4, dtype=torch.float64).index_add_(0, center, filter_of(lengths[:, None]) * h[neighbor])
    keep = half_edge_mask(center, neighbor, shifts)
    assert 2 * int(keep.sum()) == center.shape[0]
    sources, targets = both_directions(center[keep], neighbor[keep])
    got = scatter_sum(per_pair(h.index_select(0, sources), filter_of(lengths[keep][:, None])), targets, n_atoms)
    torch.testing.assert_close(got, want, rtol=1e-14, atol=1e-14)
    # per_pair on the directed edges of a full list: one direction each
    directed = scatter_sum(per_pair(h.index_select(0, neighbor), filter_of(lengths[:, None])), center, n_atoms)
    torch.testing.assert_close(directed, want, rtol=1e-14, atol=1e-14)
    # and EdgeWork on the pairs, under every strategy (2 pairs a chunk when streamed)
    for strategy in STRATEGIES:
        work = EdgeWork(Memory(mode=strategy, chunk_mib=2 * 64 / 2**20), center[keep], neighbor[keep], vectors[keep],
                        lengths[keep], lambda vectors, lengths: (filter_of(lengths[:, None]),), [], 64, pairs=True)
        (summed,) = work.sums(lambda gathered, geometry: (per_pair(gathered[0], geometry[0]),), [h], [])
        torch.testing.assert_close(summed, want, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pairs_match_the_direct_sums_and_finite_differences(strategy):
    torch.manual_seed(1)
    n_atoms, n_pairs, features = 6, 19, 3
    network = mlp([1, 4, features], "ssp").double()
    h = torch.randn(n_atoms, features, dtype=torch.float64, requires_grad=True)
    lengths = (1.0 + 3.0 * torch.rand(n_pairs, dtype=torch.float64)).requires_grad_()
    vectors = torch.randn(n_pairs, 3, dtype=torch.float64)  # not used by the geometry below
    center, neighbor = torch.randint(n_atoms, (2, n_pairs))
    parameters = tuple(network.parameters())
    row = 2 * features * 8  # both directions of a pair
    memory = Memory(mode=strategy, chunk_mib=4 * row / 2**20)  # 4 pairs a chunk when streamed

    def message(gathered, geometry):
        return (per_pair(gathered[0], network(geometry[0][:, None])),)

    def paired(h, lengths, *parameters):
        work = EdgeWork(memory, center, neighbor, vectors, lengths, lambda vectors, lengths: (lengths,), [], row,
                        pairs=True)
        assert work.strategy == strategy and row_chunks(lengths.shape[0], row, work.chunk_bytes) == 4
        return work.sums(message, [h], parameters)[0]

    def direct(h, lengths, *parameters):
        sources, targets = both_directions(center, neighbor)
        return scatter_sum(per_pair(h.index_select(0, sources), network(lengths[:, None])), targets, n_atoms)

    inputs = (h, lengths, *parameters)
    assert torch.autograd.gradcheck(paired, inputs)
    torch.testing.assert_close(paired(*inputs), direct(*inputs), rtol=1e-14, atol=1e-14)
    weights = torch.randn(n_atoms, features, dtype=torch.float64)
    got = torch.autograd.grad((paired(*inputs) * weights).sum(), inputs)
    want = torch.autograd.grad((direct(*inputs) * weights).sum(), inputs)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-13)


def test_row_chunks_hold_at_most_the_chunk_bytes_and_at_least_one_row(monkeypatch):
    assert row_chunks(100, 8, 64) == 8 and row_chunks(100, 100, 64) == 1 and row_chunks(0, 8, 64) == 1
    monkeypatch.setattr(execution, "CHUNK_BYTES", 80)  # the default is read at call time
    assert row_chunks(100, 8) == 10
