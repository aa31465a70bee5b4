"""Linear ACE: the potential contract, a basis of independent invariants, known polynomials of body order 3
and 4 represented exactly, design rows equal to finite differences, and the closed-form fit equal to numpy's
ridge solution."""

import numpy as np
import pytest
import torch
from ase import Atoms

from nnip.data.graph import AtomicGraph
from nnip.nn.ace import ACEBasis, basis_labels
from nnip.potentials import Potential
from nnip.potentials.contract.linear import design, get_coefficients, set_coefficients
from nnip.potentials.learned.linear_ace import LinearACE, LinearACEConfig
from nnip.testing import PotentialContract
from nnip.testing.structures import periodic_cell

ELEMENTS = ["H", "C", "O"]
CUTOFF = 4.0


def small_ace(elements=ELEMENTS, degrees=(2, 3, 2), radial=3, l_max=2) -> LinearACE:
    return LinearACE(LinearACEConfig(cutoff=CUTOFF, radial=radial, l_max=l_max, degrees=list(degrees)), elements)


def with_random_coefficients(potential: Potential, scale: float = 0.05) -> Potential:
    set_coefficients(potential, scale * torch.randn(get_coefficients(potential).shape, dtype=torch.float64))
    return potential


class TestLinearACE(PotentialContract):
    distance = 1.4
    nve_timestep = 0.25

    def make_potential(self):
        potential = Potential([small_ace()], ELEMENTS, e0={"H": -0.5, "C": -1.5, "O": -2.0})
        return with_random_coefficients(potential.double())


def _environments(n_species: int, count: int, seed: int):
    """``count`` random neighbourhoods (4 to 11 neighbours within the cutoff, random elements) as centre-
    neighbour edges; returns species, centre, neighbour, vectors, lengths and the centres' indices."""
    rng = np.random.default_rng(seed)
    species, center, neighbor, vectors, centres = [], [], [], [], []
    for _ in range(count):
        k = int(rng.integers(4, 12))
        directions = rng.normal(size=(k, 3))
        directions *= (0.8 + (CUTOFF - 1.0) * rng.random((k, 1))) / np.linalg.norm(directions, axis=1, keepdims=True)
        first = len(species)
        centres.append(first)
        species += [0] + rng.integers(0, n_species, k).tolist()
        center += [first] * k
        neighbor += list(range(first + 1, first + 1 + k))
        vectors.append(directions)
    vectors = torch.tensor(np.concatenate(vectors))
    return (torch.tensor(species), torch.tensor(center), torch.tensor(neighbor), vectors,
            torch.linalg.vector_norm(vectors, dim=1), torch.tensor(centres))


@pytest.mark.parametrize("n_species, radial, l_max, degrees", [(1, 6, 3, (5, 6, 5)), (2, 4, 3, (3, 5, 4))])
def test_basis_functions_are_independent_invariants_one_per_multiset(n_species, radial, l_max, degrees):
    """Rank of the features on random environments = number of features = number of multisets {(z, n, l)}
    of each correlation order that couple to an O(3) invariant (triangle rule, even sum of l) within the
    degree budget, counted here by brute force over ordered tuples."""
    basis = ACEBasis(n_species, CUTOFF, radial, l_max, degrees).double()
    items = [(z, n, l) for z in range(n_species) for n in range(radial) for l in range(l_max + 1)]
    expected = sum(1 for z, n, l in items if l == 0 and n <= degrees[0])
    expected += len({tuple(sorted((a, b))) for a in items for b in items
                     if a[2] == b[2] and a[1] + b[1] + a[2] + b[2] <= degrees[1]})
    expected += len({tuple(sorted((a, b, c))) for a in items for b in items for c in items
                     if abs(a[2] - b[2]) <= c[2] <= a[2] + b[2] and (a[2] + b[2] + c[2]) % 2 == 0
                     and a[1] + b[1] + c[1] + a[2] + b[2] + c[2] <= degrees[2]})
    assert basis.n_features == len(basis_labels(n_species, radial, l_max, degrees)) == expected
    *edges, centres = _environments(n_species, 4 * expected, seed=0)
    features = basis(*edges)[centres]
    features = features / torch.linalg.vector_norm(features, dim=0)
    singular = torch.linalg.svdvals(features)
    assert int((singular > 1e-9 * singular[0]).sum()) == expected


def _radial_numpy(r: np.ndarray, n_radial: int, cutoff: float) -> np.ndarray:
    """R_n(r) written out: sqrt(2/rc) sin(k pi r / rc) / r, k = 1..n, times 1 - 28 x^6 + 48 x^7 - 21 x^8."""
    x = r / cutoff
    envelope = np.where(x < 1, 1 - 28 * x**6 + 48 * x**7 - 21 * x**8, 0.0)
    k = np.arange(1, n_radial + 1)
    return np.sqrt(2 / cutoff) * np.sin(np.outer(r, k) * np.pi / cutoff) / r[:, None] * envelope[:, None]


def _polynomial_energy(atoms: Atoms) -> float:
    """sum_i [ sum_{j,k} f_j f_k P2(u_j . u_k) + sum_{j,k,l} g_j g_k g_l (u_j . u_k)(u_k . u_l) ], a 3-body and a
    4-body polynomial of the neighbours j, k, l of i (unrestricted sums), f = R_0 + 0.5 R_1, g = R_0."""
    total = 0.0
    positions = atoms.positions
    for i in range(len(atoms)):
        d = np.delete(positions - positions[i], i, axis=0)
        r = np.linalg.norm(d, axis=1)
        d, r = d[r < CUTOFF], r[r < CUTOFF]
        radial = _radial_numpy(r, 3, CUTOFF)
        f, g, u = radial[:, 0] + 0.5 * radial[:, 1], radial[:, 0], d / r[:, None]
        cosines = u @ u.T
        total += f @ (1.5 * cosines**2 - 0.5) @ f
        v = g @ u
        total += v @ (u.T * g) @ u @ v
    return float(total)


def _graph(atoms: Atoms, potential: Potential) -> AtomicGraph:
    return AtomicGraph.from_atoms(atoms, potential.neighbor_request(), dtype=torch.float64)


def test_known_three_and_four_body_polynomials_are_fitted_exactly():
    term = LinearACE(LinearACEConfig(cutoff=CUTOFF, radial=3, l_max=2, degrees=[2, 6, 4]), ["Si"])
    potential = Potential([term], ["Si"]).double()
    rng = np.random.default_rng(3)
    frames = [Atoms("Si" * 7, positions=rng.uniform(0, 3.2, (7, 3))) for _ in range(3 * term.n_features)]
    frames = [a for a in frames if min(np.linalg.norm(a.positions[i] - a.positions[j])
                                       for i in range(7) for j in range(i)) > 0.5]
    rows = torch.cat([design(potential, _graph(a, potential), forces=False).energy for a in frames])
    energies = torch.tensor([_polynomial_energy(a) for a in frames], dtype=torch.float64)
    solution = torch.linalg.lstsq(rows, energies).solution
    assert float((rows @ solution - energies).abs().max()) < 1e-9 * float(energies.abs().max())
    set_coefficients(potential, solution)
    test = Atoms("Si" * 6, positions=rng.uniform(0, 3.0, (6, 3)))
    out = potential(_graph(test, potential))
    assert float(out["energy"].detach()) == pytest.approx(_polynomial_energy(test), rel=1e-8, abs=1e-10)
    step, moved = 1e-5, test.copy()
    moved.positions[2, 1] += step
    minus = test.copy()
    minus.positions[2, 1] -= step
    difference = (_polynomial_energy(moved) - _polynomial_energy(minus)) / (2 * step)
    assert float(out["forces"][2, 1].detach()) == pytest.approx(-difference, rel=1e-6, abs=1e-8)


def test_design_rows_are_finite_differences_of_the_feature_sums():
    torch.manual_seed(0)
    potential = Potential([small_ace()], ELEMENTS).double()
    atoms = periodic_cell([1, 6, 8], 1.4, seed=5)
    rows = design(potential, _graph(atoms, potential), forces=True, stress=True)
    step = 1e-5
    for atom, component in ((0, 0), (3, 2), (7, 1)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, component] += step
        minus.positions[atom, component] -= step
        numeric = (design(potential, _graph(plus, potential), forces=False).energy -
                   design(potential, _graph(minus, potential), forces=False).energy) / (2 * step)
        torch.testing.assert_close(rows.forces[atom, component], -numeric[0], rtol=1e-6, atol=1e-8)
    strain = np.zeros((3, 3))
    strain[0, 1] = strain[1, 0] = step / 2
    sums = []
    for sign in (1, -1):
        deformed = atoms.copy()
        deformed.set_cell(atoms.cell.array @ (np.eye(3) + sign * strain), scale_atoms=True)
        sums.append(design(potential, _graph(deformed, potential), forces=False).energy[0])
    numeric = (sums[0] - sums[1]) / (2 * step) / atoms.get_volume()
    torch.testing.assert_close(rows.stress[0, 0, 1], numeric, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(rows.stress[0, 1, 0], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["linear_ace", "sparse_gp"])
def test_chain_rule_rows_equal_generic_forward_mode_rows(name, monkeypatch):
    """The density terms' design rows by the chain rule through the atomic basis (contract/density.py) equal the
    generic forward-mode rows, for a batch of periodic cells and a molecule of three elements."""
    from ase.build import molecule

    from nnip.data.batching import collate
    from nnip.potentials.contract import linear
    from nnip.potentials.learned.sparse_gp import SparseGP, SparseGPConfig

    torch.manual_seed(0)
    frames = [periodic_cell([1, 6, 8], 1.4, seed=k) for k in range(3)] + [molecule("CH3CH2OH")]
    term = small_ace() if name == "linear_ace" else SparseGP(
        SparseGPConfig(cutoff=CUTOFF, radial=3, l_max=2, degrees=[2, 3, 2], sparse_points=7), ELEMENTS)
    potential = Potential([term], ELEMENTS).double()
    graphs = [_graph(a, potential) for a in frames]
    potential.fit_terms_to_data(graphs)
    graph = collate(graphs)
    fast = design(potential, graph, forces=True, stress=True)
    monkeypatch.setattr(linear, "DensityTerm", ())  # no term is a density term: the generic rows
    generic = design(potential, graph, forces=True, stress=True)
    for key in ("energy", "forces", "stress"):
        expected = getattr(generic, key)
        torch.testing.assert_close(getattr(fast, key), expected, rtol=1e-10, atol=1e-12 * float(
            expected.nan_to_num().abs().max()), equal_nan=True)
