"""Scatter reductions over an index (sums of edge or atom values onto atoms or structures)."""

import torch

__all__ = ["scatter_sum"]


def scatter_sum(src: torch.Tensor, index: torch.Tensor, dim_size: int) -> torch.Tensor:
    """Sum rows of ``src`` into ``dim_size`` bins given by ``index``.

    Shapes: src (E, ...), index (E,) int64 -> (dim_size, ...).
    """
    out = torch.zeros((dim_size, *src.shape[1:]), dtype=src.dtype, device=src.device)
    return out.index_add_(0, index, src)
