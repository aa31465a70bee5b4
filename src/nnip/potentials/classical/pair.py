"""Shared machinery of pair potentials: per-element-pair parameters and the pair-sum term.

A pair term gives atom i the energy e_i = 1/2 sum_j V(r_ij) s(r_ij) over its neighbours
(computed once per pair on a half list), where V is shifted to zero at the cutoff when ``shift`` is set (energy
continuous, forces jump) and s is the C2 quintic switch between ``switch_on`` and the
cutoff when that is set (energy and forces continuous).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
from ase.data import atomic_numbers as _symbol_to_z
from ase.data import chemical_symbols
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.cutoffs import quintic_switch
from nnip.nn.scatter import scatter_sum
from nnip.potentials.contract.base import Edges, Term
from nnip.strict import CUTOFF, check

__all__ = ["PairConfig", "PairTable", "PairTerm", "per_edge", "unordered_pairs", "arithmetic_mean", "geometric_mean",
           "harmonic_mean"]

PerElement = float | dict[str, float]


def arithmetic_mean(a: float, b: float) -> float:
    return 0.5 * (a + b)


def geometric_mean(a: float, b: float) -> float:
    return math.sqrt(a * b)


def harmonic_mean(a: float, b: float) -> float:
    return 2.0 * a * b / (a + b)


@dataclass
class PairConfig:
    """Cutoff handling shared by every pair term.

    Attributes:
        cutoff: Å; pairs at r >= cutoff do not interact.
        shift: subtract V(cutoff) so the energy is continuous at the cutoff.
        switch_on: Å; when set, multiply by a C2 switch going from 1 at switch_on to 0 at cutoff.
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    shift: bool = True
    switch_on: float | None = None

    def __post_init__(self) -> None:
        check("cutoff", self.cutoff, CUTOFF)
        if self.switch_on is not None and not 0 <= self.switch_on < self.cutoff:
            raise ConfigError(f"switch_on must lie in [0, cutoff={self.cutoff}) Å, got {self.switch_on} "
                              "(set switch_on, or null, together with the cutoff)")


def _symbol(z: int) -> str:
    return chemical_symbols[z]


def _pair_species(key: str, elements: Sequence[int]) -> tuple[int, int] | None:
    """'A-B' -> (species of A, species of B); None when an element is not in the potential."""
    parts = key.split("-")
    if len(parts) != 2 or any(p not in _symbol_to_z for p in parts):
        raise ConfigError(f"pair key {key!r} must look like 'Ar-Kr' (two element symbols joined by '-')")
    zs = [_symbol_to_z[p] for p in parts]
    if any(z not in elements for z in zs):
        return None
    return elements.index(zs[0]), elements.index(zs[1])


def per_edge(values: torch.Tensor, pair_id: torch.Tensor) -> torch.Tensor:
    """values[pair_id]; with a single pair (one element) the (1,) tensor itself, which broadcasts.

    Broadcasting is several times faster than a gather or an expanded (stride-0) operand.
    Shapes: (P,), (E,) -> (E,) or (1,).
    """
    if values.shape[0] == 1:
        return values
    return values.index_select(0, pair_id)


def unordered_pairs(n_species: int) -> list[tuple[int, int]]:
    """Species pairs (a, b), a <= b, in the order of pair ids 0, 1, ..."""
    return [(a, b) for a in range(n_species) for b in range(a, n_species)]


class PairTable(nn.Module):
    """One trainable value per unordered element pair, set by a combination rule or explicitly.

    Stored as ``unit * raw`` with ``unit`` the magnitude of the initial value, so that an
    optimizer step changes every parameter by a similar relative amount whatever its unit
    (sigma ~ 3 Å and epsilon ~ 0.01 eV train together with one learning rate).

    Args:
        name: parameter name, for error messages.
        elements: sorted atomic numbers; species s is ``elements[s]``.
        per_element: one value for every element, or {symbol: value} covering every element.
        pairs: explicit values {"A-B": value} that override the combination rule.
        mixing: rule combining two per-element values into a pair value.
    """

    def __init__(
        self,
        name: str,
        elements: Sequence[int],
        per_element: PerElement,
        pairs: Mapping[str, float],
        mixing: Callable[[float, float], float],
    ):
        super().__init__()
        elements = list(elements)
        explicit: dict[tuple[int, int], float] = {}
        for key, value in pairs.items():
            species_pair = _pair_species(key, elements)
            if species_pair is not None:
                explicit[tuple(sorted(species_pair))] = float(value)
        values = []
        for a, b in unordered_pairs(len(elements)):
            if (a, b) in explicit:
                values.append(explicit[(a, b)])
            else:
                values.append(mixing(self._element_value(name, per_element, elements[a]),
                                     self._element_value(name, per_element, elements[b])))
        initial = torch.tensor(values, dtype=torch.float64)
        unit = torch.where(initial != 0, initial.abs(), torch.ones_like(initial))
        self.register_buffer("unit", unit)
        self.raw = nn.Parameter(initial / unit)

    @property
    def values(self) -> torch.Tensor:
        """The pair values, ``unit * raw`` (the trainable ``raw`` starts at +-1 or 0)."""
        return self.unit * self.raw

    @staticmethod
    def _element_value(name: str, per_element: PerElement, z: int) -> float:
        if isinstance(per_element, Mapping):
            if _symbol(z) not in per_element:
                raise ConfigError(f"{name} has no value for element {_symbol(z)} (give one or a pair value)")
            return float(per_element[_symbol(z)])
        return float(per_element)

    def forward(self, pair_id: torch.Tensor) -> torch.Tensor:
        """Values for edges of the given unordered-pair ids (see :func:`unordered_pairs`). Shapes: (E,) -> (E,)."""
        return per_edge(self.values, pair_id)


class PairTerm(Term):
    """Base of pair potentials; subclasses implement :meth:`pair_energy` only.

    Edges are labelled by the id of their unordered species pair, computed once per call
    from a flat (S*S,) lookup table, so every per-pair parameter is a single gather.
    """

    def __init__(self, config: PairConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        n = len(self.elements)
        pairs = unordered_pairs(n)
        ids = torch.empty((n, n), dtype=torch.int64)
        for k, (a, b) in enumerate(pairs):
            ids[a, b] = ids[b, a] = k
        self.register_buffer("pair_ids", ids.reshape(-1), persistent=False)
        # species (a, b) of each pair id, and the ids themselves, for per-pair tables
        self.register_buffer("pair_first", torch.tensor([a for a, _ in pairs]), persistent=False)
        self.register_buffer("pair_second", torch.tensor([b for _, b in pairs]), persistent=False)
        self.register_buffer("all_pairs", torch.arange(len(pairs)), persistent=False)

    @abc.abstractmethod
    def pair_energy(self, r: torch.Tensor, pair_id: torch.Tensor) -> torch.Tensor:
        """Unshifted, unswitched pair energy V(r), eV. Shapes: r (E,) Å, pair_id (E,) -> (E,)."""

    def edge_pair_ids(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Unordered species-pair id of every edge. Shapes: (N,), E edges -> (E,)."""
        n = len(self.elements)
        if n == 1:
            return torch.zeros(1, dtype=torch.int64, device=species.device).expand(edges.center.shape[0])
        flat = species.index_select(0, edges.center) * n + species.index_select(0, edges.neighbor)
        return self.pair_ids.index_select(0, flat)

    half_list = True

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Atomic energies (N,) eV; ``edges``: a half list (each pair once, from the Potential)."""
        pair_id = self.edge_pair_ids(species, edges)
        r = edges.lengths
        v = self.pair_energy(r, pair_id)
        if self.config.shift:
            r_cut = torch.full(self.all_pairs.shape, self.cutoff, dtype=r.dtype, device=r.device)
            v = v - per_edge(self.pair_energy(r_cut, self.all_pairs), pair_id)
        if self.config.switch_on is not None:
            v = v * quintic_switch(r, self.config.switch_on, self.cutoff)
        half_v = 0.5 * v
        energies = scatter_sum(half_v, edges.center, species.shape[0])
        return edges.collect(energies.index_add_(0, edges.neighbor, half_v))
