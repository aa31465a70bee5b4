"""Exception hierarchy. Every message says what went wrong and, where it helps, what to do.

User mistakes (bad files, bad configs, foreign checkpoints) raise a subclass of
:class:`NnipError`; the command-line interface prints its one-line message and exits 2
instead of showing a traceback.
"""

__all__ = ["NnipError", "DataError", "ConfigError", "CheckpointError", "OracleError", "NumericalError"]


class NnipError(Exception):
    """Base class of every error nnip raises on purpose."""


class DataError(NnipError, ValueError):
    """A structure or data file is unusable: names the file, the frame and the problem."""


class ConfigError(NnipError, ValueError):
    """A configuration key or value is invalid: names the key and the expected value."""


class CheckpointError(NnipError, ValueError):
    """A file is not an nnip model, is truncated, or comes from a newer format."""


class OracleError(NnipError, RuntimeError):
    """A reference method (oracle) failed to label a structure."""


class NumericalError(NnipError, ArithmeticError):
    """A computation gave NaN or inf (a training loss or gradient, MD energies or forces): names where and the
    likely cause; what was written before it stays valid."""
