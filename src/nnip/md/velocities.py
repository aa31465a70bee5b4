"""Initial velocities."""

from __future__ import annotations

import numpy as np
from ase import Atoms

try:  # ASE >= 3.29
    from ase.md.velocitydistribution import thermalize_momenta as _thermalize
except ImportError:  # older ASE
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as _mb

    def _thermalize(atoms, temperature_K, rng=None):
        _mb(atoms, temperature_K=temperature_K, rng=rng)

from ase.md.velocitydistribution import Stationary

__all__ = ["maxwell_boltzmann"]


def maxwell_boltzmann(atoms: Atoms, temperature: float, seed: int | None = None, stationary: bool = True) -> None:
    """Draw momenta from the Maxwell-Boltzmann distribution at ``temperature`` K (in place).

    With ``stationary`` the centre-of-mass momentum is removed afterwards.
    """
    _thermalize(atoms, temperature, rng=np.random.default_rng(seed))
    if stationary:
        Stationary(atoms)
