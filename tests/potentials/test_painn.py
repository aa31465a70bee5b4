"""PaiNN passes the potential contract; its hidden vector features rotate with the structure."""

import numpy as np
import pytest
import torch

from nnip.nn.lone import with_lone_atoms
from nnip.potentials import Potential
from nnip.potentials.learned.painn import PaiNN, PaiNNConfig
from nnip.testing import PotentialContract, cluster, periodic_cell
from nnip.testing.structures import random_rotation, rotated, term_inputs

ELEMENTS = ["H", "C", "O"]


def small_painn(cutoff: float = 4.0, **overrides) -> PaiNN:
    return PaiNN(PaiNNConfig(cutoff=cutoff, features=8, interactions=2, basis=8, **overrides), ELEMENTS)


class TestPaiNN(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_painn()], ELEMENTS, e0={"H": -0.5, "C": -1.5, "O": -2.0}, scale=0.5)


class TestPaiNNSharedFilters(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        return Potential([small_painn(shared_filters=True)], ELEMENTS, scale=0.3)


@pytest.mark.parametrize("make", [lambda: cluster([1, 6, 8], 7, 1.4, seed=3), lambda: periodic_cell([1, 6, 8], 1.4)])
def test_hidden_vectors_rotate_and_scalars_stay(make):
    torch.manual_seed(1)
    term = small_painn().double()
    atoms = make()
    rotation = random_rotation(seed=7, reflect=True)
    s, v = term.representation(*term_inputs(term, atoms))
    s_turned, v_turned = term.representation(*term_inputs(term, rotated(atoms, rotation)))
    assert v.abs().max() > 1e-3  # the vectors are not trivially zero
    np.testing.assert_allclose(s_turned.detach(), s.detach(), atol=1e-12)
    expected = torch.einsum("ab,nbf->naf", torch.as_tensor(rotation), v)
    np.testing.assert_allclose(v_turned.detach(), expected.detach(), atol=1e-12)


def test_appended_lone_atoms_equal_the_representation_without_edges():
    torch.manual_seed(2)
    term = small_painn().double()
    species, edges = term_inputs(term, cluster([1, 6, 8], 5, 1.4, seed=1))
    s, v = term.representation(with_lone_atoms(species, 3), edges)
    expected_s, expected_v = term.representation(torch.arange(3), edges.empty())
    torch.testing.assert_close(s[len(species):], expected_s, rtol=0, atol=1e-14)
    torch.testing.assert_close(v[len(species):], expected_v, rtol=0, atol=0)
    assert (s[:len(species)] - s[species + len(species)]).abs().max() > 1e-3  # the real atoms did get messages
