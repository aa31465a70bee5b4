"""Neighbour lists equal ASE's exactly; skin reuse gives the same results as rebuilding."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list as ase_neighbor_list
from ase.units import fs

from nnip import Calculator
from nnip.data import VerletNeighborList, neighbor_list
from nnip.md import maxwell_boltzmann
from nnip.potentials import LennardJones, LennardJonesConfig, Potential


def _random_triclinic(seed: int) -> tuple[Atoms, float]:
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.0, 7.0, 3)) + np.triu(rng.uniform(-1.5, 1.5, (3, 3)), 1)
    cell = cell[rng.permutation(3)] if seed % 3 == 0 else cell  # also non-upper-triangular cells
    n = int(rng.integers(1, 14))
    pbc = rng.random(3) < 0.75 if seed % 4 else np.ones(3, bool)
    atoms = Atoms(numbers=[6] * n, scaled_positions=rng.random((n, 3)), cell=cell, pbc=pbc)
    return atoms, float(rng.uniform(1.5, 6.5))


def _triples(i, j, shifts):
    return sorted(zip(np.asarray(i).tolist(), np.asarray(j).tolist(), map(tuple, np.asarray(shifts).tolist())))


@pytest.mark.parametrize("seed", range(40))
def test_edges_equal_ase_on_random_triclinic_cells(seed):
    atoms, cutoff = _random_triclinic(seed)
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)
    assert edge_index.dtype == torch.int64 and not shifts.is_floating_point()
    i, j, s = ase_neighbor_list("ijS", atoms, cutoff)
    assert _triples(edge_index[0], edge_index[1], shifts) == _triples(i, j, s)


def test_cell_smaller_than_cutoff_sees_many_images_of_one_neighbour():
    atoms = Atoms("Cu", positions=[[0, 0, 0]], cell=np.diag([2.0, 2.5, 3.0]), pbc=True)
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 5.0)
    assert edge_index.shape[1] > 20
    assert (edge_index == 0).all()  # the atom's own images
    assert len({tuple(s) for s in shifts.tolist()}) == edge_index.shape[1]
    vectors = shifts.double() @ torch.tensor(atoms.cell.array)
    assert (vectors.norm(dim=1) < 5.0).all()


def test_non_periodic_structure_has_no_shifts():
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 6, (20, 3))
    edge_index, shifts = neighbor_list(positions, np.zeros((3, 3)), np.zeros(3, bool), 3.0)
    assert (shifts == 0).all()
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    assert edge_index.shape[1] == int(((distances < 3.0) & (distances > 0)).sum())


def test_skin_list_rebuilds_only_after_half_skin_displacement():
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    verlet = VerletNeighborList(cutoff=6.0, skin=1.0)
    verlet.get(atoms.positions, atoms.cell.array, atoms.pbc)
    moved = atoms.positions.copy()
    moved[3] += [0.49, 0.0, 0.0]
    verlet.get(moved, atoms.cell.array, atoms.pbc)
    assert verlet.n_builds == 1
    moved[3] += [0.02, 0.0, 0.0]
    verlet.get(moved, atoms.cell.array, atoms.pbc)
    assert verlet.n_builds == 2
    verlet.get(moved, atoms.cell.array * 1.01, atoms.pbc)
    assert verlet.n_builds == 3


def test_md_with_skin_matches_rebuilding_every_step():
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    maxwell_boltzmann(atoms, 300.0, seed=1)
    potential = Potential([LennardJones(LennardJonesConfig(cutoff=7.0), ["Ar"])], ["Ar"])
    skinned, fresh = atoms.copy(), atoms.copy()
    skinned.calc = Calculator(potential, skin=0.6)
    fresh.calc = Calculator(potential, skin=0.0)
    dyn_a = VelocityVerlet(skinned, timestep=10 * fs)
    dyn_b = VelocityVerlet(fresh, timestep=10 * fs)
    for _ in range(60):
        dyn_a.run(1)
        dyn_b.run(1)
        np.testing.assert_allclose(skinned.get_forces(), fresh.get_forces(), rtol=0, atol=1e-12)
        assert skinned.get_potential_energy() == pytest.approx(fresh.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(skinned.get_stress(), fresh.get_stress(), atol=1e-14)
    assert fresh.calc.neighbors.n_builds >= 60
    assert 1 < skinned.calc.neighbors.n_builds < 30


@pytest.mark.parametrize("seed", range(12))
def test_half_list_holds_each_unordered_pair_once(seed):
    atoms, cutoff = _random_triclinic(seed)
    full = _triples(*neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)[0],
                    neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff)[1])
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, cutoff, full=False)
    half = _triples(edge_index[0], edge_index[1], shifts)
    mirrored = sorted(half + [(j, i, tuple(-s for s in S)) for i, j, S in half])
    assert mirrored == full


def test_pair_potential_gives_the_same_results_on_half_and_full_lists():
    from nnip.data import AtomicGraph
    from nnip.data.neighbors import NeighborRequest
    from nnip.testing import periodic_cell

    atoms = periodic_cell([18, 36], 3.8, seed=7)
    config = LennardJonesConfig(epsilon={"Ar": 0.0104, "Kr": 0.014}, sigma={"Ar": 3.4, "Kr": 3.6}, cutoff=9.0)
    potential = Potential([LennardJones(config, ["Ar", "Kr"])], ["Ar", "Kr"])
    results = []
    for full in (True, False):
        edges = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, 9.0, full=full)
        graph = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                        NeighborRequest(9.0, full=full), edges=edges)
        results.append(potential(graph, compute_stress=True))
    for key in ("energy", "atomic_energies", "forces", "stress"):
        torch.testing.assert_close(results[0][key], results[1][key], rtol=1e-12, atol=1e-14)


def test_degenerate_periodic_cell_is_an_error_not_a_crash():
    with pytest.raises(ValueError, match="zero-volume cell under pbc"):
        neighbor_list(np.zeros((2, 3)) + [[0, 0, 0], [1, 1, 1]], np.diag([4.0, 4.0, 0.0]), np.ones(3, bool), 3.0)


def test_neighbor_request_covers_requests_of_no_larger_cutoff_and_a_full_list_serves_a_half_one():
    from nnip.data.neighbors import NeighborRequest

    full, half = NeighborRequest(5.0), NeighborRequest(5.0, full=False)
    assert NeighborRequest.of(5.0) == full and NeighborRequest.of(half) is half
    assert full.covers(half) and full.covers(NeighborRequest(4.0)) and half.covers(NeighborRequest(4.0, full=False))
    assert not half.covers(full) and not full.covers(NeighborRequest(5.5))
    assert NeighborRequest(5.0, skin=0.5).list_cutoff == 5.5
    for bad in ((-1.0, True, 0.0), (5.0, True, -0.1), (float("inf"), True, 0.0)):
        with pytest.raises(ValueError, match="cutoff and skin"):
            NeighborRequest(*bad)
