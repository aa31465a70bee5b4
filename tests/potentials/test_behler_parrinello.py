"""Symmetry functions against a direct loop, and the Behler-Parrinello network under the contract."""

import itertools
import math

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list

from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.potentials import Potential
from nnip.potentials.learned.behler_parrinello import BehlerParrinello, BehlerParrinelloConfig
from nnip.potentials.contract.edges import build_edges
from nnip.testing import PotentialContract


def fc(r, rc):
    return 0.5 * math.cos(math.pi * r / rc) + 0.5 if r < rc else 0.0


def direct_loop(atoms, elements, config, term):
    """Symmetry functions by explicit loops over atoms, neighbours and neighbour pairs (float64)."""
    rc = config.cutoff
    i_list, j_list, vectors = neighbor_list("ijD", atoms, rc)
    species = [elements.index(z) for z in atoms.numbers]
    n_species = len(elements)
    pairs = {p: k for k, p in enumerate((a, b) for a in range(n_species) for b in range(a, n_species))}
    spacing = (rc - config.radial_start) / config.radial
    shifts = config.radial_centres or [config.radial_start + k * spacing for k in range(config.radial)]
    etas = [config.radial_eta or 0.5 / spacing**2] * len(shifts)
    sets = list(itertools.product(config.angular_etas, config.angular_zetas, (1.0, -1.0)))
    rows = []
    for i in range(len(atoms)):
        neighbours = [(species[j], v) for ii, j, v in zip(i_list, j_list, vectors) if ii == i]
        radial = np.zeros((n_species, len(shifts)))
        for s, v in neighbours:
            r = np.linalg.norm(v)
            for k, (rs, eta) in enumerate(zip(shifts, etas)):
                radial[s, k] += math.exp(-eta * (r - rs) ** 2) * fc(r, rc)
        angular = np.zeros((len(pairs), len(sets)))
        ra = config.angular_cutoff or rc  # the angular functions see neighbours within ra only
        near = [(s, v) for s, v in neighbours if np.linalg.norm(v) < ra]
        for (sj, vj), (sk, vk) in itertools.combinations(near, 2):
            rij, rik, rjk = np.linalg.norm(vj), np.linalg.norm(vk), np.linalg.norm(vk - vj)
            cos = float(np.dot(vj, vk) / (rij * rik))
            for a, (eta, zeta, lam) in enumerate(sets):
                value = 2 ** (1 - zeta) * (1 + lam * cos) ** zeta
                if config.angular == "g4":
                    value *= math.exp(-eta * (rij**2 + rik**2 + rjk**2)) * fc(rij, ra) * fc(rik, ra) * fc(rjk, ra)
                else:
                    value *= math.exp(-eta * (rij**2 + rik**2)) * fc(rij, ra) * fc(rik, ra)
                angular[pairs[tuple(sorted((sj, sk)))], a] += value
        rows.append(np.concatenate([radial.ravel(), angular.ravel()]))
    return np.array(rows)


@pytest.mark.parametrize("angular", ["g4", "g5"])
@pytest.mark.parametrize("name", ["water", "silicon", "silicon_ani"])
def test_symmetry_functions_match_a_direct_loop(name, angular):
    if name == "water":
        atoms, elements = molecule("H2O"), [1, 8]
        config = BehlerParrinelloConfig(cutoff=4.0, radial=6, angular=angular, angular_etas=[0.01, 0.3],
                                        angular_zetas=[1.0, 2.0, 4.0])
    else:  # a periodic cell smaller than twice the cutoff: images of the same atom are distinct neighbours
        atoms, elements = bulk("Si", "diamond", a=5.43), [14]
        atoms.positions += np.random.default_rng(0).normal(0, 0.05, atoms.positions.shape)
        config = BehlerParrinelloConfig(cutoff=4.2, radial_centres=[0.0, 1.1, 2.3, 3.0], radial_eta=1.7,
                                        angular=angular,  # user-given grid
                                        angular_cutoff=3.0 if name == "silicon_ani" else None)  # ANI style
    term = BehlerParrinello(config, elements).double()
    graph = AtomicGraph.from_atoms(atoms, config.cutoff)
    edges = build_edges(graph, graph.positions, graph.cell, NeighborRequest(config.cutoff))
    species = torch.tensor([elements.index(z) for z in atoms.numbers])
    ours = term.features(species, edges).numpy()
    reference = direct_loop(atoms, elements, config, term)
    assert ours.shape == reference.shape and np.abs(reference).max() > 0.1
    np.testing.assert_allclose(ours, reference, rtol=1e-10, atol=1e-12)


def small_bp():
    config = BehlerParrinelloConfig(cutoff=3.5, radial=6, hidden=[16, 16], angular_etas=[0.05])
    return BehlerParrinello(config, ["H", "C", "O"])


class TestBehlerParrinello(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        term = small_bp()
        with torch.no_grad():  # non-trivial standardisation, as after fit_to_data
            term.feature_mean.uniform_(0.0, 0.5)
            term.feature_std.uniform_(0.5, 2.0)
        return Potential([term], ["H", "C", "O"], e0={"H": -0.5, "C": -1.5, "O": -2.0}, scale=0.5)


def test_fit_to_data_standardises_the_training_features():
    from nnip.data import bundled, read

    frames = read(bundled("ethanol_test.extxyz"))[:20]
    potential = Potential([small_bp()], ["H", "C", "O"]).double()
    graphs = [AtomicGraph.from_atoms(a, potential.cutoff) for a in frames]
    potential.fit_terms_to_data(graphs)
    term = potential.terms[0]
    edges = [build_edges(g, g.positions, g.cell, NeighborRequest(term.cutoff)) for g in graphs]
    features = torch.cat([term.features(potential.species(g.atomic_numbers), e) for g, e in zip(graphs, edges)])
    species = torch.cat([potential.species(g.atomic_numbers) for g in graphs])
    for element in range(3):  # standardised per centre element: H, C and O environments differ
        mine = features[species == element]
        standardised = (mine - term.feature_mean[element]) / term.feature_std[element]
        varying = mine.std(dim=0) > 1e-8
        assert torch.allclose(standardised.mean(dim=0), torch.zeros(1, dtype=torch.float64), atol=1e-10)
        assert torch.allclose(standardised[:, varying].std(dim=0, unbiased=False), torch.ones(1, dtype=torch.float64))


def test_integer_zetas_only():
    from nnip.errors import ConfigError

    with pytest.raises(ConfigError, match="angular_zetas must be integers"):
        BehlerParrinelloConfig(angular_zetas=[1.5])
