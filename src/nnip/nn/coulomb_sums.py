"""Coulomb energies of point charges, per atom, in eV: all pairs for molecules, Ewald sums for crystals.

Ewald (units with k_e = 14.3996 eV Å / e^2), for one periodic cell of volume V:

    E_i = 1/2 sum_{j, n}' k_e q_i q_j erfc(alpha r_ijn) / r_ijn                       (real space)
        + k_e (2 pi / V) sum_{k != 0} exp(-k^2 / 4 alpha^2) / k^2 q_i Re[exp(-i k.r_i) S(k)]   (reciprocal)
        - k_e alpha / sqrt(pi) q_i^2                                               (self)
        - k_e pi Q^2 / (2 V alpha^2 N)                                             (neutralising background)

with S(k) = sum_j q_j exp(i k.r_j). The real-space sum runs over the neighbour list within
r_c; alpha = sqrt(-ln eps) / r_c and |k| <= 2 alpha sqrt(-ln eps) make both truncation
errors about eps. Everything is differentiable with respect to positions and cell.

Reference: P. P. Ewald, Ann. Phys. 369, 253 (1921); D. Frenkel and B. Smit, Understanding
Molecular Simulation, ch. 12.
"""

from __future__ import annotations

import math

import torch

from nnip.nn.scatter import scatter_sum
from nnip.units import COULOMB_CONSTANT

__all__ = ["direct_coulomb_energies", "batch_pairs", "ewald_energies", "ewald_alpha"]


def batch_pairs(n_atoms: torch.Tensor, include: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs i < j of atoms in the same structure, for the structures where ``include`` is True.

    Shapes: n_atoms (B,) int64, include (B,) bool -> two (P,) int64 atom indices; no Python
    loop over structures or atoms.
    """
    ends = torch.cumsum(n_atoms, 0)
    structure = torch.repeat_interleave(torch.arange(n_atoms.shape[0], device=n_atoms.device), n_atoms)
    atom = torch.arange(int(ends[-1]) if n_atoms.numel() else 0, device=n_atoms.device)
    partners = torch.where(include[structure], ends[structure] - atom - 1, torch.zeros_like(atom))
    first = torch.repeat_interleave(atom, partners)
    starts = torch.cumsum(partners, 0) - partners
    second = first + 1 + torch.arange(first.shape[0], device=n_atoms.device) - torch.repeat_interleave(starts, partners)
    return first, second


def direct_coulomb_energies(positions: torch.Tensor, charges: torch.Tensor, first: torch.Tensor,
                            second: torch.Tensor) -> torch.Tensor:
    """1/2 sum_{j != i} k_e q_i q_j / r_ij over the given pairs (each once). Shapes: (N, 3), (N,), (P,), (P,) -> (N,) eV."""
    pair = COULOMB_CONSTANT * charges[first] * charges[second] / (positions[second] - positions[first]).norm(dim=1)
    n = charges.shape[0]
    return 0.5 * (scatter_sum(pair, first, n) + scatter_sum(pair, second, n))


def ewald_alpha(real_cutoff: float, accuracy: float) -> float:
    """Splitting parameter alpha (1/Å) for a real-space cutoff (Å) and relative accuracy."""
    return math.sqrt(-math.log(accuracy)) / real_cutoff


def _half_k_integers(cell: torch.Tensor, k_cut: float) -> torch.Tensor:
    """Integer triples n (K, 3) with 0 < |n @ reciprocal| <= k_cut, one of each pair +-n (first non-zero > 0)."""
    with torch.no_grad():
        reciprocal = 2.0 * math.pi * torch.linalg.inv(cell.detach()).transpose(0, 1)
        bounds = [int(math.ceil(k_cut * float(cell[d].detach().norm()) / (2.0 * math.pi))) for d in range(3)]
        ranges = [torch.arange(-b, b + 1, device=cell.device, dtype=cell.dtype) for b in bounds]
        n = torch.cartesian_prod(*ranges)
        first = torch.where(n[:, 0] != 0, n[:, 0], torch.where(n[:, 1] != 0, n[:, 1], n[:, 2]))
        n = n[first > 0]
        return n[(n @ reciprocal).norm(dim=1) <= k_cut]


def _reciprocal_energies(positions, cell, charges, alpha: float, k_cut: float, chunk_elements: int = 2**22):
    """Reciprocal-space Ewald energies per atom (n,) in units of k_e, summed over k in chunks.

    Phases are taken from fractional coordinates wrapped into [0, 1), so they stay accurate
    in float32 however far atoms have moved; k and -k contribute equally (factor 2).
    """
    integers = _half_k_integers(cell, k_cut)
    reciprocal = 2.0 * math.pi * torch.linalg.inv(cell).transpose(0, 1)
    fractional = positions @ torch.linalg.inv(cell)
    fractional = fractional - torch.floor(fractional.detach())
    volume = torch.linalg.det(cell).abs()
    total = torch.zeros_like(charges)
    step = max(1, chunk_elements // max(positions.shape[0], 1))
    for start in range(0, integers.shape[0], step):
        n = integers[start:start + step]
        k2 = ((n @ reciprocal) ** 2).sum(dim=1)
        phase = 2.0 * math.pi * (fractional @ n.transpose(0, 1))  # (n_atoms, K)
        cos, sin = torch.cos(phase), torch.sin(phase)
        weight = 2.0 * torch.exp(-k2 / (4.0 * alpha**2)) / k2
        total = total + charges * ((cos * (charges @ cos) + sin * (charges @ sin)) @ weight)
    return (2.0 * math.pi / volume) * total


def ewald_energies(positions: torch.Tensor, cell: torch.Tensor, charges: torch.Tensor, center: torch.Tensor,
                   neighbor: torch.Tensor, vectors: torch.Tensor, real_cutoff: float,
                   accuracy: float = 1e-6) -> torch.Tensor:
    """Per-atom Ewald energies (n,) eV of one periodic structure.

    Shapes: positions (n, 3) Å, cell (3, 3) Å, charges (n,) e; center, neighbor (E,) and
    vectors (E, 3) Å: a full neighbour list (with images) holding every pair within ``real_cutoff``.
    Cost: O(E) real space plus O(n K) reciprocal space with K ~ V k_cut^3 (no mesh: large
    cells are slow; memory stays bounded by summing k in chunks).
    """
    n = positions.shape[0]
    alpha = ewald_alpha(real_cutoff, accuracy)
    lengths = vectors.norm(dim=1)
    within = lengths < real_cutoff
    pair = charges[center] * charges[neighbor] * torch.erfc(alpha * lengths) / lengths
    real = 0.5 * scatter_sum(torch.where(within, pair, torch.zeros_like(pair)), center, n)
    reciprocal = _reciprocal_energies(positions, cell, charges, alpha, 2.0 * alpha * math.sqrt(-math.log(accuracy)))
    volume = torch.linalg.det(cell).abs()
    self_energy = -alpha / math.sqrt(math.pi) * charges**2
    background = -math.pi * charges.sum() ** 2 / (2.0 * volume * alpha**2 * n)
    return COULOMB_CONSTANT * (real + reciprocal + self_energy + background)
