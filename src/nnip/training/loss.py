"""Weighted energy/force/stress loss with masking of missing labels.

    L = w_E * sum_b u_b rho((E_b - Ê_b) / N_b) / n_E
      + w_F * sum_i u_b(i) sum_a rho(F_ia - F̂_ia) / n_F
      + w_S * sum_b u_b mean_ab rho(S_bab - Ŝ_bab) / n_S
      + w_D * sum_b u_b mean_a rho(D_ba - D̂_ba) / n_D                 (dipole, e Å)

with rho the squared error (MSE), absolute error (MAE) or Huber function, u_b the
per-structure weight, and n_E, n_F, n_S the numbers of structures with energies, atoms
with forces and structures with stress (and dipole; its prediction needs a charge model). With rho = square the force term is
mean_i |F_i - F̂_i|^2. Structures without a label contribute nothing to its term.

Each term is returned as a (numerator, count) pair so data-parallel training can divide
by the global counts and match a single-process run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch

from nnip import keys
from nnip.errors import ConfigError
from nnip.strict import NON_NEGATIVE, POSITIVE

__all__ = ["LossConfig", "loss_terms", "combine"]

_KINDS = ("mse", "mae", "huber")


@dataclass
class LossConfig:
    """Weights and penalty of each term. Units: energy per atom eV, forces eV/Å, stress eV/Å^3.

    Args:
        energy_weight, forces_weight, stress_weight, dipole_weight: w_E, w_F, w_S, w_D (0 switches
            a term off; the dipole term needs a model with predicted charges, e.g. electrostatics). w_E
            weighs the per-atom energy error, w_F the error of each atom's force vector summed over its three
            components (three times a per-component mean: MACE's forces_weight 100 is w_F 33).
        energy, forces, stress, dipole: penalty rho of each term: "mse", "mae" or "huber".
        huber_delta: where Huber turns from quadratic to linear, in the term's unit.
    """

    energy_weight: Annotated[float, NON_NEGATIVE] = 1.0
    forces_weight: Annotated[float, NON_NEGATIVE] = 10.0
    stress_weight: Annotated[float, NON_NEGATIVE] = 0.0
    dipole_weight: Annotated[float, NON_NEGATIVE] = 0.0
    energy: str = "mse"
    forces: str = "mse"
    stress: str = "mse"
    dipole: str = "mse"
    huber_delta: Annotated[float, POSITIVE] = 0.01

    def __post_init__(self) -> None:
        for name in ("energy", "forces", "stress", "dipole"):
            if getattr(self, name) not in _KINDS:
                raise ConfigError(f"{name}: expected one of {', '.join(_KINDS)}, got {getattr(self, name)!r}")
            if getattr(self, f"{name}_weight") < 0:
                raise ConfigError(f"{name}_weight must be >= 0")
        if self.huber_delta <= 0:
            raise ConfigError("huber_delta must be > 0")
        if not sum(self.weights().values()) > 0:
            raise ConfigError("energy_weight, forces_weight, stress_weight and dipole_weight are all 0: nothing to "
                              "train on; give at least one a positive weight")

    def weights(self) -> dict[str, float]:
        return {keys.ENERGY: self.energy_weight, keys.FORCES: self.forces_weight, keys.STRESS: self.stress_weight,
                keys.DIPOLE: self.dipole_weight}


def _penalty(error: torch.Tensor, kind: str, delta: float) -> torch.Tensor:
    if kind == "mse":
        return error.square()
    if kind == "mae":
        return error.abs()
    return torch.nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none", delta=delta)


def loss_terms(
    predicted: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    n_atoms: torch.Tensor,
    structure_index: torch.Tensor,
    config: LossConfig,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-term (weighted penalty sum, label count) for the terms with non-zero weight.

    Shapes: predicted/targets energy (B,), forces (N, 3), stress (B, 3, 3), dipole (B, 3); weight (B,);
    n_atoms (B,); structure_index (N,). Targets are NaN where a label is missing.
    """
    weight = targets[keys.WEIGHT]
    terms = {}
    if config.energy_weight > 0:
        target = targets[keys.ENERGY]
        mask = torch.isfinite(target)
        error = (predicted[keys.ENERGY] - torch.where(mask, target, 0.0)) / n_atoms
        penalty = _penalty(error, config.energy, config.huber_delta) * weight
        terms[keys.ENERGY] = (torch.where(mask, penalty, 0.0).sum(), mask.sum())
    if config.forces_weight > 0:
        target = targets[keys.FORCES]
        mask = torch.isfinite(target).all(dim=1)
        error = predicted[keys.FORCES].to(torch.float64) - torch.where(mask[:, None], target, 0.0)
        penalty = _penalty(error, config.forces, config.huber_delta).sum(dim=1) * weight[structure_index]
        terms[keys.FORCES] = (torch.where(mask, penalty, 0.0).sum(), mask.sum())
    if config.stress_weight > 0:
        target = targets[keys.STRESS]
        mask = torch.isfinite(target).flatten(1).all(dim=1)
        predicted_stress = torch.where(mask[:, None, None], predicted[keys.STRESS].to(torch.float64), 0.0)
        error = predicted_stress - torch.where(mask[:, None, None], target, 0.0)
        penalty = _penalty(error, config.stress, config.huber_delta).flatten(1).mean(dim=1) * weight
        terms[keys.STRESS] = (torch.where(mask, penalty, 0.0).sum(), mask.sum())
    if config.dipole_weight > 0:
        terms[keys.DIPOLE] = _dipole_term(predicted, targets, weight, config)
    return terms


def _dipole_term(predicted, targets, weight, config):
    if keys.DIPOLE not in predicted:
        raise ConfigError("training.loss.dipole_weight > 0 needs a model that predicts charges "
                          "(add an electrostatics term)")
    target = targets[keys.DIPOLE]
    # no dipole for periodic cells: a label there is ignored, like any missing label
    mask = torch.isfinite(target).all(dim=1) & torch.isfinite(predicted[keys.DIPOLE].detach()).all(dim=1)
    dipole = torch.where(mask[:, None], predicted[keys.DIPOLE].to(torch.float64), 0.0)
    penalty = _penalty(dipole - torch.where(mask[:, None], target, 0.0), config.dipole, config.huber_delta)
    return torch.where(mask, penalty.mean(dim=1) * weight, 0.0).sum(), mask.sum()


def combine(
    terms: dict[str, tuple[torch.Tensor, torch.Tensor]],
    config: LossConfig,
    counts: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """L = sum_t w_t * numerator_t / count_t; ``counts`` overrides the local counts (global counts in DDP)."""
    weights = config.weights()
    total = torch.zeros((), dtype=torch.float64)
    for name, (numerator, count) in terms.items():
        n = (counts or {}).get(name, count)
        total = total.to(numerator.device) + weights[name] * numerator / n.clamp(min=1)
    return total
