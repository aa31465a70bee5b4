"""nnip: interatomic potentials enabled by machine learning.

One contract for every potential, E = f(Z_i, r_i) with forces and stress by autograd.

    >>> import nnip
    >>> frames = nnip.read("data.extxyz", require=("energy", "forces"))
    >>> atoms.calc = nnip.Calculator(nnip.load("model.pt"))

The names below are imported on first use, so ``import nnip`` (and the ``lmp`` launcher, which
imports :mod:`nnip.lammps.plugin`) does not pay for torch until a name needs it.
"""

from importlib import import_module

from nnip.version import __version__

#: public name -> module that defines it
_EXPORTS = {
    "read": "nnip.data", "write": "nnip.data", "inspect": "nnip.data", "AtomicGraph": "nnip.data",
    "collate": "nnip.data", "load": "nnip.potentials", "save": "nnip.potentials", "Potential": "nnip.potentials",
    "Calculator": "nnip.calculator", "NnipError": "nnip.errors", "DataError": "nnip.errors",
    "ConfigError": "nnip.errors", "CheckpointError": "nnip.errors", "OracleError": "nnip.errors",
    "train": "nnip.training",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nnip' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
