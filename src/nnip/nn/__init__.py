"""Tensor building blocks shared by every potential: tensors in, tensors out."""

from nnip.nn.cutoffs import quintic_switch
from nnip.nn.scatter import scatter_sum

__all__ = ["quintic_switch", "scatter_sum"]
