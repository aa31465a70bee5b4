"""The atomic cluster expansion (ACE) basis: rotation- and reflection-invariant features of an atom's
neighbourhood, complete up to body order 4.

Per atom i, the atomic basis sums one-particle functions over the neighbours j within the cutoff,
one channel k = (z, n) per neighbour element z and radial function n:

    A_{k l m}(i) = sum_{j: Z_j = z} R_n(r_ij) Y_lm(r_ij / |r_ij|)

R_n: Bessel functions times the polynomial cutoff envelope (smooth to second order at the cutoff);
Y_lm: real spherical harmonics (nnip.nn.irreps). Products of A's contracted to invariants give the
basis B, by correlation order nu (body order nu + 1):

    nu = 1:  A_{k 0 0}
    nu = 2:  sum_m A_{k1 l m} A_{k2 l m}                                       (k1, l) <= (k2, l)
    nu = 3:  sum_{m1 m2 m3} C^{l1 l2 l3}_{m1 m2 m3} A_{k1 l1 m1} A_{k2 l2 m2} A_{k3 l3 m3}
             (l1, k1) <= (l2, k2) <= (l3, k3), |l1 - l2| <= l3 <= l1 + l2, l1 + l2 + l3 even

with C the real Clebsch-Gordan (Wigner 3j) coefficients. Up to nu = 3 the l's couple to an
invariant in one way only, and with l1 + l2 + l3 even that invariant is symmetric in its three
factors and unchanged by reflections, so each multiset {(k_a, l_a)} gives one O(3) invariant and
together they span the invariant polynomials of that body order in the A's. The unrestricted sums
over neighbours include the self-interaction terms (j = j'), as in ACE; they only re-express lower
body orders. Truncation: by total degree sum_a (n_a + l_a) <= ``degrees[nu - 1]`` (n from 0).

References: R. Drautz, Phys. Rev. B 99, 014104 (2019); G. Dusson et al., J. Comput. Phys. 454,
110946 (2022); D. P. Kovacs et al., J. Chem. Theory Comput. 17, 7696 (2021) (linear ACE).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations_with_replacement

import torch
from torch import nn

from nnip.nn.channelwise import ExactConstants
from nnip.nn.irreps import clebsch_gordan, spherical_harmonics
from nnip.nn.radial import BesselBasis, polynomial_cutoff

__all__ = ["ACEBasis", "basis_labels"]


def _pairs(channels: int, n_radial: int, l_max: int, degree: int) -> dict[int, list[tuple[int, int]]]:
    """nu = 2: per l, the channel pairs k1 <= k2 with n1 + n2 + 2 l <= degree."""
    return {l: [(k1, k2) for k1 in range(channels) for k2 in range(k1, channels)
                if k1 % n_radial + k2 % n_radial + 2 * l <= degree] for l in range(l_max + 1)}


def _triples(channels: int, n_radial: int, l_max: int, degree: int) -> dict[tuple[int, int, int], list]:
    """nu = 3: per (l1, l2, l3), the channel triples of the multisets of (l, k) allowed (module docstring)."""
    items = [(l, k) for l in range(l_max + 1) for k in range(channels) if k % n_radial + l <= degree]
    out: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    for (l1, k1), (l2, k2), (l3, k3) in combinations_with_replacement(items, 3):
        if l3 > l1 + l2 or (l1 + l2 + l3) % 2 or k1 % n_radial + k2 % n_radial + k3 % n_radial + l1 + l2 + l3 > degree:
            continue  # items are sorted by l, so l1 <= l2 <= l3 and only l3 <= l1 + l2 can fail the triangle
        out.setdefault((l1, l2, l3), []).append((k1, k2, k3))
    return out


def basis_labels(n_species: int, n_radial: int, l_max: int, degrees: Sequence[int]) -> list[tuple]:
    """One label per feature, in the basis's order: ((z, n, l), ...) of each factor."""
    channels = n_species * n_radial
    name = lambda k, l: (k // n_radial, k % n_radial, l)  # noqa: E731
    labels = [(name(k, 0),) for k in range(channels) if k % n_radial <= degrees[0]]
    if len(degrees) > 1:
        labels += [(name(a, l), name(b, l)) for l, pairs in _pairs(channels, n_radial, l_max, degrees[1]).items()
                   for a, b in pairs]
    if len(degrees) > 2:
        labels += [tuple(name(k, l) for k, l in zip(ks, ls))
                   for ls, triples in _triples(channels, n_radial, l_max, degrees[2]).items() for ks in triples]
    return labels


class ACEBasis(ExactConstants):
    """ACE features of every atom (module docstring).

    Args:
        n_species: elements the neighbours can be (species indices 0..n_species-1).
        cutoff: Å. n_radial: radial functions per element. l_max: largest degree of the harmonics.
        degrees: largest total degree per correlation order, (nu = 1, nu = 2, nu = 3); its length is
            the largest correlation order (1 to 3, body order 2 to 4).

    Shapes: species (N,) int64 and edges (centre, neighbour (E,), vectors (E, 3) Å, lengths (E,) Å)
    -> (N, n_features). Features of an atom without neighbours are zero.
    """

    def __init__(self, n_species: int, cutoff: float, n_radial: int, l_max: int, degrees: Sequence[int]):
        super().__init__()
        if not 1 <= len(degrees) <= 3:
            raise ValueError(f"degrees: one to three correlation orders, got {list(degrees)}")
        self.n_species, self.cutoff, self.n_radial, self.l_max = n_species, float(cutoff), n_radial, l_max
        self.radial = BesselBasis(n_radial, cutoff)
        self.harmonics = spherical_harmonics(l_max)
        channels = n_species * n_radial
        self.register_buffer("order1", torch.tensor([k for k in range(channels) if k % n_radial <= degrees[0]]),
                             persistent=False)  # index tables follow from the config: not saved
        pairs = _pairs(channels, n_radial, l_max, degrees[1]) if len(degrees) > 1 else {}
        self.pair_degrees = [l for l, p in pairs.items() if p]
        for l in self.pair_degrees:
            self.register_buffer(f"pairs_{l}", torch.tensor(pairs[l]).T.contiguous(), persistent=False)
        triples = _triples(channels, n_radial, l_max, degrees[2]) if len(degrees) > 2 else {}
        self.triple_degrees = list(triples)
        for t, ls in enumerate(self.triple_degrees):
            self.register_buffer(f"triples_{t}", torch.tensor(triples[ls]).T.contiguous(), persistent=False)
            self.register_constant(f"coupling_{t}", clebsch_gordan(*ls))
        self.n_features = len(self.order1) + sum(len(pairs[l]) for l in self.pair_degrees) + \
            sum(len(triples[ls]) for ls in self.triple_degrees)

    def edge_functions(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The one-particle functions R_n(r) Y_lm(r / |r|) of every edge, (E, n_radial, (l_max + 1)^2)."""
        radial = self.radial(lengths) * polynomial_cutoff(lengths, self.cutoff)[:, None]
        return radial[:, :, None] * self.harmonics(vectors)[:, None, :]

    def pool(self, species: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
             functions: torch.Tensor) -> torch.Tensor:
        """A (N, channels, (l_max + 1)^2) from the edges' one-particle functions: channel k = z * n_radial + n."""
        rows = center * self.n_species + species.index_select(0, neighbor)
        n, components = species.shape[0], functions.shape[-1]
        a = torch.zeros(n, self.n_species, self.n_radial, components, dtype=functions.dtype, device=functions.device)
        a = a.view(-1, self.n_radial, components).index_add(0, rows, functions)
        return a.view(n, self.n_species * self.n_radial, components)

    def atomic_basis(self, species: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor,
                     vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """A (N, channels, (l_max + 1)^2) of every atom (:meth:`pool` of :meth:`edge_functions`)."""
        return self.pool(species, center, neighbor, self.edge_functions(vectors, lengths))

    def invariants(self, a: torch.Tensor) -> torch.Tensor:
        """B (N, n_features) from A (N, channels, (l_max + 1)^2)."""
        blocks = [a[:, self.order1, 0]]
        for l in self.pair_degrees:
            first, second = getattr(self, f"pairs_{l}")
            block = a[:, :, l * l:(l + 1) ** 2]
            blocks.append((block[:, first] * block[:, second]).sum(-1))
        for t, (l1, l2, l3) in enumerate(self.triple_degrees):
            k1, k2, k3 = getattr(self, f"triples_{t}")
            x1, x2, x3 = (a[:, k, l * l:(l + 1) ** 2] for k, l in ((k1, l1), (k2, l2), (k3, l3)))
            coupled = torch.einsum("nma,abc->nmbc", x1, getattr(self, f"coupling_{t}"))
            blocks.append(((coupled * x3[:, :, None, :]).sum(-1) * x2).sum(-1))  # two-operand steps: exportable
        return torch.cat(blocks, dim=1)

    def forward(self, species: torch.Tensor, center: torch.Tensor, neighbor: torch.Tensor, vectors: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
        return self.invariants(self.atomic_basis(species, center, neighbor, vectors, lengths))
