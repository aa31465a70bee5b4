"""Tiny deterministic structures for tests, scaled to a potential's typical bond length."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from nnip import keys
from nnip.data.graph import AtomicGraph

__all__ = ["cluster", "periodic_cell", "evaluate", "random_rotation", "rotated", "term_inputs", "argon_clusters"]


def _species(elements: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    """n atomic numbers drawn from ``elements``, each element at least once when n allows."""
    numbers = list(elements) * (n // len(elements) + 1)
    numbers = numbers[:n] if n >= len(elements) else list(elements)[:n]
    rng.shuffle(numbers)
    return numbers


def cluster(elements: Sequence[int], n_atoms: int, distance: float, seed: int = 0) -> Atoms:
    """Non-periodic cluster: n_atoms on a jittered cubic grid of spacing ``distance`` Å."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_atoms ** (1 / 3)))
    grid = np.array([(x, y, z) for x in range(side) for y in range(side) for z in range(side)], dtype=float)
    grid = grid[rng.permutation(len(grid))[:n_atoms]]
    positions = distance * (grid + rng.uniform(-0.12, 0.12, size=grid.shape))
    return Atoms(numbers=_species(elements, n_atoms, rng), positions=positions)


def periodic_cell(elements: Sequence[int], distance: float, seed: int = 0) -> Atoms:
    """Triclinic periodic cell of 8 atoms on a jittered 2x2x2 grid with spacing about ``distance`` Å.

    The cell (about 2 * distance per side) is usually smaller than the cutoff, so atoms
    interact with several images of the same neighbour.
    """
    rng = np.random.default_rng(seed)
    cell = 2.0 * distance * (np.eye(3) + rng.uniform(-0.12, 0.12, size=(3, 3)))
    grid = np.array([(x, y, z) for x in range(2) for y in range(2) for z in range(2)], dtype=float)
    fractional = (grid + 0.5 + rng.uniform(-0.08, 0.08, size=grid.shape)) / 2.0
    return Atoms(numbers=_species(elements, 8, rng), scaled_positions=fractional, cell=cell, pbc=True)


def random_rotation(seed: int, reflect: bool) -> np.ndarray:
    """Random orthogonal 3x3 matrix; det -1 when ``reflect``."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] = -q[:, 0]
    return q


def rotated(atoms: Atoms, rotation: np.ndarray) -> Atoms:
    """A copy with positions and cell rotated (or reflected) by the 3x3 matrix ``rotation``."""
    out = atoms.copy()
    out.positions = atoms.positions @ rotation.T
    out.set_cell(atoms.cell.array @ rotation.T, scale_atoms=False)
    return out


def term_inputs(term, atoms: Atoms, dtype: torch.dtype = torch.float64):
    """(species (N,), edges within the term's cutoff) of ``atoms``: what a local term's forward takes (a half
    list for terms that take one, as a Potential of the term alone hands it)."""
    from nnip.potentials.contract.base import Potential
    from nnip.potentials.contract.edges import build_edges

    request = Potential([term], term.elements).neighbor_request()
    graph = AtomicGraph.from_atoms(atoms, request, dtype=dtype)
    species = torch.as_tensor([term.elements.index(int(z)) for z in atoms.numbers])
    return species, build_edges(graph, graph.positions, graph.cell, request)


def evaluate(potential, atoms: Atoms, stress: bool = False, margin: float = 0.5) -> dict[str, np.ndarray]:
    """Energy (float), forces (N, 3), atomic energies (N,) and optionally stress (3, 3) as numpy.

    The graph is built with ``margin`` Å beyond the potential's cutoff.
    """
    dtype = potential.dtype
    graph = AtomicGraph.from_atoms(atoms, potential.cutoff + margin, dtype=dtype)
    out = potential(graph, compute_forces=True, compute_stress=stress)
    result = {
        "energy": float(out[keys.ENERGY].detach()[0]),
        "forces": out[keys.FORCES].detach().numpy().astype(float),
        "atomic_energies": out[keys.ATOMIC_ENERGIES].detach().numpy(),
    }
    if stress:
        result["stress"] = out[keys.STRESS].detach()[0].numpy().astype(float)
    return result


def energy_of(potential, graph: AtomicGraph, positions: torch.Tensor) -> torch.Tensor:
    """Energy (B,) for ``positions`` on the fixed edges of ``graph``."""
    return potential(graph.with_positions(positions), compute_forces=False)[keys.ENERGY]


def argon_clusters(n: int, sigma: float, epsilon: float, cutoff: float = 8.0, seed: int = 0) -> list[Atoms]:
    """n jittered 13-atom argon icosahedra labelled by ASE's LJ calculator (energy zero at ``cutoff``).

    Positions get Gaussian noise of 0.06 sigma (a warm cluster). Labels (energy in eV,
    forces in eV/Å) sit on a SinglePointCalculator, as :func:`nnip.read` leaves them.
    """
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.cluster import Icosahedron

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        atoms = Icosahedron("Ar", 2, latticeconstant=2 ** (1 / 6) * sigma * np.sqrt(2))
        atoms.positions += rng.normal(0.0, 0.06 * sigma, atoms.positions.shape)
        atoms.calc = LennardJones(sigma=sigma, epsilon=epsilon, rc=cutoff, smooth=False)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames
