"""Shared machinery of pair potentials: per-element-pair parameters and the pair-sum term.

A pair term gives atom i the energy e_i = 1/2 sum_j V(r_ij) s(r_ij) over the full
neighbour list, where V is shifted to zero at the cutoff when ``shift`` is set (energy
continuous, forces jump) and s is the C2 quintic switch between ``switch_on`` and the
cutoff when that is set (energy and forces continuous).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from ase.data import atomic_numbers as _symbol_to_z
from ase.data import chemical_symbols
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.cutoffs import quintic_switch
from nnip.nn.scatter import scatter_sum
from nnip.potentials.base import Edges, Term

__all__ = ["PairConfig", "PairTable", "PairTerm", "arithmetic_mean", "geometric_mean", "harmonic_mean"]

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

    cutoff: float = 5.0
    shift: bool = True
    switch_on: float | None = None

    def __post_init__(self) -> None:
        if not self.cutoff > 0:
            raise ConfigError(f"cutoff must be > 0 Å, got {self.cutoff}")
        if self.switch_on is not None and not 0 <= self.switch_on < self.cutoff:
            raise ConfigError(f"switch_on must lie in [0, cutoff={self.cutoff}) Å, got {self.switch_on}")


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


class PairTable(nn.Module):
    """One trainable value per unordered element pair, set by a combination rule or explicitly.

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
        n = len(elements)
        index = torch.empty((n, n), dtype=torch.int64)
        values = []
        for a in range(n):
            for b in range(a, n):
                if (a, b) in explicit:
                    value = explicit[(a, b)]
                else:
                    value = mixing(self._element_value(name, per_element, elements[a]),
                                   self._element_value(name, per_element, elements[b]))
                index[a, b] = index[b, a] = len(values)
                values.append(value)
        self.values = nn.Parameter(torch.tensor(values, dtype=torch.float64))
        self.register_buffer("index", index)

    @staticmethod
    def _element_value(name: str, per_element: PerElement, z: int) -> float:
        if isinstance(per_element, Mapping):
            if _symbol(z) not in per_element:
                raise ConfigError(f"{name} has no value for element {_symbol(z)} (give one or a pair value)")
            return float(per_element[_symbol(z)])
        return float(per_element)

    def forward(self, species_i: torch.Tensor, species_j: torch.Tensor) -> torch.Tensor:
        """Pair values for edges. Shapes: (E,), (E,) -> (E,)."""
        return self.values[self.index[species_i, species_j]]


class PairTerm(Term):
    """Base of pair potentials; subclasses implement :meth:`pair_energy` only."""

    @abc.abstractmethod
    def pair_energy(self, r: torch.Tensor, species_i: torch.Tensor, species_j: torch.Tensor) -> torch.Tensor:
        """Unshifted, unswitched pair energy V(r), eV. Shapes: (E,) Å, (E,), (E,) -> (E,)."""

    def _cutoff_values(self, species_i: torch.Tensor, species_j: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """V(cutoff) for each edge, evaluated once per element pair. Shapes -> (E,)."""
        n = len(self.elements)
        grid = torch.arange(n, device=species_i.device)
        si, sj = torch.meshgrid(grid, grid, indexing="ij")
        r_cut = torch.full((n * n,), self.cutoff, dtype=like.dtype, device=like.device)
        table = self.pair_energy(r_cut, si.reshape(-1), sj.reshape(-1)).view(n, n)
        return table[species_i, species_j]

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        species_i = species[edges.center]
        species_j = species[edges.neighbor]
        r = edges.lengths
        v = self.pair_energy(r, species_i, species_j)
        if self.config.shift:
            v = v - self._cutoff_values(species_i, species_j, r)
        if self.config.switch_on is not None:
            v = v * quintic_switch(r, self.config.switch_on, self.cutoff)
        return scatter_sum(0.5 * v, edges.center, species.shape[0])
