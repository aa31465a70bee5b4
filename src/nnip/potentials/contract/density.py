"""Design rows of a density-expansion term by the chain rule through its atomic basis, edge by edge.

A term of the ACE kind (linear ACE, a GP on ACE descriptors) gives atom i the features
f_i = g(A_i) of its pooled basis A_i = sum_{j in N(i)} phi(r_ij) (nnip.nn.ace). Then

    d f_i / d r_ij = J_i . d phi(r_ij) / d r_ij,      J_i = d g / d A_i  (F, channels, components)

so the derivative of every feature sum with respect to every edge vector costs one Jacobian J per
atom (forward mode, one direction per component of A, vectorised) and one derivative of phi per
edge (three directions), instead of re-evaluating the whole basis for each atomic coordinate as
generic forward-mode rows do (nnip.potentials.contract.linear). Forces follow from the edge
vectors r_ij = r_j - r_i: dE/dr_a = sum_{e: j = a} dE/dr_e - sum_{e: i = a} dE/dr_e, and the strain
derivative is sum_e r_e (x) dE/dr_e. Memory is bounded by working in chunks of directions and edges.
"""

from __future__ import annotations

import torch
from torch.func import jvp, vmap

from nnip.nn.scatter import scatter_sum

__all__ = ["density_rows"]

#: elements of the largest temporary tensor of a chunk (float64: 8 bytes each)
CHUNK_ELEMENTS = 2 ** 24


def _jacobian(term, species: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """J (N, F, channels * components): d features / d A of every atom, by forward mode (one direction per
    component of A, in chunks)."""
    n, channels, components = a.shape
    width = channels * components
    directions = torch.eye(width, dtype=a.dtype, device=a.device).view(width, 1, channels, components)

    def features(pooled):
        return term.from_invariants(species, term.basis.invariants(pooled))

    def column(direction):
        return jvp(features, (a,), (direction.expand_as(a),))[1]

    per_direction = max(1, n * max(term.n_features_per_atom(), width))
    chunk = max(1, CHUNK_ELEMENTS // (8 * per_direction))
    columns = [vmap(column)(directions[s:s + chunk]) for s in range(0, width, chunk)]
    return torch.cat(columns).permute(1, 2, 0)


def _edge_derivatives(basis, vectors: torch.Tensor) -> torch.Tensor:
    """d phi / d r (E, n_radial * components, 3) of every edge's one-particle functions."""
    def functions(v):
        return basis.edge_functions(v, torch.linalg.vector_norm(v, dim=1))

    eye = torch.eye(3, dtype=vectors.dtype, device=vectors.device)
    tangents = vmap(lambda d: jvp(functions, (vectors,), (d.expand_as(vectors),))[1])(eye)  # (3, E, R, K)
    return tangents.flatten(2).permute(1, 2, 0)


def _slots(center: torch.Tensor, n: int) -> tuple[torch.Tensor, int]:
    """Each edge's position among its centre's edges (E,), and the largest number of edges of one centre."""
    counts = torch.bincount(center, minlength=n)
    order = torch.argsort(center, stable=True)
    first = torch.cumsum(counts, 0) - counts
    slots = torch.empty_like(center)
    slots[order] = torch.arange(center.shape[0], device=center.device) - first.index_select(0, center[order])
    return slots, int(counts.max()) if n else 0


def _edge_gradients(jacobian: torch.Tensor, derivative: torch.Tensor, center: torch.Tensor,
                    neighbour_species: torch.Tensor, n_species: int) -> torch.Tensor:
    """dF_i/dr_e (E, 3, F) of the edges of n atoms: per atom, J_i (F, S R K) times its edges' d phi placed in
    their neighbour's element block, as one batched product."""
    n, width = jacobian.shape[:2]
    slots, most = _slots(center, n)
    placed = torch.zeros(n, n_species, derivative.shape[1], most, 3, dtype=derivative.dtype, device=derivative.device)
    placed[center, neighbour_species, :, slots, :] = derivative
    product = torch.bmm(jacobian.reshape(n, width, -1), placed.view(n, -1, most * 3)).view(n, width, most, 3)
    return product[center, :, slots, :].transpose(1, 2)


def density_rows(term, species: torch.Tensor, edges, structure_index: torch.Tensor, n_structures: int,
                 n_species: int, forces: bool, strain: bool):
    """Feature sums and their derivatives for one density term, columns (species, feature) flattened.

    Returns energy (B, S F); force rows -dE/dr (N, 3, S F) or None; strain derivatives dE/d(strain)
    (B, 3, 3, S F) (symmetric; divide by the volume for stress) or None.
    """
    basis = term.basis
    a = basis.pool(species, edges.center, edges.neighbor, basis.edge_functions(edges.vectors, edges.lengths))
    features = term.from_invariants(species, basis.invariants(a))
    n, width = features.shape
    energy = scatter_sum(features, structure_index * n_species + species, n_structures * n_species)
    energy = energy.view(n_structures, n_species * width)
    if not (forces or strain):
        return energy, None, None
    derivative = _edge_derivatives(basis, edges.vectors)  # (E, R K, 3)
    block = species.index_select(0, edges.center)
    force_rows = torch.zeros(n * n_species, 3, width, dtype=features.dtype, device=features.device) if forces else None
    strain_rows = torch.zeros(n_structures * n_species, 3, 3, width, dtype=features.dtype,
                              device=features.device) if strain else None
    atoms_per_chunk = max(1, CHUNK_ELEMENTS // (width * a.shape[1] * a.shape[2]))
    for start in range(0, n, atoms_per_chunk):
        stop = min(start + atoms_per_chunk, n)
        mine = (edges.center >= start) & (edges.center < stop)
        jacobian = _jacobian(term, species[start:stop], a[start:stop])
        center = edges.center[mine]
        gradient = _edge_gradients(jacobian, derivative[mine], center - start,
                                   species.index_select(0, edges.neighbor[mine]), basis.n_species)
        rows = center * n_species + block[mine]
        if forces:
            force_rows.index_add_(0, edges.neighbor[mine] * n_species + block[mine], -gradient)
            force_rows.index_add_(0, rows, gradient)
        if strain:
            virial = edges.vectors[mine][:, :, None, None] * gradient[:, None, :, :]
            target = structure_index.index_select(0, center) * n_species + block[mine]
            strain_rows.index_add_(0, target, 0.5 * (virial + virial.transpose(1, 2)))
    if forces:
        force_rows = force_rows.view(n, n_species, 3, width).permute(0, 2, 1, 3).reshape(n, 3, n_species * width)
    if strain:
        strain_rows = strain_rows.view(n_structures, n_species, 3, 3, width).permute(0, 2, 3, 1, 4)
        strain_rows = strain_rows.reshape(n_structures, 3, 3, n_species * width)
    return energy, force_rows, strain_rows
