"""Atom-centred symmetry functions (Behler), resolved by neighbour element, vectorised over edges and triplets.

With the cosine cutoff f_c (``nnip.nn.radial.cosine_cutoff``):

    G2_i[s, k]  = sum_{j in s} exp(-eta_k (r_ij - r_k)^2) f_c(r_ij)
    G4_i[p, a]  = 2^(1 - zeta_a) sum_{{j,k} in p} (1 + lambda_a cos theta_ijk)^zeta_a
                  exp(-eta_a (r_ij^2 + r_ik^2 + r_jk^2)) f_c(r_ij) f_c(r_ik) f_c(r_jk)
    G5_i[p, a]  = the same without the r_jk terms: exp(-eta_a (r_ij^2 + r_ik^2)) f_c(r_ij) f_c(r_ik)

s runs over neighbour elements and p over unordered element pairs (s_j, s_k); the angular
sums run over unordered pairs of distinct neighbours {j, k} of atom i (each once).

Reference: J. Behler, J. Chem. Phys. 134, 074106 (2011), Eqs. 6, 8, 9; Phys. Chem. Chem.
Phys. 13, 17930 (2011).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nnip.nn.radial import cosine_cutoff
from nnip.nn.scatter import scatter_sum
from nnip.nn.triplets import triplet_edges

__all__ = ["radial_g2", "angular_g4", "angular_g5", "element_pair_index"]


def element_pair_index(n_species: int, device=None) -> torch.Tensor:
    """(S, S) table of unordered element-pair ids: (a, b) and (b, a) share id, ids 0 .. S(S+1)/2 - 1."""
    table = torch.zeros(n_species, n_species, dtype=torch.int64, device=device)
    pair = 0
    for a in range(n_species):
        for b in range(a, n_species):
            table[a, b] = table[b, a] = pair
            pair += 1
    return table


def radial_g2(lengths: torch.Tensor, center: torch.Tensor, neighbor_species: torch.Tensor, n_atoms: int,
              n_species: int, etas: torch.Tensor, shifts: torch.Tensor, cutoff: float) -> torch.Tensor:
    """G2 features (N, S * K) from edges. Shapes: lengths, center, neighbor_species (E,); etas, shifts (K,)."""
    values = torch.exp(-etas * (lengths[:, None] - shifts) ** 2) * cosine_cutoff(lengths, cutoff)[:, None]
    summed = scatter_sum(values, center * n_species + neighbor_species, n_atoms * n_species)
    return summed.reshape(n_atoms, n_species * etas.shape[0])


def _angular(vectors, center, neighbor_species, n_atoms, pair_index, etas, zetas, cutoff, with_jk: bool):
    first, second = triplet_edges(center, n_atoms)
    r_ij, r_ik = vectors[first], vectors[second]
    d_ij, d_ik = r_ij.norm(dim=1), r_ik.norm(dim=1)
    cos = (r_ij * r_ik).sum(dim=1) / (d_ij * d_ik)
    squares = d_ij**2 + d_ik**2
    envelope = cosine_cutoff(d_ij, cutoff) * cosine_cutoff(d_ik, cutoff)
    if with_jk:
        d_jk = (r_ik - r_ij).norm(dim=1)
        squares = squares + d_jk**2
        envelope = envelope * cosine_cutoff(d_jk, cutoff)
    # the sets factorise: (1 + lambda cos)^zeta 2^(1 - zeta) for lambda = +-1 and each zeta, times
    # exp(-eta squares) f_c f_c (f_c) for each eta, so pow and exp run on (T, 2 Z) and (T, H), not (T, H Z 2)
    base = torch.stack([1.0 + cos, 1.0 - cos], dim=1).clamp(min=0.0)  # (T, 2)
    angular = torch.stack([base.pow(int(z)) * 2.0 ** (1.0 - float(z)) for z in zetas], dim=1)  # (T, Z, 2)
    radial = torch.exp(-etas * squares[:, None]) * envelope[:, None]  # (T, H)
    values = (radial[:, :, None, None] * angular[:, None, :, :]).reshape(radial.shape[0], etas.shape[0] * 2 * len(zetas))
    pairs = pair_index[neighbor_species[first], neighbor_species[second]]
    n_pairs = pair_index.shape[0] * (pair_index.shape[0] + 1) // 2
    summed = scatter_sum(values, center[first] * n_pairs + pairs, n_atoms * n_pairs)
    return summed.reshape(n_atoms, n_pairs * values.shape[1])


def angular_g4(vectors: torch.Tensor, center: torch.Tensor, neighbor_species: torch.Tensor, n_atoms: int,
               pair_index: torch.Tensor, etas: torch.Tensor, zetas: Sequence[float], cutoff: float) -> torch.Tensor:
    """G4 features (N, P * A), P = S(S+1)/2 element pairs, A = H Z 2 parameter sets in the order of
    ``itertools.product(etas, zetas, (1, -1))`` (etas (H,) 1/Å^2, Z integer zetas, lambda = +-1).

    ``pair_index`` is the (S, S) table of :func:`element_pair_index`.
    """
    return _angular(vectors, center, neighbor_species, n_atoms, pair_index, etas, zetas, cutoff, True)


def angular_g5(vectors: torch.Tensor, center: torch.Tensor, neighbor_species: torch.Tensor, n_atoms: int,
               pair_index: torch.Tensor, etas: torch.Tensor, zetas: Sequence[float], cutoff: float) -> torch.Tensor:
    """G5 features (N, P * A): as G4 without the j-k distance and its cutoff (suits larger cutoffs)."""
    return _angular(vectors, center, neighbor_species, n_atoms, pair_index, etas, zetas, cutoff, False)
