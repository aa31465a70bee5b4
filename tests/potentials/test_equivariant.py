"""The equivariant many-body model passes the potential contract; its hidden irreps transform as declared."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.errors import ConfigError
from nnip.nn.irreps import rotation_matrix_of
from nnip.nn.lone import with_lone_atoms
from nnip.potentials import Potential
from nnip.potentials.contract.edges import build_edges
from nnip.potentials.learned.equivariant import Equivariant, EquivariantConfig
from nnip.testing import PotentialContract, cluster, periodic_cell
from nnip.testing.structures import random_rotation, rotated, term_inputs

ELEMENTS = ["H", "C", "O"]


def small_model(**overrides) -> Equivariant:
    config = dict(cutoff=3.0, channels=4, l_max=2, hidden_l=1, correlation=3, layers=2, basis=6, radial_hidden=8,
                  readout_hidden=4, avg_neighbors=4.0)
    return Equivariant(EquivariantConfig(**{**config, **overrides}), ELEMENTS)


class TestEquivariant(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_model()], ELEMENTS, e0={"H": -0.5, "C": -1.5, "O": -2.0}, scale=0.5)


class TestEquivariantL3Correlation2(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_model(l_max=3, hidden_l=2, correlation=2, layers=1)], ELEMENTS, scale=0.3)


HIDDEN_DEGREES = [{}, {"l_max": 3, "hidden_l": 3, "correlation": 2}, {"l_max": 1, "correlation": 1},
                  {"l_max": 0, "hidden_l": 0, "correlation": 2}]


@pytest.mark.parametrize("overrides", HIDDEN_DEGREES, ids=["l2_hidden1", "l3_hidden3", "l1_corr1", "l0"])
@pytest.mark.parametrize("make", [lambda: cluster([1, 6, 8], 7, 1.4, seed=3), lambda: periodic_cell([1, 6, 8], 1.4)],
                         ids=["cluster", "periodic"])
def test_hidden_irreps_transform_as_declared(make, overrides):
    """Every layer's features h (N, K, (hidden_l+1)^2) turn with D(R) of 0e + 1o + ... (reflections too)."""
    torch.manual_seed(1)
    term = small_model(**overrides).double()
    atoms = make()
    rotation = random_rotation(seed=7, reflect=True)
    wigner = rotation_matrix_of(term.config.hidden_l, torch.as_tensor(rotation))
    features = term.layer_features(*term_inputs(term, atoms))
    for h, h_turned in zip(features, term.layer_features(*term_inputs(term, rotated(atoms, rotation)))):
        for l in range(term.config.hidden_l + 1):  # no degree is trivially zero
            assert h[:, :, l * l:(l + 1) ** 2].abs().max() > 1e-3
        np.testing.assert_allclose(h_turned.detach(), (h @ wigner.T).detach(), atol=1e-11)


def test_polynomial_cutoff_equals_its_expanded_form_and_is_c2_at_the_cutoff():
    from nnip.nn.radial import polynomial_cutoff

    r = torch.linspace(0.01, 6.0, 500, dtype=torch.float64)
    x = r / 5.0
    expanded = torch.where(r < 5.0, 1 - 28 * x**6 + 48 * x**7 - 21 * x**8, torch.zeros_like(r))
    np.testing.assert_allclose(polynomial_cutoff(r, 5.0), expanded, atol=1e-13)
    at = torch.tensor([5.0 - 1e-9], dtype=torch.float64, requires_grad=True)
    value = polynomial_cutoff(at, 5.0)
    (first,) = torch.autograd.grad(value.sum(), at, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), at)
    assert abs(value.item()) < 1e-20 and abs(first.item()) < 1e-15 and abs(second.item()) < 1e-6


@pytest.mark.parametrize("overrides", [{}, {"l_max": 3, "hidden_l": 2, "correlation": 2, "layers": 3}])
def test_appended_lone_atoms_equal_the_full_model_without_edges(overrides):
    """The lone atoms appended to a batch (nnip.nn.lone, as for every network term) get the summed readouts
    of the model run on the lone atoms alone, without edges."""
    torch.manual_seed(2)
    term = small_model(**overrides).double()
    species, edges = term_inputs(term, cluster([1, 6, 8], 5, 1.4, seed=1))
    expected = term._outputs(torch.arange(3), edges.empty())
    assert expected.abs().min() > 1e-6  # not trivially zero
    outputs = term._outputs(with_lone_atoms(species, 3), edges)
    torch.testing.assert_close(outputs[len(species):], expected, rtol=0, atol=1e-14)
    assert (outputs[:len(species)] - expected[species]).abs().max() > 1e-3  # the real atoms did get messages


@pytest.mark.parametrize("name", ["cluster", "periodic"])
def test_which_direction_of_each_pair_the_half_list_holds_does_not_matter(name):
    """Each pair's R and Y are evaluated once, along the direction the half list holds: holding the other
    direction of every pair gives the same. (This cannot see the (-1)^l of the other direction: flipping
    every odd-l Y is a reflection, which the model ignores; the next test does.)"""
    torch.manual_seed(4)
    term = small_model(l_max=3, hidden_l=1, correlation=2).double()
    atoms = cluster([1, 6, 8], 6, 1.4, seed=3) if name == "cluster" else periodic_cell([1, 6, 8], 1.4, seed=3)
    species, pairs = term_inputs(term, atoms)
    assert pairs.is_half  # what a Potential hands the term
    flipped = dataclasses.replace(pairs, center=pairs.neighbor, neighbor=pairs.center, shifts=-pairs.shifts,
                                  vectors=-pairs.vectors)
    want, got = term(species, pairs), term(species, flipped)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # a full list: halved by the Potential (terms no longer halve one themselves)
    full = AtomicGraph.from_atoms(atoms, NeighborRequest(term.cutoff, full=True), dtype=torch.float64)
    potential = Potential([term], ELEMENTS)
    torch.testing.assert_close(potential(full, compute_forces=False)["atomic_energies"], want.to(torch.float64),
                               rtol=1e-12, atol=1e-12)


def test_pairs_give_the_sum_over_directed_edges():
    """A full list passed as if it were a half list sends every directed edge's message along its own
    direction and, with Y(r_ji) = (-1)^l Y(r_ij), along the other: each message twice, i.e. the
    directed-edge sum with avg_neighbors halved. (Without the (-1)^l the doubled messages differ.)"""
    torch.manual_seed(5)
    term = small_model(l_max=3, hidden_l=1, correlation=2).double()
    atoms = periodic_cell([1, 6, 8], 1.4, seed=6)
    species, _ = term_inputs(term, atoms)
    graph = AtomicGraph.from_atoms(atoms, NeighborRequest(term.cutoff, full=True), dtype=torch.float64)
    edges = build_edges(graph, graph.positions, graph.cell, NeighborRequest(term.cutoff, full=True))
    assert not edges.is_half
    doubled = copy.deepcopy(term)
    doubled.avg_neighbors *= 2
    want = term(species, edges.half())
    got = doubled(species, dataclasses.replace(edges, is_half=True))
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-11, atol=1e-12)


def test_product_weights_start_at_product_init():
    """The initial weights of the products B^2, B^3 have standard deviation product_init, which must be > 0."""
    torch.manual_seed(0)
    model = small_model(channels=16, product_init=0.2)
    weights = torch.cat([w.detach().flatten() for i in model.interactions for w in i.product_weights])
    assert weights.numel() > 500 and float(weights.std()) == pytest.approx(0.2, rel=0.1)
    with pytest.raises(ConfigError, match="product_init"):
        small_model(product_init=0.0)
