"""Ensemble of potentials: the mean prediction plus the variance over members.

For each quantity X in energy, atomic energies, forces, stress, virial (and charges and
dipole when the members predict them) the output holds
X = mean_m X_m, ``X_var`` = s^2 sum_m (X_m - X)^2 / (M - 1) (unbiased; zeros for one
member; s^2 = ``variance_scale``, a calibration factor fitted on validation data, default 1)
and ``X_members`` (M, ...). Members may differ in architecture and cutoff; graphs are built
for the request that covers them all (:meth:`Ensemble.neighbor_request`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.nn.execution import Memory
from nnip.potentials.contract.base import Potential

__all__ = ["Ensemble"]

_QUANTITIES = (keys.ENERGY, keys.ATOMIC_ENERGIES, keys.FORCES, keys.STRESS, keys.VIRIAL, keys.CHARGES, keys.DIPOLE)


class Ensemble(nn.Module):
    """M potentials evaluated on the same structures (same elements).

    Args:
        members: the potentials (at least one), all for the same elements.
    """

    def __init__(self, members: Sequence[Potential]):
        super().__init__()
        if len(members) == 0:
            raise ValueError("an Ensemble needs at least one member")
        elements = [m.elements.tolist() for m in members]
        if any(e != elements[0] for e in elements):
            raise ValueError(f"ensemble members know different elements: {elements}")
        self.members = nn.ModuleList(members)
        #: calibration factor s^2 applied to every *_var output (fitted on validation data; 1 = raw spread)
        self.register_buffer("variance_scale", torch.tensor(1.0, dtype=torch.float64))

    def __len__(self) -> int:
        return len(self.members)

    @property
    def cutoff(self) -> float:
        return max(m.cutoff for m in self.members)

    def neighbor_request(self, skin: float = 0.0) -> NeighborRequest:
        """The largest cutoff of the members, a full list unless every member takes a half list."""
        return NeighborRequest(self.cutoff, any(m.neighbor_request().full for m in self.members), skin)

    @property
    def memory(self) -> Memory:
        """The members' memory setting (nnip.nn.execution.Memory); set it on all of them at once."""
        return self.members[0].memory

    @memory.setter
    def memory(self, value: Memory | str | dict | None) -> None:
        for member in self.members:
            member.memory = value

    @property
    def dtype(self) -> torch.dtype:
        return self.members[0].dtype

    @property
    def elements(self) -> torch.Tensor:
        return self.members[0].elements

    @property
    def element_symbols(self) -> list[str]:
        return self.members[0].element_symbols

    def compile_terms(self) -> "Ensemble":
        """Freeze and compile the terms of every member for inference (see Potential.compile_terms); returns self."""
        for member in self.members:
            member.compile_terms()
        return self

    def forward(self, graph: AtomicGraph, compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> dict[str, torch.Tensor]:
        """Mean, ``_var`` and ``_members`` of each output of the members (shapes as Potential, members (M, ...))."""
        outputs = [m(graph, compute_forces, compute_stress, create_graph) for m in self.members]
        out = {}
        for key in _QUANTITIES:
            if not all(key in o for o in outputs):  # e.g. charges when only some members predict them
                continue
            stacked = torch.stack([o[key] for o in outputs])
            out[key] = stacked.mean(dim=0)
            variance = stacked.var(dim=0) if len(outputs) > 1 else torch.zeros_like(out[key])
            out[key + keys.VAR_SUFFIX] = variance * self.variance_scale.to(variance.dtype)
            out[key + keys.MEMBERS_SUFFIX] = stacked
        return out
