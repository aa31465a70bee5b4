"""Terms linear in their coefficients, and the design matrix of a potential's linear terms.

A :class:`LinearTerm` gives atom i the energy e_i = features(i) . coefficients[species_i]. The
energy of a structure is then linear in all coefficients, E = X c + (everything else), and so are
its forces, -dX/dr c, and its stress, (1/V) dX/dstrain c. :func:`design` returns those rows
X, -dX/dr and (1/V) dX/dstrain for a batch of structures, which is all a closed-form fit
(nnip.training.least_squares) or a Bayesian posterior needs.

The derivative rows are directional derivatives by forward-mode automatic differentiation: one
pass per Cartesian component of atom a in every structure of the batch at once (structures do not
interact), so 3 x (largest structure) passes for any number of coefficients, and one pass per
strain component for the stress. Terms of the density kind (:class:`DensityTerm`: linear ACE, the
sparse GP) get their rows by the chain rule through their atomic basis instead (density.py), one
direction per component of the atomic basis, independent of the size of the largest structure:
chosen when that is fewer than ``CHAIN_RULE_ADVANTAGE`` times the generic passes (periodic cells of
tens of atoms, not small molecules with many elements).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as forward_ad
from torch import nn

from nnip.data.graph import AtomicGraph
from nnip.nn.scatter import scatter_sum
from nnip.potentials.contract.base import Edges, Potential, Term
from nnip.potentials.contract.density import density_rows
from nnip.potentials.contract.edges import build_edges

__all__ = ["LinearTerm", "DensityTerm", "Design", "linear_terms", "design", "n_coefficients", "get_coefficients",
           "set_coefficients", "prior_precision"]


class LinearTerm(Term):
    """A term linear in ``coefficients`` (S, F): e_i = features(i) . coefficients[species_i], in eV."""

    coefficients: nn.Parameter

    @abc.abstractmethod
    def features(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Features (N, F) of every atom."""

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        return (self.features(species, edges) * self.coefficients.index_select(0, species)).sum(dim=1)

    def prior_precision(self) -> torch.Tensor | None:
        """The matrix P (S F, S F) of the ridge penalty lambda c^T P c on the flattened coefficients (the
        precision of their Gaussian prior, up to lambda / sigma^2); None: the identity."""
        return None


class DensityTerm(LinearTerm):
    """A linear term whose features are a function of the atomic cluster basis A_i (nnip.nn.ace.ACEBasis
    ``basis``): features = from_invariants(species, basis(...)). Its design rows follow by the chain rule
    edge by edge (nnip.potentials.contract.density), much faster than generic forward-mode rows."""

    basis: nn.Module

    @abc.abstractmethod
    def from_invariants(self, species: torch.Tensor, invariants: torch.Tensor) -> torch.Tensor:
        """Features (N, F) from the basis's invariants (N, n_invariants)."""

    def features(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        invariants = self.basis(species, edges.center, edges.neighbor, edges.vectors, edges.lengths)
        return self.from_invariants(species, invariants)

    def n_features_per_atom(self) -> int:
        """F, the features of one atom."""
        return self.coefficients.shape[1]


def linear_terms(potential: Potential) -> list[LinearTerm]:
    """The potential's linear terms, in order."""
    return [term for term in potential.terms if isinstance(term, LinearTerm)]


def n_coefficients(potential: Potential) -> int:
    """Number of coefficients of all linear terms (the columns of the design)."""
    return sum(term.coefficients.numel() for term in linear_terms(potential))


def get_coefficients(potential: Potential) -> torch.Tensor:
    """All linear coefficients as one vector (P,), in the order of the design's columns."""
    return torch.cat([term.coefficients.detach().reshape(-1) for term in linear_terms(potential)])


def prior_precision(potential: Potential, width: int) -> torch.Tensor | None:
    """Block-diagonal ridge matrix (width, width), float64, of all linear terms' coefficients, then the identity for
    the remaining ``width`` - P columns (E0); None when every block is the identity."""
    blocks, custom = [], False
    for term in linear_terms(potential):
        block = term.prior_precision()
        custom |= block is not None
        blocks.append(torch.eye(term.coefficients.numel(), dtype=torch.float64) if block is None
                      else block.detach().to(torch.float64))
    if not custom:
        return None
    rest = width - sum(b.shape[0] for b in blocks)
    return torch.block_diag(*blocks, torch.eye(rest, dtype=torch.float64))


@torch.no_grad()
def set_coefficients(potential: Potential, values: torch.Tensor) -> None:
    """Set all linear coefficients from one vector (P,) (the design's column order)."""
    start = 0
    for term in linear_terms(potential):
        size = term.coefficients.numel()
        term.coefficients.copy_(values[start:start + size].reshape(term.coefficients.shape))
        start += size


@dataclass
class Design:
    """Rows of the linear terms: E = energy @ c, F = forces @ c, stress = stress @ c (plus the other terms).

    Shapes: energy (B, P) eV; forces (N, 3, P) eV/Å; stress (B, 3, 3, P) eV/Å^3 (NaN rows where a
    structure has no volume) or None when not asked for.
    """

    energy: torch.Tensor
    forces: torch.Tensor | None
    stress: torch.Tensor | None


def _sums(potential: Potential, graph: AtomicGraph, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Per-structure sums of every linear term's features by species, (B, P)."""
    species = potential.species(graph.atomic_numbers)
    edges = build_edges(graph, positions, cell, potential.neighbor_request())
    blocks = []
    n_species = len(potential.elements)
    for term in linear_terms(potential):
        term_edges = edges if term.cutoff >= potential.cutoff else edges.within(term.cutoff)
        features = term.features(species, term_edges)
        rows = graph.structure_index * n_species + species
        summed = scatter_sum(features, rows, graph.n_structures * n_species)
        blocks.append(summed.view(graph.n_structures, -1))
    return torch.cat(blocks, dim=1)


def _tangent(positions: torch.Tensor, cell: torch.Tensor, graph: AtomicGraph, direction) -> tuple:
    """Positions and cell moved along one direction: ("atom", a, c) or ("strain", alpha, beta)."""
    kind, first, second = direction
    if kind == "atom":
        step = torch.zeros_like(positions)
        offsets = torch.cumsum(graph.n_atoms, 0) - graph.n_atoms
        present = graph.n_atoms > first
        step[offsets[present] + first, second] = 1.0
        return step, torch.zeros_like(cell)
    strain = torch.zeros(3, 3, dtype=positions.dtype, device=positions.device)
    strain[first, second] += 0.5
    strain[second, first] += 0.5
    return positions @ strain, cell @ strain


def _directional(potential, graph, positions, cell, direction) -> torch.Tensor:
    """d(feature sums)/d(direction), (B, P), by forward-mode differentiation."""
    position_step, cell_step = _tangent(positions, cell, graph, direction)
    with forward_ad.dual_level():
        dual_positions = forward_ad.make_dual(positions, position_step)
        dual_cell = forward_ad.make_dual(cell, cell_step)
        return forward_ad.unpack_dual(_sums(potential, graph, dual_positions, dual_cell)).tangent


def _density_design(potential: Potential, graph: AtomicGraph, forces: bool, stress: bool) -> Design:
    """The design of a potential whose linear terms are all density terms, by the chain rule (density.py)."""
    species = potential.species(graph.atomic_numbers)
    edges = build_edges(graph, graph.positions, graph.cell, potential.neighbor_request())
    blocks = []
    for term in linear_terms(potential):
        term_edges = edges if term.cutoff >= potential.cutoff else edges.within(term.cutoff)
        blocks.append(density_rows(term, species, term_edges, graph.structure_index, graph.n_structures,
                                   len(potential.elements), forces, stress))
    energy = torch.cat([b[0] for b in blocks], dim=1)
    force_rows = torch.cat([b[1] for b in blocks], dim=2) if forces else None
    stress_rows = _stress(torch.cat([b[2] for b in blocks], dim=3), graph) if stress else None
    return Design(energy, force_rows, stress_rows)


def _stress(strain_rows: torch.Tensor, graph: AtomicGraph) -> torch.Tensor:
    """Strain derivatives (B, 3, 3, P) divided by the volume; NaN where a structure has no volume."""
    volume = torch.linalg.det(graph.cell).abs()
    periodic = graph.pbc.all(dim=1) & (volume > 0)
    scaled = strain_rows / volume.where(periodic, 1.0)[:, None, None, None]
    return torch.where(periodic[:, None, None, None], scaled, float("nan"))


#: the chain rule's directions (components of A) may be this many times the generic passes (3 per atom of the
#: largest structure) and still cost less: a generic pass re-evaluates the whole basis, not only the invariants
CHAIN_RULE_ADVANTAGE = 4


def _chain_rule_pays(potential: Potential, graph: AtomicGraph) -> bool:
    """Whether all linear terms are density terms and their Jacobians cost less than the generic passes."""
    terms = linear_terms(potential)
    if not terms or not all(isinstance(term, DensityTerm) for term in terms):
        return False
    directions = max(term.basis.n_species * term.basis.n_radial * (term.basis.l_max + 1) ** 2 for term in terms)
    return directions <= CHAIN_RULE_ADVANTAGE * 3 * int(graph.n_atoms.max())


@torch.no_grad()
def design(potential: Potential, graph: AtomicGraph, forces: bool = True, stress: bool = False) -> Design:
    """The design rows of ``graph``'s structures for the potential's linear terms (module docstring)."""
    if _chain_rule_pays(potential, graph):
        return _density_design(potential, graph, forces, stress)
    positions, cell = graph.positions, graph.cell
    energy = _sums(potential, graph, positions, cell)
    force_rows = stress_rows = None
    if forces:
        force_rows = torch.zeros(positions.shape[0], 3, energy.shape[1], dtype=energy.dtype, device=energy.device)
        offsets = torch.cumsum(graph.n_atoms, 0) - graph.n_atoms
        for a in range(int(graph.n_atoms.max())):
            present = graph.n_atoms > a
            for c in range(3):
                derivative = _directional(potential, graph, positions, cell, ("atom", a, c))
                force_rows[offsets[present] + a, c] = -derivative[present]
    if stress:
        strain_rows = torch.zeros(energy.shape[0], 3, 3, energy.shape[1], dtype=energy.dtype, device=energy.device)
        for alpha in range(3):
            for beta in range(alpha, 3):
                derivative = _directional(potential, graph, positions, cell, ("strain", alpha, beta))
                strain_rows[:, alpha, beta] = strain_rows[:, beta, alpha] = derivative
        stress_rows = _stress(strain_rows, graph)
    return Design(energy, force_rows, stress_rows)
