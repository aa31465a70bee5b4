"""Test support: the contract every potential must satisfy, and tiny deterministic structures.

Nothing in the package imports this module (it needs pytest). A test file adopts the
contract by subclassing :class:`PotentialContract` and defining ``make_potential``.
"""

from nnip.testing.contract import PotentialContract
from nnip.testing.structures import cluster, evaluate, periodic_cell

__all__ = ["PotentialContract", "cluster", "periodic_cell", "evaluate"]
