"""nnip: interatomic potentials enabled by machine learning.

One contract for every potential, E = f(Z_i, r_i) with forces and stress by autograd.

    >>> import nnip
    >>> frames = nnip.read("data.extxyz", require=("energy", "forces"))
    >>> atoms.calc = nnip.Calculator(nnip.load("model.pt"))
"""

from nnip.calculator import Calculator
from nnip.data import AtomicGraph, collate, inspect, read, write
from nnip.errors import CheckpointError, ConfigError, DataError, NnipError, OracleError
from nnip.potentials import Potential, load, save
from nnip.version import __version__

__all__ = [
    "__version__", "read", "write", "inspect", "load", "save", "Calculator", "Potential",
    "AtomicGraph", "collate", "NnipError", "DataError", "ConfigError", "CheckpointError", "OracleError",
]
