"""Analytic toy surfaces as ASE calculators.

The 2-D double well of the adversarial-attack paper (Schwalbe-Koda, Tan and
Gomez-Bombarelli, Nat. Commun. 12, 5104 (2021)) for one particle moving in x and y:

    E(x, y) = 10 x^4 - 10 x^2 + 2 x + 4 y^2    (eV, x and y in Å; z does not enter)
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

__all__ = ["DoubleWell"]


class DoubleWell(Calculator):
    """Energy (eV) and forces (eV/Å) of the double well for a one-atom system."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if len(self.atoms) != 1:
            raise ValueError(f"the double well is defined for one particle, got {len(self.atoms)} atoms")
        x, y, _ = self.atoms.positions[0]
        energy = 10 * x**4 - 10 * x**2 + 2 * x + 4 * y**2
        forces = -np.array([[40 * x**3 - 20 * x + 2, 8 * y, 0.0]])
        self.results = {"energy": float(energy), "free_energy": float(energy), "forces": forces}
