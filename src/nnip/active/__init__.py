"""Active learning: sampling candidate structures (and, next, adversarial attacks and the loop)."""

from nnip.active.sampling import hessian, normal_mode_samples, potential_hessian, rattled

__all__ = ["hessian", "potential_hessian", "normal_mode_samples", "rattled"]
