"""Choosing the sparse (representative) points of a sparse Gaussian process from training environments.

Both rules take the environments' normalised descriptors x_i (N, D) and the kernel k(x, y) = (x . y)^power:

- ``variance``: greedy maximum predictive variance. Each step takes the environment whose kernel
  value is least explained by the points chosen so far, k(x, x) - k_xM K_MM^-1 k_Mx (the residual of
  the Nystrom approximation), which is the pivoted Cholesky factorisation of the kernel matrix
  (S. Fine, K. Scheinberg, JMLR 2, 243 (2001)). It stops early when every remaining residual is below
  ``tolerance`` times the largest k(x, x): duplicates and near-duplicates are never chosen twice.
  Cost O(N M (D + M)), memory O(N M); the N x N kernel matrix is never formed.
- ``cur``: the M environments of largest statistical leverage in the descriptor matrix,
  sum_{j < k} U_ij^2 over its k = min(M, rank) leading left singular vectors (M. W. Mahoney,
  P. Drineas, PNAS 106, 697 (2009); the choice of GAP, A. P. Bartok et al. 2010/2015). Cost O(N D^2).
"""

from __future__ import annotations

import torch

__all__ = ["greedy_variance", "leverage_cur", "SELECTIONS"]


def greedy_variance(x: torch.Tensor, power: int, count: int, tolerance: float = 1e-6) -> torch.Tensor:
    """Indices (<= count,) of the environments chosen by greedy maximum variance (module docstring)."""
    n = x.shape[0]
    count = min(count, n)
    diagonal = (x * x).sum(dim=1) ** power
    residual = diagonal.clone()
    factor = torch.zeros(n, count, dtype=x.dtype)
    chosen: list[int] = []
    floor = tolerance * float(diagonal.max()) if n else 0.0
    for j in range(count):
        pivot = int(torch.argmax(residual))
        if float(residual[pivot]) <= floor:
            break
        column = (x @ x[pivot]) ** power - factor[:, :j] @ factor[pivot, :j]
        factor[:, j] = column / float(residual[pivot]).__pow__(0.5)
        residual = (residual - factor[:, j] ** 2).clamp(min=0.0)
        residual[pivot] = 0.0
        chosen.append(pivot)
    return torch.tensor(chosen, dtype=torch.long)


def leverage_cur(x: torch.Tensor, count: int) -> torch.Tensor:
    """Indices (min(count, N),) of the environments of largest leverage (module docstring), in order of leverage."""
    count = min(count, x.shape[0])
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    rank = int((s > s.max() * 1e-10).sum()) if s.numel() else 0
    leverage = (u[:, :min(count, rank)] ** 2).sum(dim=1)
    return torch.argsort(leverage, descending=True, stable=True)[:count]


SELECTIONS = {"variance": lambda x, power, count: greedy_variance(x, power, count),
              "cur": lambda x, power, count: leverage_cur(x, count)}
