"""Active learning: sampling candidate structures (and, next, adversarial attacks and the loop)."""

from nnip.active.sampling import hessian, normal_mode_samples, rattled

__all__ = ["hessian", "normal_mode_samples", "rattled"]
