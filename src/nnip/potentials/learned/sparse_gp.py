"""Sparse Gaussian-process regression of atomic energies (GAP, FLARE's sparse GP) on the ACE descriptors.

The energy of atom i is a Gaussian process over its environment's descriptor, one per element of i,
with the sum of a linear kernel and a dot-product kernel to a power:

    e_i = w_{Z_i} . d_i / sqrt(D) + sum_m alpha_{Z_i, m} k(x_i, x_m),    k(x, y) = (x . y)^power,
    x = d / sqrt(1 + |d|^2)

d: the ACE invariants of nnip.nn.ace (body order up to 4), each divided by its root mean square over
the training atoms; x_m: the descriptors of M sparse points per element, chosen from the training
environments (nnip.nn.sparse_points: greedy maximum variance or CUR). The normalisation makes k a
dot product of nearly unit vectors, as GAP's normalised SOAP kernel, while staying smooth where
neighbours enter the cutoff: an atom without neighbours has x = 0 and the energy E0. Normalising
drops the descriptor's magnitude (how many neighbours, how close); the linear kernel d . d' / D (D
descriptor components, so that both kernels are of order one) keeps it, as GAP adds a two-body
descriptor to SOAP (``linear: false`` leaves it out; docs/benchmarks.md has both on mlearn Si). In
weight space the linear part is w with prior N(0, sigma^2 / lambda I).

Regression. Energies are sums of e_i and forces and stress their derivatives, so all are linear in
(w, alpha) (a :class:`~nnip.potentials.contract.linear.LinearTerm` whose features are d and the kernel
values). The GP prior alpha ~ N(0, (sigma^2 / lambda) K_MM^-1) (the subset-of-regressors
approximation, K_MM the sparse points' kernel matrix plus ``jitter`` times its mean diagonal) is the
ridge penalty lambda alpha^T K_MM alpha of the closed-form fit (``training.optimizer: least_squares``,
which reads :meth:`prior_precision`); lambda and the noise sigma^2 maximise the marginal likelihood
with ``training.ridge: evidence``. The fit's posterior of alpha gives energy, force and stress variances
(``training.posterior_samples``); :meth:`residual_variance` is the part the sparse points cannot
represent, k(x, x) - k_xM K_MM^-1 k_Mx, which with the coefficient posterior gives the
deterministic-training-conditional (DTC) variance of a local energy.

Cost, F = M (+ D with the linear part) features per element: choosing the points O(N M (D + M)) for
N training atoms; the fit O(R F^2 S^2 + (F S)^3) for R rows (energies and force components) and S
elements (nnip.training.least_squares); a prediction O(n M D) for n atoms, against O(N_R^3) for a
dense GP on N_R labels.

References: A. P. Bartok, M. C. Payne, R. Kondor, G. Csanyi, Phys. Rev. Lett. 104, 136403 (2010);
J. Vandermause et al., npj Comput. Mater. 6, 20 (2020); Y. Xie, J. Vandermause et al., npj Comput.
Mater. 9, 36 (2023); J. Quinonero-Candela, C. E. Rasmussen, JMLR 6, 1939 (2005).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import torch
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.ace import ACEBasis
from nnip.nn.sparse_points import SELECTIONS
from nnip.potentials.contract.base import Edges
from nnip.potentials.contract.linear import DensityTerm
from nnip.potentials.learned.linear_ace import LinearACEConfig
from nnip.strict import AT_LEAST_ONE, CUTOFF, POSITIVE, Bounds

__all__ = ["SparseGP", "SparseGPConfig"]


def _normalised(d: torch.Tensor) -> torch.Tensor:
    """d / sqrt(1 + |d|^2) per row: nearly unit length, and zero for zero."""
    return d / (1.0 + (d * d).sum(dim=1, keepdim=True)).sqrt()


@dataclass
class SparseGPConfig(LinearACEConfig):
    """Sparse GP hyperparameters.

    Args:
        cutoff: Å. radial, l_max, degrees: the ACE descriptor (nnip.potentials.learned.linear_ace).
        sparse_points: M, sparse points per element (fewer when the training data have fewer
            distinct environments). power: exponent of the dot-product kernel (GAP's zeta).
        selection: "variance" (greedy maximum variance) or "cur" (leverage scores).
        jitter: added to K_MM's diagonal, relative to its mean diagonal.
        linear: add a linear kernel d . d' on the scaled descriptor (module docstring).
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    radial: Annotated[int, AT_LEAST_ONE] = 6
    l_max: Annotated[int, Bounds(0, 6)] = 3
    degrees: list[int] = field(default_factory=lambda: [5, 6, 4])
    sparse_points: Annotated[int, AT_LEAST_ONE] = 500
    power: Annotated[int, AT_LEAST_ONE] = 4
    selection: str = "variance"
    jitter: Annotated[float, POSITIVE] = 1e-8
    linear: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection: expected one of {', '.join(SELECTIONS)}, got {self.selection!r}")


class SparseGP(DensityTerm):
    """Per-atom energies of a sparse GP (module docstring). Shapes: species (N,), edges -> (N,) eV."""

    name = "sparse_gp"

    def __init__(self, config: SparseGPConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.basis = ACEBasis(len(self.elements), config.cutoff, config.radial, config.l_max, config.degrees)
        n_species, m, d = len(self.elements), config.sparse_points, self.basis.n_features
        self.coefficients = nn.Parameter(torch.zeros(n_species, m + (d if config.linear else 0)))
        self.register_buffer("feature_scale", torch.ones(d))
        self.register_buffer("sparse", torch.zeros(n_species, m, d))  # normalised descriptors; zero rows: unused

    def descriptors(self, invariants: torch.Tensor) -> torch.Tensor:
        """x (N, D): the scaled ACE invariants d = B / s, normalised to d / sqrt(1 + |d|^2)."""
        return _normalised(invariants / self.feature_scale)

    def kernel(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """k(x_i, x_m) (N, M) to the sparse points of each atom's element."""
        n_species, m, d = self.sparse.shape
        dots = (x @ self.sparse.reshape(n_species * m, d).T).view(-1, n_species, m)
        own = dots.gather(1, species.view(-1, 1, 1).expand(-1, 1, m)).squeeze(1)
        return own ** self.config.power

    def from_invariants(self, species: torch.Tensor, invariants: torch.Tensor) -> torch.Tensor:
        """The regression's features: d / sqrt(D) (N, D) with ``linear``, then the kernel values (N, M) to the
        sparse points."""
        values = self.kernel(self.descriptors(invariants), species)
        if not self.config.linear:
            return values
        return torch.cat([invariants / (self.feature_scale * self.feature_scale.shape[0] ** 0.5), values], dim=1)

    def kernel_matrix(self) -> torch.Tensor:
        """K_MM + jitter per element (S, M, M), from the stored points (so in the model's dtype); the identity in
        the rows and columns of unused points, whose features are zero."""
        used = self.sparse.abs().sum(dim=2) > 0
        block = (self.sparse @ self.sparse.transpose(1, 2)) ** self.config.power
        mean_diagonal = block.diagonal(dim1=1, dim2=2).sum(dim=1) / used.sum(dim=1).clamp(min=1)
        jitter = self.config.jitter * mean_diagonal[:, None] * used
        eye = torch.eye(block.shape[1], dtype=block.dtype, device=block.device)
        return torch.where(used[:, :, None] & used[:, None, :], block, 0.0) + eye * torch.where(used, jitter, 1.0)[:, None]

    def prior_precision(self) -> torch.Tensor:
        """The ridge penalty's matrix (module docstring), block-diagonal over elements: per element the identity
        (D, D) of the linear part with ``linear``, then K_MM + jitter; (S F, S F)."""
        matrices = self.kernel_matrix()
        if self.config.linear:
            eye = torch.eye(self.feature_scale.shape[0], dtype=matrices.dtype, device=matrices.device)
            return torch.block_diag(*(torch.block_diag(eye, m) for m in matrices))
        return torch.block_diag(*matrices)

    def residual_variance(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """k(x, x) - k_xM K_MM^-1 k_Mx per atom (N,), dimensionless (times the prior variance sigma^2 / lambda)."""
        x = self.descriptors(self.basis(species, edges.center, edges.neighbor, edges.vectors, edges.lengths))
        k = self.kernel(x, species)
        factor = torch.linalg.cholesky(self.kernel_matrix())[species]
        solved = torch.linalg.solve_triangular(factor, k[:, :, None], upper=False).squeeze(-1)
        return (x * x).sum(dim=1) ** self.config.power - (solved * solved).sum(dim=1)

    @torch.no_grad()
    def fit_to_data(self, batches: Sequence[tuple[torch.Tensor, Edges]]) -> None:
        """Feature scales from the training atoms, then the sparse points of each element."""
        raw, species = [], []
        for s, edges in batches:
            raw.append(self.basis(s, edges.center, edges.neighbor, edges.vectors, edges.lengths).to(torch.float64))
            species.append(s)
        raw, species = torch.cat(raw), torch.cat(species)
        rms = (raw * raw).mean(dim=0).sqrt()
        scale = torch.where(rms > 0, rms, torch.ones_like(rms))
        self.feature_scale.copy_(scale)
        x = _normalised(raw / scale)
        power, m = self.config.power, self.config.sparse_points
        sparse = torch.zeros(self.sparse.shape, dtype=torch.float64)
        for s in range(len(self.elements)):
            own = x[species == s]
            own = own[(own * own).sum(dim=1) > 0]  # atoms without neighbours have zero kernel values
            points = own[SELECTIONS[self.config.selection](own, power, m)]
            sparse[s, :points.shape[0]] = points
        self.sparse.copy_(sparse)

    def sparse_counts(self) -> list[int]:
        """Sparse points in use per element (rows of ``sparse`` that are not zero)."""
        return [int((row.abs().sum(dim=1) > 0).sum()) for row in self.sparse]
