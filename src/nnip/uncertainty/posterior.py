"""The Bayesian posterior of a closed-form linear fit as an ensemble of draws: uncertainty from one fit.

For a potential whose learned terms are linear in their coefficients (nnip.potentials.contract.linear),
the regularised least-squares fit is the mean of a Gaussian posterior N(c, Sigma), Sigma = L L^T
(nnip.training.least_squares.Solution.posterior_factor). Energies, forces and stress are linear in the
coefficients, q = x . c, so each has the posterior variance x^T Sigma x.

:func:`posterior_ensemble` returns an :class:`~nnip.potentials.contract.ensemble.Ensemble` of the
2K members c + a L z_k and c - a L z_k. The antithetic pairs make the members' mean exactly c, so
the ensemble predicts what the fit predicts, and the ensemble's unbiased spread,
sum_m (q_m - q)^2 / (2K - 1) = 2 a^2 / (2K - 1) sum_k (x . L z_k)^2, is with a^2 = (2K - 1) / 2
equal to sum_k (x . L z_k)^2: exactly x^T Sigma x when the z_k are the P columns of the identity
(K >= P), otherwise an unbiased estimate from K standard normal z_k / sqrt(K), with a relative standard
deviation of about sqrt(2 / K) per quantity. Being an Ensemble, it serves every consumer of ensembles
unchanged: the calculator's energy_std and forces_std, calibration (variance_scale), the adversarial
attack (its variance is differentiable), active learning and LAMMPS. Each member evaluates the basis
again: 2K evaluations per call.

Reference: C. M. Bishop, Pattern Recognition and Machine Learning (2006), Sec. 3.3 (Bayesian linear
regression).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.ensemble import Ensemble
from nnip.potentials.contract.linear import linear_terms

__all__ = ["posterior_ensemble", "posterior_directions", "linear_coefficients"]


def posterior_directions(factor: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """The K directions L z_k (P, K): L itself when ``samples`` >= P, else L times standard normal z_k / sqrt(K)."""
    size = factor.shape[1]
    if samples >= size:
        return factor
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randn(size, samples, generator=generator, dtype=factor.dtype) / math.sqrt(samples)
    return factor @ draws


def linear_coefficients(potential: Potential) -> list[torch.Tensor]:
    """The coefficients of the potential's linear terms, in the design's column order."""
    return [term.coefficients for term in linear_terms(potential)]


@torch.no_grad()
def posterior_ensemble(potential: Potential, factor: torch.Tensor, samples: int, seed: int = 0,
                       e0_columns: bool = False,
                       parameters: Callable[[Potential], list[torch.Tensor]] = linear_coefficients) -> Ensemble:
    """The ensemble of posterior draws of the module docstring around ``potential``'s fitted coefficients.

    Args:
        potential: the fitted potential (its coefficients are the posterior mean).
        factor: L (P', P') with L L^T the posterior covariance; P' = the coefficients, then, with
            ``e0_columns``, one E0 per element.
        samples: K, the number of antithetic pairs (2K members); K >= P' gives the exact variance.
        seed: of the random directions when K < P'.
        parameters: the tensors, of a potential, whose flattened concatenation is the coefficient vector:
            the linear terms' coefficients, or a network's last layer (nnip.uncertainty.last_layer).
    """
    directions = posterior_directions(factor, samples, seed)
    scale = math.sqrt((2 * directions.shape[1] - 1) / 2)
    mean = torch.cat([p.detach().reshape(-1) for p in parameters(potential)]).to(torch.float64)
    n = mean.numel()
    members = []
    for k in range(directions.shape[1]):
        for sign in (1.0, -1.0):
            step = sign * scale * directions[:, k]
            member = copy.deepcopy(potential)
            start = 0
            for tensor in parameters(member):
                size = tensor.numel()
                tensor.add_(step[start:start + size].reshape(tensor.shape).to(tensor.dtype))
                start += size
            if e0_columns:
                member.e0.add_(step[n:])
            members.append(member)
    return Ensemble(members)
