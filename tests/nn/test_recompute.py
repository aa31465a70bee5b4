"""Recomputing per-edge layers in the backward pass (nnip.nn.recompute): the same energies, forces,
stress and training gradients as keeping the activations, with far fewer activations kept."""

import copy

import pytest
import torch

import nnip
from nnip.data import bundled
from nnip.data.graph import AtomicGraph
from nnip.nn.recompute import RECOMPUTE_ABOVE_BYTES
from nnip.potentials import build_potential
from nnip.potentials.schnet import Interaction

MODELS = {
    "schnet": {"features": 16, "interactions": 2, "basis": 8},
    "painn": {"features": 16, "interactions": 2, "basis": 8},
    "equivariant": {"channels": 8, "l_max": 2, "hidden_l": 1, "correlation": 2, "layers": 2, "basis": 6},
}


def pair(name: str):
    """The same float64 model twice: keeping its activations, and recomputing every per-edge layer."""
    torch.manual_seed(0)
    keep = build_potential({"elements": [14], "terms": [{"name": name, "config": MODELS[name]}]}).double()
    recompute = copy.deepcopy(keep)
    keep.terms[0].recompute_above_bytes = None
    recompute.terms[0].recompute_above_bytes = 0
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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recomputed_layers_give_the_same_energy_forces_and_stress(name):
    keep, recompute = pair(name)
    graph = silicon_graph(keep.cutoff)
    want = keep(graph, compute_stress=True)
    got = recompute(graph, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
    assert want["forces"].abs().max() > 1e-3


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recomputed_layers_give_the_same_training_gradients(name):
    """create_graph through recomputed layers: the gradient of a force loss by every parameter."""
    keep, recompute = pair(name)
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


@pytest.mark.parametrize("name", sorted(MODELS))
def test_recomputed_layers_keep_far_fewer_activations(name):
    keep, recompute = pair(name)
    graph = silicon_graph(keep.cutoff)
    kept, recomputed = saved_bytes(keep, graph), saved_bytes(recompute, graph)
    assert recomputed < 0.6 * kept, (recomputed, kept)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_default_limit_keeps_activations_of_small_systems(name):
    """Below the default size nothing is recomputed, so ordinary systems pay nothing."""
    keep, _ = pair(name)
    default = copy.deepcopy(keep)
    default.terms[0].recompute_above_bytes = RECOMPUTE_ABOVE_BYTES
    graph = silicon_graph(keep.cutoff)
    assert saved_bytes(default, graph) == saved_bytes(keep, graph)


def count_interaction_calls(monkeypatch) -> dict[str, int]:
    """Count runs of SchNet's interaction blocks and of their convolutions (forward passes and
    recomputations alike)."""
    calls = {"forward": 0, "convolve": 0}
    for method in calls:
        original = getattr(Interaction, method)

        def counted(self, *args, _original=original, _method=method):
            calls[_method] += 1
            return _original(self, *args)

        monkeypatch.setattr(Interaction, method, counted)
    return calls


def schnet_edge_bytes(graph) -> int:
    return graph.edge_index.shape[1] * MODELS["schnet"]["features"] * 8  # one (E, F) float64 tensor


def test_limit_is_the_bytes_of_one_edge_by_features_tensor(monkeypatch):
    """SchNet recomputes a block's convolution exactly when E x F x itemsize exceeds the limit, and
    the whole block (filter network included) above 1.5 times the limit. What is recomputed runs
    twice for forces (forward and backward pass); nested recomputation does not happen."""
    keep, _ = pair("schnet")
    graph = silicon_graph(keep.cutoff)
    edge_bytes = schnet_edge_bytes(graph)
    calls = count_interaction_calls(monkeypatch)
    blocks = MODELS["schnet"]["interactions"]
    third = edge_bytes * 2 // 3
    cases = ((edge_bytes, 1, 1), (edge_bytes - 1, 1, 2), (third + 1, 1, 2), (third - 1, 2, 2))
    for limit, block_runs, convolution_runs in cases:
        keep.terms[0].recompute_above_bytes = limit
        calls.update(forward=0, convolve=0)
        keep(graph, compute_forces=True)
        assert calls == {"forward": block_runs * blocks, "convolve": convolution_runs * blocks}, limit


def test_recomputing_only_the_convolution_gives_the_same_results_with_fewer_activations():
    keep, convolution = pair("schnet")
    graph = silicon_graph(keep.cutoff)
    keep.terms[0].recompute_above_bytes = None
    convolution.terms[0].recompute_above_bytes = schnet_edge_bytes(graph) - 1
    want, got = keep(graph, compute_stress=True), convolution(graph, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(got[key], want[key], rtol=1e-12, atol=1e-12)
    kept, recomputed = saved_bytes(keep, graph), saved_bytes(convolution, graph)
    assert 0.3 * kept < recomputed < 0.85 * kept, (recomputed, kept)  # whole blocks: about 0.1


def test_create_graph_and_energy_only_calls_never_recompute(monkeypatch):
    """Training, attacks and Hessians (create_graph) keep the activations, as do calls without
    derivatives: recomputing there would only add forward passes."""
    _, recompute = pair("schnet")
    graph = silicon_graph(recompute.cutoff)
    calls = count_interaction_calls(monkeypatch)
    blocks = MODELS["schnet"]["interactions"]
    recompute(graph, compute_forces=True, create_graph=True)
    assert calls == {"forward": blocks, "convolve": blocks}
    calls.update(forward=0, convolve=0)
    with torch.no_grad():
        recompute(graph, compute_forces=False)
    assert calls == {"forward": blocks, "convolve": blocks}
