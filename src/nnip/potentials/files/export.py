"""Deployment: a potential's energy as a ``torch.export`` program, forces and stress by autograd.

The exported program (``.pt2``, written by :func:`save_exported`) maps one structure of any
size to its energy, with the weights inside::

    positions (N, 3) Å, atomic_numbers (N,) int64, cell (1, 3, 3) Å, pbc (1, 3) bool,
    edge_index (2, E) int64, cell_shifts (E, 3), structure_index (N,) int64 (zeros),
    n_atoms (1,) int64, total_charge (1,) e  ->  energy (1,) eV, atomic energies (N,) eV

where the edges are the neighbour pairs within the potential's ``cutoff`` (a half list when
the metadata's ``half_list`` holds). It runs with ``torch.export.load(path).module()`` and no
nnip code; forces are minus the gradient of the energy with respect to the positions, the
stress that with respect to a strain of positions and cell. :class:`ExportedPotential` does
exactly that under nnip's contract, so ``nnip.Calculator(load_exported(path))`` runs MD.
The metadata (cutoff, elements, dtype, nnip version) travel in the file as ``nnip.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.errors import CheckpointError, DataError
from nnip.nn.execution import KEEP
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.derivatives import energy_derivatives, prepare_inputs
from nnip.potentials.contract.edges import build_edges
from nnip.version import __version__

__all__ = ["export_potential", "save_exported", "load_exported", "ExportedPotential", "INPUTS"]

#: the exported program's inputs, in order (fields of AtomicGraph)
INPUTS = ("positions", "atomic_numbers", "cell", "pbc", "edge_index", "cell_shifts", "structure_index", "n_atoms",
          "total_charge")


class _Energy(nn.Module):
    """The potential as a function of plain tensors (the edges already within its cutoff)."""

    def __init__(self, potential: Potential):
        super().__init__()
        self.potential = potential

    def forward(self, positions, atomic_numbers, cell, pbc, edge_index, cell_shifts, structure_index, n_atoms,
                total_charge):
        graph = AtomicGraph(positions, atomic_numbers, cell, pbc, edge_index, cell_shifts, structure_index, n_atoms,
                            total_charge, self.potential.neighbor_request())
        out = self.potential(graph, compute_forces=False)
        return out[keys.ENERGY], out[keys.ATOMIC_ENERGIES]


def _inputs(graph: AtomicGraph) -> tuple[torch.Tensor, ...]:
    return tuple(getattr(graph, name) for name in INPUTS)


def export_potential(potential: Potential, example: AtomicGraph) -> torch.export.ExportedProgram:
    """Export ``potential`` (in its current dtype) traced on ``example``: one structure with at
    least 3 atoms and 2 edges, built for the potential's neighbour request. The traced code keeps its
    activations (memory "keep": no strategy that depends on the number of edges)."""
    if example.n_structures != 1 or example.positions.shape[0] < 3 or example.edge_index.shape[1] < 2:
        raise ValueError("the example must be one structure with at least 3 atoms and 2 edges")
    atoms, edges = torch.export.Dim("atoms", min=2), torch.export.Dim("edges", min=2)
    shapes = {"positions": {0: atoms}, "atomic_numbers": {0: atoms}, "cell": None, "pbc": None,
              "edge_index": {1: edges}, "cell_shifts": {0: edges}, "structure_index": {0: atoms}, "n_atoms": None,
              "total_charge": None}
    module = _Energy(potential).eval()
    memory, potential.memory = potential.memory, KEEP
    try:
        return torch.export.export(module, _inputs(example), dynamic_shapes=tuple(shapes[n] for n in INPUTS),
                                   strict=False)
    finally:
        potential.memory = memory


def metadata_of(potential: Potential) -> dict[str, Any]:
    return {"format": "nnip-export", "format_version": 1, "nnip_version": __version__, "cutoff": potential.cutoff,
            "half_list": not potential.neighbor_request().full, "elements": [int(z) for z in potential.elements],
            "dtype": str(potential.dtype).removeprefix("torch."), "inputs": list(INPUTS)}


def save_exported(program: torch.export.ExportedProgram, metadata: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the program and its metadata to ``path`` (a temporary file first, then renamed)."""
    temporary = Path(path).with_name(f".{Path(path).name}.tmp.pt2")
    torch.export.save(program, temporary, extra_files={"nnip.json": json.dumps(metadata)})
    os.replace(temporary, path)


class ExportedPotential(nn.Module):
    """An exported program under nnip's contract: ``forward(graph, compute_forces, compute_stress)``.

    Graphs may hold edges beyond the cutoff (a Verlet skin); they are dropped before the call.
    The arithmetic stays in the exported dtype (``.to(dtype)`` is not supported).
    """

    def __init__(self, module: nn.Module, metadata: dict[str, Any]):
        super().__init__()
        self.module = module
        self.metadata = metadata
        self.cutoff = float(metadata["cutoff"])
        self.register_buffer("elements", torch.tensor(metadata["elements"], dtype=torch.int64))

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.metadata["dtype"])

    def neighbor_request(self, skin: float = 0.0) -> NeighborRequest:
        """The exported potential's cutoff, a half list when it was exported for one, and ``skin`` Å."""
        return NeighborRequest(self.cutoff, not self.metadata["half_list"], skin)

    def train(self, mode: bool = True) -> "ExportedPotential":
        """An exported program has no training mode (no dropout or batch statistics): only the flag changes."""
        self.training = mode
        return self

    def forward(self, graph: AtomicGraph, compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> dict[str, torch.Tensor]:
        """Energy (1,) and atomic energies (N,) eV, forces (N, 3) eV/Å, stress and virial (1, 3, 3)."""
        unknown = sorted(set(graph.atomic_numbers.tolist()) - set(self.metadata["elements"]))
        if unknown:
            raise DataError(f"element(s) with atomic number {unknown} not known to this exported potential "
                            f"(it has {self.metadata['elements']})")
        if graph.n_structures != 1:
            raise ValueError("an exported potential takes one structure per call")
        graph = graph.to(dtype=self.dtype)
        inputs = prepare_inputs(graph, compute_forces, compute_stress)
        with torch.no_grad():  # only which pairs: within the cutoff, each once for a half list
            kept = build_edges(graph, graph.positions, graph.cell, self.neighbor_request())
        within = AtomicGraph(inputs.positions, graph.atomic_numbers, inputs.cell, graph.pbc,
                             torch.stack([kept.center, kept.neighbor]), kept.shifts, graph.structure_index,
                             graph.n_atoms, graph.total_charge, self.neighbor_request())
        energy, atomic = self.module(*_inputs(within))
        out = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic}
        out.update(energy_derivatives(energy, inputs, graph, compute_forces, compute_stress, create_graph))
        return out


def load_exported(path: str | os.PathLike) -> ExportedPotential:
    """Read a file written by :func:`save_exported` (``nnip export``)."""
    extra = {"nnip.json": ""}
    try:
        program = torch.export.load(path, extra_files=extra)
    except (OSError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"{path}: not an exported nnip potential ({type(error).__name__}: {error})") from None
    metadata = json.loads(extra["nnip.json"] or "{}")
    if metadata.get("format") != "nnip-export":
        raise CheckpointError(f"{path}: a torch.export file without nnip metadata")
    return ExportedPotential(program.module(), metadata).eval()


def graph_of(atoms, potential) -> AtomicGraph:
    """One structure's graph for the potential's neighbour request, in its dtype."""
    return AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                   potential.neighbor_request(), total_charge=float(atoms.info.get("charge", 0.0)),
                                   dtype=potential.dtype)


def compare(potential: Potential, exported: ExportedPotential, frames) -> dict[str, float]:
    """Largest |difference| of energy (eV), forces (eV/Å) and, for cells periodic in 3-D, stress
    (eV/Å^3) between the potential and its export over ``frames``."""
    worst = {"energy": 0.0, "forces": 0.0, "stress": 0.0}
    for atoms in frames:
        graph = graph_of(atoms, potential)
        stress = bool(atoms.pbc.all())
        with torch.enable_grad():
            a = potential(graph, compute_stress=stress)
            b = exported(graph, compute_stress=stress)
        for key in (keys.ENERGY, keys.FORCES) + ((keys.STRESS,) if stress else ()):
            difference = float((a[key].detach().double() - b[key].detach().double()).abs().max())
            worst[key] = max(worst[key], difference)
    return worst
