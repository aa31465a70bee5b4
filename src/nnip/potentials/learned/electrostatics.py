"""Long-range electrostatics from predicted charges (PhysNet / 4G-HDNNP style).

A per-element electronegativity-like offset chi_Z plus a small SchNet (its own weights)
map each atom's environment to a raw charge q̂_i = chi_{Z_i} + s_i; the charges are then
corrected so each structure carries its total charge Q (PhysNet):

    q_i = q̂_i + (Q - sum_{j in b} q̂_j) / N_b

(chi makes ions far apart keep their charges; a lone neutral atom gets q = 0 and so E0.)

and interact as Gaussian charges of width sigma (smooth at short range):

    E_elec = 1/2 sum_{i != j} k_e q_i q_j erf(r_ij / (sqrt(2) sigma)) / r_ij
           = E_point - 1/2 sum_{i != j} k_e q_i q_j erfc(r_ij / (sqrt(2) sigma)) / r_ij

E_point is summed over all pairs for molecules and by Ewald summation for periodic cells
(``nnip.nn.coulomb_sums``); the erfc correction is short-ranged and summed over the edges
within the cutoff (erfc(r_c / (sqrt(2) sigma)) ~ 1e-15 for the default sigma = cutoff / 8).
Outputs: ``charges`` (N,) e and ``dipole`` (B, 3) e Å, sum_i q_i r_i about the coordinate
origin as in ASE (origin-dependent for charged structures; NaN for periodic cells). The
charges start small (nearly neutral atoms) and are learned from energies, forces and dipoles.

References: O. T. Unke and M. Meuwly, J. Chem. Theory Comput. 15, 3678 (2019);
T. W. Ko et al., Nat. Commun. 12, 398 (2021).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import torch

from nnip import keys
from nnip.errors import ConfigError
from nnip.nn.coulomb_sums import batch_pairs, direct_coulomb_energies, ewald_energies
from nnip.nn.scatter import scatter_sum
from nnip.potentials.contract.base import Edges, GlobalTerm, System
from nnip.potentials.learned.schnet import SchNet, SchNetConfig
from nnip.units import COULOMB_CONSTANT
from nnip.strict import CUTOFF

__all__ = ["Electrostatics", "ElectrostaticsConfig"]


@dataclass
class ElectrostaticsConfig:
    """Charge model and Coulomb sums.

    Args:
        cutoff: Å, of the charge model and of the Ewald real-space sum.
        features, interactions, basis: size of the charge model (a SchNet).
        sigma: Å, width of the Gaussian charges (short-range damping); default cutoff / 8.
        ewald_accuracy: relative truncation error of the Ewald sums.
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    features: int = 32
    interactions: int = 2
    basis: int = 20
    sigma: float | None = None
    ewald_accuracy: float = 1e-6

    def __post_init__(self) -> None:
        if self.sigma is not None and not 0 < self.sigma <= self.cutoff / 6:
            raise ConfigError(f"sigma must lie in (0, cutoff / 6 = {self.cutoff / 6:.3g}] Å, got {self.sigma}")
        if not 0 < self.ewald_accuracy < 1e-3:
            raise ConfigError(f"ewald_accuracy must lie in (0, 1e-3), got {self.ewald_accuracy}")


class Electrostatics(GlobalTerm):
    """Coulomb energy (eV) of charges predicted from local environments; see the module docstring."""

    name = "electrostatics"
    Config = ElectrostaticsConfig

    def __init__(self, config: ElectrostaticsConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.sigma = config.sigma or config.cutoff / 8.0
        self.charge_model = SchNet(SchNetConfig(cutoff=config.cutoff, features=config.features,
                                                interactions=config.interactions, basis=config.basis), elements)
        self.chi = torch.nn.Parameter(torch.zeros(len(self.elements)))
        with torch.no_grad():  # start near neutral atoms (tiny random Coulomb energy), but not at q = 0:
            last = self.charge_model.readout[-1]  # E is quadratic in q, so q = 0 is a stationary point
            last.weight.mul_(0.1)
            last.bias.zero_()

    def charges(self, species: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:
        """Charges (N,) e, corrected to each structure's total charge."""
        raw = self.chi[species] + self.charge_model(species, edges.half())  # SchNet takes a half list
        excess = scatter_sum(raw, system.structure_index, system.n_atoms.shape[0]) - system.total_charge.to(raw.dtype)
        return raw - (excess / system.n_atoms.to(raw.dtype))[system.structure_index]

    def _point_energies(self, q: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:
        """Point-charge Coulomb energies (N,) eV: all pairs of each molecule at once, Ewald per crystal."""
        periodic = system.pbc.all(dim=1)
        if bool((system.pbc.any(dim=1) & ~periodic).any()):
            raise ValueError("electrostatics needs structures periodic in all three directions or in none")
        first, second = batch_pairs(system.n_atoms, ~periodic)
        energies = direct_coulomb_energies(system.positions, q, first, second)
        starts = torch.cumsum(system.n_atoms, 0) - system.n_atoms
        for b in torch.nonzero(periodic).flatten().tolist():  # each crystal has its own k-vectors
            start, count = int(starts[b]), int(system.n_atoms[b])
            mine = system.structure_index[edges.center] == b
            value = ewald_energies(system.positions[start:start + count], system.cell[b], q[start:start + count],
                                   edges.center[mine] - start, edges.neighbor[mine] - start, edges.vectors[mine],
                                   self.cutoff, self.config.ewald_accuracy)
            energies = energies.index_put((torch.arange(start, start + count, device=q.device),), value)
        return energies

    def forward(self, species: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:
        """Coulomb energies per atom (N,) eV; puts charges (N,) and dipole (B, 3) into ``system.outputs``."""
        q = self.charges(species, edges, system)
        screening = torch.erfc(edges.lengths / (math.sqrt(2.0) * self.sigma)) / edges.lengths
        correction = 0.5 * COULOMB_CONSTANT * scatter_sum(q[edges.center] * q[edges.neighbor] * screening,
                                                           edges.center, q.shape[0])
        system.outputs[keys.CHARGES] = q
        dipole = scatter_sum(q[:, None] * system.positions, system.structure_index, system.n_atoms.shape[0])
        periodic = system.pbc.any(dim=1)[:, None]
        system.outputs[keys.DIPOLE] = torch.where(periodic, torch.full_like(dipole, float("nan")), dipole)
        return self._point_energies(q, edges, system) - correction
