"""Candidate structures for labelling: random rattling and normal-mode sampling.

Normal-mode sampling (as for ANI-1's data): with the Hessian H (eV/Å^2) at a minimum and
masses m (amu), the mass-weighted Hessian M^-1/2 H M^-1/2 has eigenvalues w_k^2 and
eigenvectors e_k. A sample displaces the atoms by

    dx = M^-1/2 sum_k c_k e_k,   c_k ~ N(0, k_B T / w_k^2)

over the vibrational modes (the six, or five for linear molecules, smallest |w_k^2| are
translations and rotations and are left out), i.e. classical Boltzmann amplitudes at T:
each mode then holds k_B T / 2 of potential energy on average in the harmonic limit.
The Hessian comes from finite differences of any calculator's forces (:func:`hessian`,
e.g. an oracle) or, for an nnip potential, exactly by autograd (:func:`potential_hessian`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.ensemble import Ensemble

__all__ = ["rattled", "hessian", "potential_hessian", "normal_mode_samples"]


def rattled(atoms: Atoms, count: int, amplitude: float, seed: int = 0) -> list[Atoms]:
    """``count`` copies with Gaussian displacements of standard deviation ``amplitude`` Å per component."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        copy = atoms.copy()
        copy.calc = None
        copy.positions = atoms.positions + rng.normal(0.0, amplitude, atoms.positions.shape)
        out.append(copy)
    return out


def hessian(atoms: Atoms, calculator: Calculator, delta: float = 0.005) -> np.ndarray:
    """(3N, 3N) Hessian in eV/Å^2 by central differences of forces (2 x 3N force calls), symmetrised."""
    probe = atoms.copy()
    probe.calc = calculator
    n = len(atoms)
    matrix = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        columns = []
        for sign in (1.0, -1.0):
            probe.positions = atoms.positions.copy()
            probe.positions[k // 3, k % 3] += sign * delta
            columns.append(-probe.get_forces().ravel())
        matrix[:, k] = (columns[0] - columns[1]) / (2 * delta)
    return 0.5 * (matrix + matrix.T)


def potential_hessian(atoms: Atoms, potential: Potential | Ensemble) -> np.ndarray:
    """(3N, 3N) Hessian in eV/Å^2 of an nnip potential (an ensemble: of its mean) by autograd, float64."""
    potential = copy.deepcopy(potential).double()  # the caller's model keeps its dtype
    graph = AtomicGraph.from_atoms(atoms, potential.neighbor_request())
    positions = graph.positions.clone().requires_grad_(True)
    with torch.enable_grad():
        forces = potential(graph.with_positions(positions), compute_forces=True, create_graph=True)[keys.FORCES]
        flat = forces.reshape(-1)
        rows = [torch.autograd.grad(flat[k], positions, retain_graph=True, allow_unused=True)[0]
                for k in range(flat.numel())]
    matrix = -torch.stack([torch.zeros_like(positions) if row is None else row for row in rows]).reshape(len(flat), -1)
    matrix = matrix.detach().numpy()
    return 0.5 * (matrix + matrix.T)


def normal_mode_samples(atoms: Atoms, hessian_matrix: np.ndarray, temperature: float, count: int,
                        seed: int = 0) -> list[Atoms]:
    """``count`` structures displaced along the vibrational modes with Boltzmann amplitudes at ``temperature`` K."""
    masses = np.repeat(atoms.get_masses(), 3)
    weighted = hessian_matrix / np.sqrt(np.outer(masses, masses))
    eigenvalues, vectors = np.linalg.eigh(weighted)
    rigid = 5 if len(atoms) == 2 or _linear(atoms) else 6
    order = np.argsort(np.abs(eigenvalues))[rigid:]
    if np.any(eigenvalues[order] <= 0):
        raise ValueError("the Hessian has negative curvature along a vibration: relax the structure first")
    kt = units.kB * temperature
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        amplitudes = rng.normal(0.0, np.sqrt(kt / eigenvalues[order]))
        displacement = (vectors[:, order] @ amplitudes) / np.sqrt(masses)
        copy = atoms.copy()
        copy.calc = None
        copy.positions = atoms.positions + displacement.reshape(-1, 3)
        out.append(copy)
    return out


def _linear(atoms: Atoms) -> bool:
    centred = atoms.positions - atoms.positions.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[1] < 1e-3 * singular[0])
