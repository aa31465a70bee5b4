"""AtomicGraph: the validated inputs of a potential (no labels) for one or many structures."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from ase import Atoms

from nnip.data.neighbors import NeighborRequest

__all__ = ["AtomicGraph"]


@dataclass
class AtomicGraph:
    """Atoms, cells and edges of a batch of B structures with N atoms and E edges in total.

    Shapes and units:
        positions: (N, 3) Å.
        atomic_numbers: (N,) int64.
        cell: (B, 3, 3) Å, lattice vectors as rows; zeros for a non-periodic structure.
        pbc: (B, 3) bool.
        edge_index: (2, E) int64; row 0 is the centre i (sums land here), row 1 the neighbour j.
        cell_shifts: (E, 3) integer (int32 from vesin) image shifts S; r_ij = r_j - r_i + S @ cell.
        structure_index: (N,) int64, the structure of each atom.
        n_atoms: (B,) int64.
        total_charge: (B,) e, net charge of each structure (0 unless the data says otherwise).
        neighbor_request: what the edges satisfy (cutoff, full or half list, skin): a potential refuses a
            graph whose edges do not cover its own request (``Potential.neighbor_request()``).
    """

    positions: torch.Tensor
    atomic_numbers: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    edge_index: torch.Tensor
    cell_shifts: torch.Tensor
    structure_index: torch.Tensor
    n_atoms: torch.Tensor
    total_charge: torch.Tensor
    neighbor_request: NeighborRequest

    def __post_init__(self) -> None:
        n = self.positions.shape[0]
        b = self.n_atoms.shape[0]
        checks = {
            "positions": (self.positions.shape, (n, 3)),
            "atomic_numbers": (self.atomic_numbers.shape, (n,)),
            "structure_index": (self.structure_index.shape, (n,)),
            "cell": (self.cell.shape, (b, 3, 3)),
            "pbc": (self.pbc.shape, (b, 3)),
            "total_charge": (self.total_charge.shape, (b,)),
            "cell_shifts": (self.cell_shifts.shape, (self.edge_index.shape[1], 3)),
        }
        for name, (shape, expected) in checks.items():
            if tuple(shape) != expected:
                raise ValueError(f"AtomicGraph.{name} has shape {tuple(shape)}, expected {expected}")
        if self.edge_index.dim() != 2 or self.edge_index.shape[0] != 2:
            raise ValueError(f"AtomicGraph.edge_index must be (2, E), got {tuple(self.edge_index.shape)}")

    @property
    def n_structures(self) -> int:
        """Number of structures B."""
        return int(self.n_atoms.shape[0])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "AtomicGraph":
        """Copy to ``device``; floating-point fields (positions, cell, charge) to ``dtype``."""
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                cast = dtype if (dtype is not None and value.is_floating_point()) else None
                value = value.to(device=device, dtype=cast)
            moved[f.name] = value
        return AtomicGraph(**moved)

    def with_positions(self, positions: torch.Tensor) -> "AtomicGraph":
        """Same graph and edges with new positions (e.g. displaced atoms); edges are not rebuilt."""
        return replace(self, positions=positions)

    @classmethod
    def from_arrays(
        cls,
        positions: np.ndarray | torch.Tensor,
        atomic_numbers: np.ndarray | torch.Tensor,
        cell: np.ndarray | torch.Tensor,
        pbc: np.ndarray | torch.Tensor,
        neighbors: NeighborRequest | float,
        *,
        edges: tuple[torch.Tensor, torch.Tensor] | None = None,
        total_charge: float = 0.0,
        dtype: torch.dtype = torch.float64,
    ) -> "AtomicGraph":
        """One structure from arrays; builds the neighbour list unless ``edges`` is given.

        Args:
            positions: (N, 3) Å. cell: (3, 3) Å. pbc: (3,) bool.
            neighbors: the neighbour request (``Potential.neighbor_request()``), or a cutoff in Å for a
                full list.
            edges: precomputed (edge_index, cell_shifts) that satisfy ``neighbors``.
            total_charge: net charge, e.
            dtype: floating-point dtype of positions and cell.
        """
        if isinstance(positions, torch.Tensor):
            positions = positions.detach().cpu().numpy()
        positions_np = np.asarray(positions, dtype=np.float64)
        pbc_np = np.asarray(pbc, dtype=bool).reshape(3)
        cell_np = np.asarray(cell, dtype=np.float64).reshape(3, 3)
        if not pbc_np.any():
            cell_np = np.zeros((3, 3))
        request = NeighborRequest.of(neighbors)
        if edges is None:
            edges = request.build(positions_np, cell_np, pbc_np)
        n = positions_np.shape[0]
        return cls(
            positions=torch.as_tensor(positions_np, dtype=dtype),
            atomic_numbers=torch.as_tensor(np.asarray(atomic_numbers), dtype=torch.int64),
            cell=torch.as_tensor(cell_np, dtype=dtype).unsqueeze(0),
            pbc=torch.as_tensor(pbc_np).unsqueeze(0),
            edge_index=edges[0],
            cell_shifts=edges[1],
            structure_index=torch.zeros(n, dtype=torch.int64),
            n_atoms=torch.tensor([n], dtype=torch.int64),
            total_charge=torch.tensor([float(total_charge)], dtype=dtype),
            neighbor_request=request,
        )

    @classmethod
    def from_atoms(cls, atoms: Atoms, neighbors: NeighborRequest | float,
                   dtype: torch.dtype = torch.float64) -> "AtomicGraph":
        """One structure from an ``ase.Atoms``; the net charge is read from ``atoms.info['charge']``.

        ``neighbors``: the neighbour request (``Potential.neighbor_request()``), or a cutoff in Å for a full list.
        """
        return cls.from_arrays(
            atoms.positions,
            atoms.numbers,
            atoms.cell.array,
            atoms.pbc,
            neighbors,
            total_charge=float(atoms.info.get("charge", 0.0)),
            dtype=dtype,
        )
