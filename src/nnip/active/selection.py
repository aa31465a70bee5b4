"""Which candidates are worth an oracle call: uncertain, new, diverse, and not too many.

Filters, in order (each rejection is counted under its name):

0. ``contact``: no two atoms closer than ``min_distance`` times the sum of their covalent
   radii (a sampler that collapsed or exploded the structure: MD with a poor model does);
1. ``uncertainty``: the ensemble's force spread sigma_F (root of the mean force-component
   variance, eV/Å) must exceed the given percentile of the training structures' spreads;
2. ``known``: farther than ``rmsd`` Å from every training structure;
3. ``duplicate``: farther than ``rmsd`` Å from every candidate already chosen (candidates are
   taken in order of decreasing sigma_F);
4. ``limit``: at most ``max_new`` per generation.

RMSD between structures with the same atoms in the same order; after the optimal rigid
superposition (Kabsch) when ``align`` (for potentials invariant under rotations), plain
otherwise; structures of different sizes or elements never count as close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from nnip.active.adversarial import closest_contact

__all__ = ["Selection", "rmsd", "select"]


def rmsd(a: Atoms, b: Atoms, align: bool) -> float:
    """Root-mean-square distance (Å) between two structures (inf if their atoms differ)."""
    if len(a) != len(b) or not np.array_equal(a.numbers, b.numbers):
        return float("inf")
    p, q = a.positions, b.positions
    if align and len(a) > 1 and not a.pbc.any():
        p, q = p - p.mean(0), q - q.mean(0)
        u, _, vt = np.linalg.svd(p.T @ q)
        d = np.sign(np.linalg.det(u @ vt))
        rotation = u @ np.diag([1.0, 1.0, d]) @ vt
        p = p @ rotation
    return float(np.sqrt(np.mean(np.sum((p - q) ** 2, axis=1))))


@dataclass
class Selection:
    """Indices of the chosen candidates (by decreasing sigma_F), the threshold used, rejections per filter."""

    chosen: list[int]
    threshold: float
    rejected: dict[str, int] = field(default_factory=dict)


def select(candidates: Sequence[Atoms], sigma: Sequence[float], train: Sequence[Atoms], train_sigma: Sequence[float],
           percentile: float = 80.0, rmsd_min: float = 0.05, max_new: int = 10, align: bool = True,
           min_distance: float = 0.5) -> Selection:
    """Apply the filters of the module docstring."""
    sigma = np.asarray(sigma, dtype=float)
    threshold = float(np.percentile(np.asarray(train_sigma, dtype=float), percentile)) if len(train_sigma) else 0.0
    rejected = {"contact": 0, "uncertainty": 0, "known": 0, "duplicate": 0, "limit": 0}
    chosen: list[int] = []
    for k in np.argsort(-sigma, kind="stable"):
        k = int(k)
        if not np.isfinite(candidates[k].positions).all() or closest_contact(candidates[k], min_distance):
            rejected["contact"] += 1
        elif not sigma[k] > threshold:
            rejected["uncertainty"] += 1
        elif any(rmsd(candidates[k], t, align) < rmsd_min for t in train):
            rejected["known"] += 1
        elif any(rmsd(candidates[k], candidates[c], align) < rmsd_min for c in chosen):
            rejected["duplicate"] += 1
        elif len(chosen) >= max_new:
            rejected["limit"] += 1
        else:
            chosen.append(k)
    return Selection(chosen, threshold, rejected)
