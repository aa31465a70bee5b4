"""Closed-form fit of a potential's linear terms: regularised least squares on energies, forces and stress.

``training.optimizer: least_squares`` minimises the training loss of nnip.training.loss with squared
errors, its weights w_E, w_F, w_S and the per-structure weights u_b, plus a ridge penalty:

    L(c) = w_E / n_E sum_b u_b ((X_b c - y_b) / N_b)^2 + w_F / n_F sum_i u_b |D_i c - f_i|^2
           + w_S / n_S sum_b u_b mean_ab (S_b,ab c - s_b,ab)^2 + lambda c^T P c

X, D, S: the design rows of the linear terms (nnip.potentials.contract.linear.design); y, f, s: the
labels minus what the rest of the potential predicts (E0, shift, other terms); n_E, n_F, n_S: the
numbers of labelled structures, atoms and stresses. With least-squares E0 the per-element energies
are refitted in the same solve (composition columns). P: the identity, or the terms' own prior
precision (LinearTerm.prior_precision: a sparse GP's K_MM), handled by solving for b = L^T c with
P = L L^T. The normal equations G c = h (float64, accumulated batch by batch) are solved for every
lambda of a grid at once from one eigendecomposition G = V diag(mu) V^T: c(lambda) = V (V^T h) /
(mu + lambda). ``training.ridge`` picks lambda: "validation" minimises the validation loss (without
validation data: GCV), "gcv" the generalised cross-validation score of the training rows (G. H.
Golub, M. Heath, G. Wahba, Technometrics 21, 215 (1979)), "evidence" maximises the marginal
likelihood of the training rows, log p(y) = -R/2 log(q / R) - 1/2 sum_j log(1 + mu_j / lambda) +
const, q = y.y - h^T (G + lambda)^-1 h, R rows, with the noise variance sigma^2 = q / R at its
maximum (C. M. Bishop, Pattern Recognition and Machine Learning, Sec. 3.5). Cost: O(rows x P^2) to
accumulate and O(P^3) for the eigendecomposition, P coefficients; memory O(P^2). No gradient
descent, no epochs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from nnip import keys
from nnip.data.dataset import AtomicDataset
from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.linear import design, linear_terms, n_coefficients, prior_precision, set_coefficients
from nnip.progress import stage_bar
from nnip.training.config import TrainingConfig
from nnip.training.trainer import TrainResult

__all__ = ["fit_least_squares", "check_least_squares", "Solution"]

#: regularisation strengths tried, relative to the mean eigenvalue of the normal equations
RELATIVE_LAMBDAS = torch.logspace(-12, 0, 25, dtype=torch.float64)


def check_least_squares(potential: Potential, config: TrainingConfig) -> None:
    """ConfigError unless the potential has linear terms and nothing else to train, and the loss is squared."""
    if not linear_terms(potential):
        raise ConfigError(f"training.optimizer: least_squares fits linear terms (linear_ace, sparse_gp); the model has "
                          f"{', '.join(t.name for t in potential.terms)}: use adam")
    others = [t.name for t in potential.terms if t not in linear_terms(potential) and any(True for _ in t.parameters())]
    if others:
        raise ConfigError(f"training.optimizer: least_squares fits only linear terms; {', '.join(others)} would stay "
                          "untrained: use adam")
    for name in ("energy", "forces", "stress"):
        if getattr(config.loss, f"{name}_weight") > 0 and getattr(config.loss, name) != "mse":
            raise ConfigError(f"training.loss.{name}: least_squares fits squared errors; set it to mse")


@dataclass
class _Rows:
    """Weighted rows of one batch: matrix (R, P) and targets (R,), float64."""

    matrix: torch.Tensor
    target: torch.Tensor


def _counts(dataset: AtomicDataset) -> dict[str, int]:
    """Labelled structures (energy, stress) and atoms (forces) of the data set: the loss's denominators."""
    counts = {keys.ENERGY: 0, keys.FORCES: 0, keys.STRESS: 0}
    for sample in dataset.samples:
        counts[keys.ENERGY] += int(torch.isfinite(sample.energy).item())
        counts[keys.FORCES] += int(torch.isfinite(sample.forces).all(dim=1).sum())
        counts[keys.STRESS] += int(torch.isfinite(sample.stress).all().item())
    return counts


def _batch_rows(potential: Potential, graph, targets, config: TrainingConfig, counts: dict[str, int],
                composition: bool) -> _Rows:
    """The weighted design rows and residual targets of one batch (module docstring)."""
    loss = config.loss
    use_forces = loss.forces_weight > 0 and counts[keys.FORCES] > 0
    use_stress = loss.stress_weight > 0 and counts[keys.STRESS] > 0
    baseline = potential(graph, compute_forces=use_forces, compute_stress=use_stress)
    rows = design(potential, graph, forces=use_forces, stress=use_stress)
    weight = targets[keys.WEIGHT]
    n_atoms = graph.n_atoms.to(torch.float64)
    energy_rows = rows.energy
    if composition:
        species = potential.species(graph.atomic_numbers)
        counts_by_species = torch.zeros(graph.n_structures, len(potential.elements), dtype=torch.float64)
        counts_by_species.index_put_((graph.structure_index, species), torch.ones_like(species, dtype=torch.float64),
                                     accumulate=True)
        energy_rows = torch.cat([energy_rows, counts_by_species], dim=1)
    width = energy_rows.shape[1]
    matrices, values = [], []
    if loss.energy_weight > 0 and counts[keys.ENERGY] > 0:
        label = targets[keys.ENERGY]
        keep = torch.isfinite(label)
        factor = (loss.energy_weight * weight / counts[keys.ENERGY]).sqrt() / n_atoms
        matrices.append((energy_rows * factor[:, None])[keep])
        values.append(((label - baseline[keys.ENERGY].detach()) * factor)[keep])
    if use_forces:
        label = targets[keys.FORCES]
        keep = torch.isfinite(label).all(dim=1)
        factor = (loss.forces_weight * weight[graph.structure_index] / counts[keys.FORCES]).sqrt()
        matrix = _pad(rows.forces, width) * factor[:, None, None]
        matrices.append(matrix[keep].reshape(-1, width))
        values.append(((label - baseline[keys.FORCES].detach()) * factor[:, None])[keep].reshape(-1))
    if use_stress:
        label = targets[keys.STRESS]
        keep = torch.isfinite(label).flatten(1).all(dim=1)
        factor = (loss.stress_weight * weight / (9 * counts[keys.STRESS])).sqrt()
        matrix = _pad(rows.stress, width) * factor[:, None, None, None]
        matrices.append(matrix[keep].reshape(-1, width))
        values.append(((label - baseline[keys.STRESS].detach()) * factor[:, None, None])[keep].reshape(-1))
    return _Rows(torch.cat(matrices), torch.cat(values))


def _pad(rows: torch.Tensor, width: int) -> torch.Tensor:
    """Derivative rows (..., P) with zero composition columns up to ``width``."""
    missing = width - rows.shape[-1]
    return torch.nn.functional.pad(rows, (0, missing)) if missing else rows


def _rows_of(potential, dataset: AtomicDataset, config: TrainingConfig, composition: bool, label: str | None):
    """Weighted rows batch by batch (structures of one size together, few derivative passes)."""
    counts = _counts(dataset)
    order = sorted(range(len(dataset)), key=lambda k: int(dataset.samples[k].graph.n_atoms.sum()))
    batches = list(dataset.batches(config.batch_size, torch.float64, order))
    with stage_bar(len(batches), label, "batch") as bar:
        for graph, targets in batches:
            yield _batch_rows(potential, graph, targets, config, counts, composition)
            bar.update(1)


@dataclass
class _Normal:
    """Normal equations G c = h of the weighted rows, with y.y and the row count."""

    gram: torch.Tensor
    rhs: torch.Tensor
    squares: float
    rows: int

    def loss(self, coefficients: torch.Tensor) -> float:
        """Weighted squared error sum of the rows at ``coefficients`` (the training loss without the penalty)."""
        return float(self.squares - 2 * coefficients @ self.rhs + coefficients @ self.gram @ coefficients)


def _normal_equations(rows) -> _Normal:
    normal = None
    for batch in rows:
        if normal is None:
            width = batch.matrix.shape[1]
            normal = _Normal(torch.zeros(width, width, dtype=torch.float64), torch.zeros(width, dtype=torch.float64),
                             0.0, 0)
        normal.gram += batch.matrix.T @ batch.matrix
        normal.rhs += batch.matrix.T @ batch.target
        normal.squares += float(batch.target @ batch.target)
        normal.rows += batch.matrix.shape[0]
    return normal


@dataclass
class Solution:
    """The fit: coefficients (P,) (linear terms, then E0 per element with ``refit_e0``), lambda, the noise
    variance of the weighted rows and the eigendecomposition (mu, vectors) of G, from which
    :meth:`posterior_factor` follows; ``figures`` for the run's history."""

    coefficients: torch.Tensor
    lam: float
    noise_variance: float
    mu: torch.Tensor
    vectors: torch.Tensor
    figures: dict[str, float]

    def posterior_factor(self) -> torch.Tensor:
        """L (P, P) with L L^T = the Bayesian posterior covariance sigma^2 (G + lambda I)^-1 of the coefficients
        (Gaussian likelihood of the weighted rows with noise variance sigma^2, prior N(0, sigma^2 / lambda))."""
        return self.vectors * (self.noise_variance / (self.mu + self.lam)).sqrt()


def _whiten(normal: _Normal, val: list[_Rows] | None, precision: torch.Tensor | None):
    """With a ridge matrix P = L L^T, the problem in b = L^T c, whose penalty is lambda |b|^2: G -> T^T G T,
    h -> T^T h, validation rows X -> X T, with T = L^-T; returns them and T (None for P = I)."""
    if precision is None:
        return normal, val, None
    lower = torch.linalg.cholesky(precision)
    transform = torch.linalg.solve_triangular(lower.T, torch.eye(lower.shape[0], dtype=lower.dtype), upper=True)
    whitened = _Normal(transform.T @ normal.gram @ transform, transform.T @ normal.rhs, normal.squares, normal.rows)
    rows = [_Rows(r.matrix @ transform, r.target) for r in val] if val else val
    return whitened, rows, transform


def _evidence_residual(normal: _Normal, mu, projected, lam: float) -> float:
    """q = y.y - h^T (G + lambda)^-1 h, the evidence's quadratic form (module docstring)."""
    return normal.squares - float((projected * projected / (mu + lam)).sum())


def _score(criterion: str, normal: _Normal, mu, projected, lam: float, val) -> float:
    """What lambda minimises: the validation loss, the GCV score or minus the log marginal likelihood."""
    solution = projected / (mu + lam)
    if criterion == "validation":
        matrix, target = val
        return float(((matrix @ solution - target) ** 2).sum())
    if criterion == "gcv":
        dof = float((mu / (mu + lam)).sum())
        residual = normal.squares - 2 * float(projected @ solution) + float((mu * solution * solution).sum())
        return normal.rows * residual / max(normal.rows - dof, 1e-12) ** 2
    quadratic = max(_evidence_residual(normal, mu, projected, lam), 1e-300)
    return 0.5 * normal.rows * math.log(quadratic / normal.rows) + 0.5 * float(torch.log1p(mu / lam).sum())


def _choose_lambda(normal: _Normal, val: list[_Rows] | None, criterion: str) -> Solution:
    """The solution at the lambda of the grid that minimises ``criterion`` (module docstring); "validation"
    without validation rows falls back to GCV."""
    mu, vectors = torch.linalg.eigh(normal.gram)
    mu = mu.clamp(min=0.0)
    projected = vectors.T @ normal.rhs
    if criterion == "validation" and not val:
        criterion = "gcv"
    held_out = (torch.cat([r.matrix for r in val]) @ vectors, torch.cat([r.target for r in val])) if val else None
    grid = (RELATIVE_LAMBDAS * mu.mean().clamp(min=1e-300)).tolist()
    scores = [_score(criterion, normal, mu, projected, lam, held_out) for lam in grid]
    best = min(range(len(grid)), key=scores.__getitem__)
    lam, score = grid[best], scores[best]
    coefficients = vectors @ (projected / (mu + lam))
    dof = float((mu / (mu + lam)).sum())
    residual = normal.loss(coefficients)
    if criterion == "evidence":  # the maximum-likelihood noise of the evidence
        noise = _evidence_residual(normal, mu, projected, lam) / normal.rows
    else:
        noise = residual / max(normal.rows - dof, 1.0)
    names = {"validation": "val_loss", "gcv": "gcv_score", "evidence": "minus_log_evidence"}
    figures = {"train_loss": residual, "lambda": lam, "effective_parameters": dof, "noise_variance": noise,
               names[criterion]: score}
    return Solution(coefficients, lam, noise, mu, vectors, figures)


def fit_least_squares(potential: Potential, train: AtomicDataset, val: AtomicDataset | None,
                      config: TrainingConfig, refit_e0: bool, label: str | None = None
                      ) -> tuple[TrainResult, Solution]:
    """Set the linear terms' coefficients (and, with ``refit_e0``, E0) by the regularised least-squares fit of
    the module docstring; returns the fit as a one-epoch TrainResult, whose history row holds the training and
    validation loss, lambda, the effective number of parameters and the noise variance, and the Solution."""
    check_least_squares(potential, config)
    started = time.perf_counter()
    dtype = getattr(torch, config.dtype) if config.dtype else potential.dtype
    potential.double()
    try:
        set_coefficients(potential, torch.zeros(n_coefficients(potential), dtype=torch.float64))
        normal = _normal_equations(_rows_of(potential, train, config, refit_e0, label))
        wanted = config.ridge == "validation" and val is not None and len(val)
        val_rows = list(_rows_of(potential, val, config, refit_e0, None)) if wanted else None
        normal, val_rows, transform = _whiten(normal, val_rows, prior_precision(potential, normal.rhs.shape[0]))
        fit = _choose_lambda(normal, val_rows, config.ridge)
        if transform is not None:  # back from b = L^T c to the coefficients
            fit.coefficients, fit.vectors = transform @ fit.coefficients, transform @ fit.vectors
        coefficients = fit.coefficients
        if not bool(torch.isfinite(coefficients).all()):
            raise ConfigError("training.optimizer: least_squares gave non-finite coefficients; check the labels")
        p = n_coefficients(potential)
        set_coefficients(potential, coefficients[:p])
        if refit_e0:
            with torch.no_grad():
                potential.e0.add_(coefficients[p:])
    finally:
        potential.to(dtype)
    seconds = time.perf_counter() - started
    history = [{"epoch": 1.0, **{k: float(v) for k, v in fit.figures.items()}}]
    return TrainResult(epochs=1, stopped="least_squares", train_seconds=seconds, best_epoch=0, history=history), fit
