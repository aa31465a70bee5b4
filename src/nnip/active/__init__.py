"""Active learning: candidate structures (rattling, normal modes) and adversarial attacks."""

from nnip.active.adversarial import Attack, AttackResult, AttackSettings
from nnip.active.sampling import hessian, normal_mode_samples, potential_hessian, rattled

__all__ = ["hessian", "potential_hessian", "normal_mode_samples", "rattled", "Attack", "AttackSettings",
           "AttackResult"]
