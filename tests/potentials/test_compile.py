"""torch.compile of a potential's terms (Potential.compile_terms): the same energies, forces, stress
and second derivatives as the eager model, for cells and clusters of other sizes than the first."""

import copy

import numpy as np
import pytest
import torch

import nnip
from nnip.data import bundled
from nnip.data.graph import AtomicGraph
from nnip.nn.execution import Memory
from nnip.potentials import Ensemble, build_potential

pytestmark = pytest.mark.slow  # compiling takes tens of seconds


@pytest.fixture(scope="module")
def models():
    spec = {"elements": [14], "terms": [{"name": "schnet", "config": {"features": 16, "interactions": 2, "basis": 8}}]}
    eager = build_potential(spec).double().eval()
    streaming = copy.deepcopy(eager)
    streaming.memory = "stream"
    compiled_potential = streaming.compile_terms()
    assert compiled_potential.memory == Memory(mode="keep")  # compiled terms keep: no recompute, no stream
    with pytest.raises(ValueError, match="compiled terms keep"):
        compiled_potential.memory = "stream"
    eager_copy = copy.deepcopy(compiled_potential)  # compilation is not copied: the copy may stream again
    eager_copy.memory = "stream"
    assert not compiled(eager_copy) and eager_copy.memory == Memory(mode="stream")
    return eager, compiled_potential


def structures():
    """Two periodic Si cells of different sizes (one rattled) and a cluster cut from one."""
    crystals = nnip.read(bundled("si_test.extxyz"), index=":2")
    rattled = crystals[1].copy()
    rattled.rattle(0.05, seed=3)
    cluster = crystals[0][:20]
    cluster.pbc, cluster.cell = False, np.zeros((3, 3))
    return [crystals[0], rattled, cluster]


def graph_of(atoms, potential):
    return AtomicGraph.from_atoms(atoms, potential.cutoff, dtype=torch.float64)


def is_compiled(term) -> bool:
    """True when ``term`` carries compiled code (Module.compile's private attribute)."""
    return getattr(term, "_compiled_call_impl", None) is not None


def compiled(potential) -> bool:
    return all(is_compiled(term) for term in potential.terms)


def assert_same_predictions(eager, compiled_potential, atoms) -> None:
    """Energy, forces (and stress for a cell) of the compiled potential equal the eager ones in float64."""
    graph = graph_of(atoms, eager)
    periodic = bool(atoms.pbc.all())
    want = eager(graph, compute_stress=periodic)
    got = compiled_potential(graph, compute_stress=periodic)
    torch.testing.assert_close(got["energy"], want["energy"], rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(got["forces"], want["forces"], rtol=1e-10, atol=1e-10)
    if periodic:
        torch.testing.assert_close(got["stress"], want["stress"], rtol=1e-10, atol=1e-12)
    assert got["forces"].abs().max() > 1e-3  # an untrained model still has forces to compare


def test_compiled_terms_give_the_eager_energies_forces_and_stress(models):
    eager, compiled_potential = models
    assert compiled(compiled_potential) and not compiled(eager)
    assert len({len(atoms) for atoms in structures()}) == 3
    for atoms in structures():
        assert_same_predictions(eager, compiled_potential, atoms)


def test_compiled_equivariant_model_gives_the_eager_energies_forces_and_stress():
    """Compiled, the edge convolution is traced as a sum over the nonzero Clebsch-Gordan coefficients
    (nnip.nn.channelwise.Convolution.unrolled): the same numbers as the eager dense tables."""
    config = {"cutoff": 4.0, "channels": 4, "l_max": 2, "hidden_l": 1, "correlation": 2, "layers": 2, "basis": 6,
              "radial_hidden": 8, "readout_hidden": 4, "avg_neighbors": 8.0}
    eager = build_potential({"elements": [14], "terms": [{"name": "equivariant", "config": config}]}).double().eval()
    compiled_potential = copy.deepcopy(eager).compile_terms()
    assert compiled(compiled_potential)
    for atoms in structures()[1:]:
        assert_same_predictions(eager, compiled_potential, atoms)


def test_second_derivatives_through_a_compiled_potential_run_eagerly_and_agree(models):
    eager, compiled_potential = models
    assert not any(p.requires_grad for p in compiled_potential.parameters())  # inference only: frozen
    gradients = []
    for potential in models:
        graph = graph_of(structures()[1], eager)
        graph.positions.requires_grad_(True)  # d|F|^2/dr, as an adversarial attack needs
        out = potential(graph, compute_forces=True, create_graph=True)
        gradients.append(torch.autograd.grad(out["forces"].square().sum(), graph.positions)[0])
    assert gradients[0].abs().max() > 1e-6  # not trivially zero
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-10, atol=1e-12)


def test_calculator_compiles_its_copy_on_request(models):
    eager, _ = models
    atoms = structures()[1]
    calculator = nnip.Calculator(eager, compile=True)
    assert compiled(calculator.potential) and not compiled(eager)
    plain = nnip.Calculator(eager).get_forces(atoms)
    assert np.abs(calculator.get_forces(atoms) - plain).max() < 1e-10


def test_global_terms_stay_eager_and_ensembles_compile_every_member():
    spec = {"elements": [1, 8], "terms": [{"name": "schnet", "config": {"features": 8, "interactions": 1}},
                                          {"name": "electrostatics", "config": {"features": 8, "interactions": 1}}]}
    members = [build_potential(spec) for _ in range(2)]
    Ensemble(members).compile_terms()  # compiles lazily: nothing runs here
    for member in members:
        local, ewald = member.terms
        assert is_compiled(local) and not is_compiled(ewald)


@pytest.fixture
def two_threads():
    """Two threads: the generated CPU code differs from the single-threaded code that tests run otherwise."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["schnet", "painn"])
def test_compiled_float32_models_of_one_element_match_eager(name, two_threads):
    """float32 on two threads, as inference runs: its vectorised, parallel CPU code is generated
    differently from float64's, and a single element makes the lone-atom table (nnip.nn.lone) one
    row (torch 2.13's code generator failed on an earlier form of that gather)."""
    spec = {"elements": [14], "terms": [{"name": name, "config": {"features": 16, "interactions": 2, "basis": 8}}]}
    torch.manual_seed(0)  # the force-size check below must not depend on which tests ran before in this process
    eager = build_potential(spec).float().eval()
    compiled_potential = copy.deepcopy(eager).compile_terms()
    for atoms in structures()[1:]:
        graph = AtomicGraph.from_atoms(atoms, eager.cutoff, dtype=torch.float32)
        want, got = eager(graph), compiled_potential(graph)
        torch.testing.assert_close(got["energy"], want["energy"], rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(got["forces"], want["forces"], rtol=1e-4, atol=1e-5)
        assert got["forces"].abs().max() > 1e-3
