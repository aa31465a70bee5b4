"""Reference methods ("oracles") behind one protocol: ``label(frames) -> labelled frames``."""

from nnip.oracles.analytic import DoubleWell
from nnip.oracles.base import CalculatorOracle, Oracle
from nnip.oracles.labelling import label_file, label_frames
from nnip.oracles.registry import ORACLES, get_oracle

__all__ = ["Oracle", "CalculatorOracle", "DoubleWell", "ORACLES", "get_oracle", "label_frames", "label_file"]
