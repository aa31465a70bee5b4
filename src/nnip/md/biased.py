"""Any ASE calculator plus bias terms (e.g. metadynamics), keeping the unbiased results apart.

MD runs on the biased energy and forces, but a trajectory is also a labelled dataset: the
results ``unbiased_energy`` and ``unbiased_forces`` (what the wrapped calculator gave) and
``bias_energy`` let :func:`nnip.md.run.run_md` write the unbiased labels to each frame.
Other results of the wrapped calculator (an ensemble's ``max_force_std``, say) pass through.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.potentials.contract.base import Potential, Term

__all__ = ["BiasedCalculator"]


class BiasedCalculator(Calculator):
    """``calculator`` + sum of ``terms`` (a float64 :class:`Potential` built for ``elements``).

    The terms are used as given (not copied), so a metadynamics bias that gains hills
    during the run is seen at the next step.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, calculator: Calculator, terms: Sequence[Term], elements: Sequence[int | str], **kwargs):
        super().__init__(**kwargs)
        self.calculator = calculator
        self.bias = Potential(list(terms), elements).to(torch.float64)  # holds the same term objects

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        energy = self.calculator.get_potential_energy(self.atoms)
        forces = self.calculator.get_forces(self.atoms)
        extra = {k: v for k, v in self.calculator.results.items() if k not in ("energy", "free_energy", "forces")}
        graph = AtomicGraph.from_atoms(self.atoms, self.bias.neighbor_request())
        with torch.set_grad_enabled(True):
            out = self.bias(graph, compute_forces=True)
        bias_energy = float(out[keys.ENERGY].detach().sum())
        bias_forces = out[keys.FORCES].detach().numpy().astype(np.float64)
        self.results = {**extra, "energy": energy + bias_energy, "free_energy": energy + bias_energy,
                        "forces": forces + bias_forces, "unbiased_energy": energy, "unbiased_forces": forces,
                        "bias_energy": bias_energy}
