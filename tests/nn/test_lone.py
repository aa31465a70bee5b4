"""Lone-atom references (nnip.nn.lone): frozen models keep their lone outputs instead of appending
lone atoms to every batch; the results are the same, and a change of the parameters is seen."""

import copy

import pytest
import torch
from ase.build import molecule

from nnip.data.graph import AtomicGraph
from nnip.potentials import build_potential

CONFIG = {"features": 16, "interactions": 2}
CONFIGS = {"schnet": CONFIG, "painn": CONFIG,
           "equivariant": {"channels": 8, "l_max": 2, "hidden_l": 1, "layers": 2, "basis": 6, "avg_neighbors": 4.0},
           "behler_parrinello": {"cutoff": 5.0, "radial": 4, "hidden": [8], "angular_etas": [0.05]}}
MODELS = list(CONFIGS)


def models(name: str):
    """The same float64 model of H, C, N, O twice: trainable, and a frozen copy."""
    torch.manual_seed(0)
    trainable = build_potential({"elements": [1, 6, 7, 8], "terms": [{"name": name, "config": CONFIGS[name]}]})
    trainable.double()
    return trainable, copy.deepcopy(trainable).requires_grad_(False)


def ethanol() -> AtomicGraph:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=1)
    return AtomicGraph.from_atoms(atoms, 5.5)


def embedded_rows(potential, graph) -> list[int]:
    """Rows of each embedding lookup during one evaluation (Behler-Parrinello, which has no embedding: rows of
    each evaluation of its symmetry functions)."""
    rows = []
    term = potential.terms[0]
    if hasattr(term, "embedding"):
        handle = term.embedding.register_forward_hook(lambda module, args, out: rows.append(out.shape[0]))
        potential(graph)
        handle.remove()
    else:
        features = term.features
        term.features = lambda species, edges: rows.append(species.shape[0]) or features(species, edges)
        try:
            potential(graph)
        finally:
            del term.features
    return rows


@pytest.mark.parametrize("name", MODELS)
def test_frozen_model_reuses_its_lone_outputs_and_agrees_with_the_trainable_one(name):
    trainable, frozen = models(name)
    graph = ethanol()
    want = trainable(graph, compute_stress=False)
    assert embedded_rows(trainable, graph) == [9 + 4]  # lone atoms appended
    assert embedded_rows(frozen, graph) == [4, 9]  # the 4 lone atoms once, then the 9 atoms alone
    assert embedded_rows(frozen, graph) == [9]  # kept
    got = frozen(graph)
    torch.testing.assert_close(got["energy"], want["energy"], rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(got["forces"], want["forces"], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("change", ["load_state_dict", "in_place", "dtype"])
def test_a_change_of_the_frozen_parameters_is_seen(change, name):
    trainable, frozen = models(name)
    graph = ethanol()
    frozen(graph)
    with torch.no_grad():
        for p in trainable.parameters():
            p.mul_(1.1)
    if change == "load_state_dict":
        frozen.load_state_dict(trainable.state_dict())
    elif change == "in_place":
        with torch.no_grad():
            for p in frozen.parameters():
                p.mul_(1.1)
    else:  # a round trip through float32 makes new parameter tensors
        trainable.float().double()
        frozen.float()
        frozen.load_state_dict({k: v.float() for k, v in trainable.state_dict().items()})
        frozen.double()
    assert embedded_rows(frozen, graph) == [4, 9]  # the lone outputs again
    want, got = trainable(graph), frozen(graph)
    torch.testing.assert_close(got["energy"], want["energy"], rtol=1e-13, atol=1e-13)
