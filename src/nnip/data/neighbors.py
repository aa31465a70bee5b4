"""Neighbour lists through vesin, with skin (Verlet) reuse for molecular dynamics.

Convention (ASE's): the list is full (both i->j and j->i), an edge is (i, j, S) with
r_ij = r_j - r_i + S @ cell, and an atom sees every periodic image of a neighbour within
the cutoff, including its own images when the cell is smaller than the cutoff.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import vesin

from nnip.errors import DataError

__all__ = ["NeighborRequest", "neighbor_list", "VerletNeighborList", "degenerate_cell_message", "MAX_COORDINATE",
           "coordinate_problem", "half_edge_mask"]

#: Å; the largest magnitude of a coordinate or cell component accepted (larger ones are corrupt values)
MAX_COORDINATE = 1e5

#: vesin's cell list holds at most this many cells; shrunk to it, a thin direction of an elongated box
#: gets no cell at all and vesin divides by zero (a SIGFPE that ends the process)
_VESIN_MAX_CELLS = 1e5


@dataclass(frozen=True)
class NeighborRequest:
    """What a potential asks of a neighbour list (``Potential.neighbor_request()``), and what a graph's edges satisfy.

    Args:
        cutoff: Å; every pair closer than this is in the list.
        full: both directions of every pair (default); False: each unordered pair once (a half list,
            for potentials whose terms all take one: ``Term.half_list``).
        skin: Å, extra shell of a Verlet list (pairs up to ``cutoff + skin`` may be present).
    """

    cutoff: float
    full: bool = True
    skin: float = 0.0

    def __post_init__(self) -> None:
        if not (self.cutoff >= 0 and self.skin >= 0 and math.isfinite(self.cutoff + self.skin)):
            raise ValueError(f"neighbour cutoff and skin must be finite and >= 0 Å, got {self.cutoff}, {self.skin}")

    @classmethod
    def of(cls, value: "NeighborRequest | float") -> "NeighborRequest":
        """A request from itself or from a cutoff in Å (a full list)."""
        return value if isinstance(value, NeighborRequest) else cls(float(value))

    @property
    def list_cutoff(self) -> float:
        """Å: pairs up to this distance may be in the list (cutoff + skin)."""
        return self.cutoff + self.skin

    def covers(self, other: "NeighborRequest") -> bool:
        """True when a list built for this request serves ``other``: every pair within its cutoff, in both
        directions when it asks for a full list."""
        return self.cutoff >= other.cutoff - 1e-12 and (self.full or not other.full)

    def build(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(edge_index, cell_shifts) of one structure within ``list_cutoff`` (see :func:`neighbor_list`)."""
        return neighbor_list(positions, cell, pbc, self.list_cutoff, full=self.full)


def _vesin_box(cell: np.ndarray, pbc: np.ndarray) -> tuple[np.ndarray, bool | list[bool]]:
    """Cell and periodicity handed to vesin (a plain bool takes vesin's faster path)."""
    if not pbc.any():
        return np.zeros((3, 3)), False
    if pbc.all():
        return cell, True
    return cell, pbc.tolist()


def degenerate_cell_message(cell: np.ndarray, pbc: np.ndarray) -> str | None:
    """Why a cell cannot be periodic along ``pbc`` (zero or linearly dependent periodic vectors), or None."""
    periodic = np.asarray(cell, dtype=float)[np.asarray(pbc, dtype=bool)]
    if len(periodic) == 0:
        return None
    if not np.isfinite(periodic).all():
        return "cell contains NaN or inf"
    singular = np.linalg.svd(periodic, compute_uv=False)
    if singular.min() < 1e-6 * max(1.0, singular.max()):
        axes = "".join("abc"[k] for k in range(3) if pbc[k])
        return f"zero-volume cell under pbc (periodic lattice vectors {axes} are zero or linearly dependent)"
    return None


def coordinate_problem(positions: np.ndarray, cell: np.ndarray) -> str | None:
    """Why positions (N, 3) Å or a cell (3, 3) Å cannot be used: NaN or inf, or a value beyond
    :data:`MAX_COORDINATE`; None when they can."""
    for name, values in (("positions", positions), ("cell", cell)):
        values = np.asarray(values, dtype=float)
        if not np.isfinite(values).all():
            row = int(np.argwhere(~np.isfinite(values))[0, 0])
            return f"{name} contain NaN or inf ({'atom' if name == 'positions' else 'cell vector'} {row})"
        if values.size and np.abs(values).max() > MAX_COORDINATE:
            where = np.unravel_index(int(np.abs(values).argmax()), values.shape)
            what = f"atom {where[0]}" if name == "positions" else f"cell vector {'abc'[where[0]]}"
            return (f"{what} has a coordinate of {values[where]:.6g} Å, beyond {MAX_COORDINATE:g} Å "
                    "(a corrupt value?)")
    return None


def _vesin_cells_degenerate(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> bool:
    """Whether vesin's cell list would shrink some direction to zero cells (see _VESIN_MAX_CELLS): a box
    of more than 10^5 cells of ``cutoff`` that is much thinner along one direction than the others."""
    lengths = np.ptp(positions, axis=0) if len(positions) else np.zeros(3)
    lengths = np.where(lengths < 1e-6, 1.0, lengths) * 1.01  # vesin's bounding box of free directions
    if pbc.any():
        volume = abs(np.linalg.det(cell)) if pbc.all() else None
        for k in np.flatnonzero(pbc):
            if volume is not None:
                lengths[k] = volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
            else:
                lengths[k] = np.linalg.norm(cell[k])
    cells = np.maximum(np.trunc(lengths / cutoff), 1.0)
    total = float(np.prod(cells))
    return total > _VESIN_MAX_CELLS and float(cells.min()) * np.cbrt(_VESIN_MAX_CELLS / total) < 2.0


def _ase_neighbor_list(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float,
                       full: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The same list from ASE's (slower) binning, for boxes vesin cannot bin (:func:`_vesin_cells_degenerate`)."""
    from ase.neighborlist import primitive_neighbor_list

    i, j, shifts = primitive_neighbor_list("ijS", pbc, cell, positions, cutoff, self_interaction=False)
    edge_index = torch.from_numpy(np.stack([i, j]).astype(np.int64))
    shifts = torch.from_numpy(np.ascontiguousarray(shifts, dtype=np.int32))
    if not full:
        keep = half_edge_mask(edge_index[0], edge_index[1], shifts)
        edge_index, shifts = edge_index[:, keep], shifts[keep]
    return edge_index, shifts


def half_edge_mask(center: torch.Tensor, neighbor: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Keep i -> j when i < j, or i == j with the first non-zero image shift positive.

    Of the two directions (i, j, S) and (j, i, -S) of a pair exactly one passes.
    Shapes: (E,), (E,), (E, 3) -> (E,) bool.
    """
    s0, s1, s2 = shifts.unbind(1)
    positive_shift = (s0 > 0) | ((s0 == 0) & ((s1 > 0) | ((s1 == 0) & (s2 > 0))))
    return (center < neighbor) | ((center == neighbor) & positive_shift)



def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, cutoff: float, full: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbour list of one structure: full (both directions) or half (each pair once).

    Args:
        positions: (N, 3) Å.
        cell: (3, 3) Å, lattice vectors as rows; periodic rows must be linearly independent, and
            every value finite and within :data:`MAX_COORDINATE` (DataError otherwise: vesin would end
            the process on such input). Boxes vesin cannot bin go to ASE's neighbour list.
        pbc: (3,) bool.
        cutoff: Å; pairs with r_ij < cutoff are returned (none when cutoff <= 0, as for a
            term that needs no neighbours).
        full: both i -> j and j -> i (default); False gives each unordered pair once,
            enough for potentials whose terms all take half lists (NeighborRequest.full).

    Returns:
        edge_index: (2, E) int64, row 0 the centre i, row 1 the neighbour j (a transposed view).
        cell_shifts: (E, 3) int32 image shifts S.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    problem = coordinate_problem(positions, cell) or degenerate_cell_message(cell, pbc)
    if problem:  # vesin would abort the whole process on such input
        raise DataError(problem)
    if cutoff <= 0:
        return torch.zeros(2, 0, dtype=torch.int64), torch.zeros(0, 3, dtype=torch.int32)
    if _vesin_cells_degenerate(positions, cell, pbc, cutoff):
        return _ase_neighbor_list(positions, cell, pbc, cutoff, full)
    box, periodic = _vesin_box(cell, pbc)
    calculator = vesin.NeighborList(cutoff=float(cutoff), full_list=full)
    pairs, shifts = calculator.compute(positions, np.ascontiguousarray(box), periodic, quantities="PS", copy=True)
    # No further copies: (E, 2) uint64 pairs viewed as int64 and transposed, int32 shifts as they come.
    edge_index = torch.from_numpy(pairs.view(np.int64)).T
    return edge_index, torch.from_numpy(shifts)


class VerletNeighborList:
    """Neighbour list with a skin, rebuilt only when an atom moved more than skin/2.

    Edges are collected within ``cutoff + skin``; a potential keeps those within its own
    cutoff, so results equal a fresh list at every step. The list is also rebuilt when
    the number of atoms, the cell or the periodicity changes.

    Args:
        cutoff: interaction cutoff, Å.
        skin: extra shell, Å (0 rebuilds every call).
        full: full list (default) or half list (each pair once).

    Attributes:
        n_builds: how many times the list was built (for tests and logs).
    """

    def __init__(self, cutoff: float, skin: float = 0.5, full: bool = True):
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.full = full
        self.n_builds = 0
        self._reference: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._edges: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def list_cutoff(self) -> float:
        """Cutoff of the stored list: cutoff + skin, Å."""
        return self.cutoff + self.skin

    @property
    def request(self) -> NeighborRequest:
        """What the stored lists satisfy."""
        return NeighborRequest(self.cutoff, self.full, self.skin)

    def needs_rebuild(self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> bool:
        """True when the stored list may miss a pair within the cutoff."""
        if self._reference is None:
            return True
        ref_positions, ref_cell, ref_pbc = self._reference
        if ref_positions.shape != positions.shape or not np.array_equal(ref_pbc, pbc):
            return True
        if not np.array_equal(ref_cell, cell):
            return True
        if self.skin == 0.0:
            return True
        displacement = np.sqrt(((positions - ref_positions) ** 2).sum(axis=1)).max(initial=0.0)
        return bool(displacement > 0.5 * self.skin)

    def get(
        self, positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (edge_index, cell_shifts) within cutoff + skin, rebuilding when needed."""
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        pbc = np.asarray(pbc, dtype=bool)
        if self.needs_rebuild(positions, cell, pbc):
            self._edges = neighbor_list(positions, cell, pbc, self.list_cutoff, full=self.full)
            self._reference = (positions.copy(), cell.copy(), pbc.copy())
            self.n_builds += 1
        assert self._edges is not None
        return self._edges
