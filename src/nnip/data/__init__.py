"""Atomic data: reading and validation, graphs and batches, neighbour lists, bundled datasets."""

from pathlib import Path

from nnip.data.batching import collate
from nnip.data.graph import AtomicGraph
from nnip.data.io import Inspection, inspect, read, write
from nnip.data.neighbors import VerletNeighborList, neighbor_list

__all__ = ["AtomicGraph", "collate", "read", "write", "inspect", "Inspection", "neighbor_list",
           "VerletNeighborList", "bundled"]

_BUNDLED = Path(__file__).parent / "bundled"


def bundled(name: str) -> Path:
    """Path of a dataset shipped with nnip (see data/bundled/SOURCE.md), e.g. 'ethanol_train.extxyz'."""
    path = _BUNDLED / name
    if not path.is_file():
        available = sorted(p.name for p in _BUNDLED.glob("*.extxyz"))
        raise FileNotFoundError(f"no bundled dataset {name!r}; available: {', '.join(available)}")
    return path
