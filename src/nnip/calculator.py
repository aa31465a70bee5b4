"""ASE calculator for any nnip Potential: the only module with ASE calculator names and Voigt stress."""

from __future__ import annotations

import copy

import numpy as np
import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import VerletNeighborList
from nnip.nn.execution import Memory
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.ensemble import Ensemble

__all__ = ["Calculator"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, None: None}


class Calculator(_AseCalculator):
    """Energy, forces and stress of a Potential for ASE (MD, optimisers, phonons ...).

    Results: ``energy``, ``free_energy`` (eV), ``energies`` (N,) eV, ``forces`` (N, 3) eV/Å,
    ``stress`` (6,) Voigt eV/Å^3 with ASE's sign (only for cells periodic in all three
    directions); ``charges`` (N,) e and ``dipole`` (3,) e Å for models that predict charges.
    For an :class:`~nnip.potentials.Ensemble` the results are the member means, plus
    ``energy_std`` (eV), ``forces_std`` (N,) eV/Å (per atom, sqrt of the summed variance of
    the three components) and ``max_force_std`` (eV/Å).

    Args:
        potential: the model; the calculator works on its own copy (in ``dtype``, parameters frozen).
        dtype: "float32" or "float64"; None keeps the potential's dtype.
        device: torch device for the computation.
        skin: Verlet skin, Å: the neighbour list is rebuilt only when an atom moved more
            than skin/2 (results are identical to rebuilding every step).
        compile: compile the model's terms with torch.compile (Potential.compile_terms):
            the first call takes seconds to minutes, later ones are faster (MD, long relaxations).
        memory: how message-passing models run their per-edge work (nnip.nn.execution.Memory): "auto"
            (streamed over chunks of edges on the CPU above 32 MiB per per-edge tensor), "keep",
            "recompute" or "stream", or a Memory; None (default) keeps the potential's own setting
            ("auto" unless changed). With ``compile`` the terms keep their activations whatever it says.

    Example:
        >>> atoms.calc = nnip.Calculator(nnip.load("model.pt"), dtype="float64")
        >>> atoms.get_potential_energy()
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress", "charges", "dipole",
                              "energy_std", "forces_std", "max_force_std"]

    def __init__(
        self,
        potential: Potential | Ensemble,
        dtype: str | None = None,
        device: str | torch.device = "cpu",
        skin: float = 0.5,
        compile: bool = False,
        memory: Memory | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.device = torch.device(device)
        # frozen: forces need gradients by the positions only, and autograd then keeps fewer tensors
        self.potential = copy.deepcopy(potential).to(self.device).eval().requires_grad_(False)
        if _DTYPES[dtype] is not None:
            self.potential.to(_DTYPES[dtype])
        self.dtype = self.potential.dtype
        if memory is not None:
            self.potential.memory = memory
        if compile:
            if not hasattr(self.potential, "compile_terms"):
                raise ValueError(f"compile=True needs an nnip Potential or Ensemble, not {type(potential).__name__}")
            self.potential.compile_terms()
        request = self.potential.neighbor_request(skin)
        self.neighbors = VerletNeighborList(request.cutoff, request.skin, full=request.full)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        if want_stress and not self.atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        graph = self._graph()
        with torch.set_grad_enabled(True):
            out = self.potential(graph, compute_forces=True, compute_stress=want_stress)
        energy = float(out[keys.ENERGY].detach().sum())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out[keys.ATOMIC_ENERGIES].detach().cpu().numpy().astype(np.float64),
            "forces": out[keys.FORCES].detach().cpu().numpy().astype(np.float64),
        }
        if want_stress:
            stress = out[keys.STRESS][0].detach().cpu().numpy().astype(np.float64)
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
        if keys.FORCES + keys.VAR_SUFFIX in out:  # an ensemble: spread of the members
            self.results.update(_uncertainty(out))
        if keys.CHARGES in out:  # models with predicted charges (electrostatics)
            self.results["charges"] = out[keys.CHARGES].detach().cpu().numpy().astype(np.float64)
        if keys.DIPOLE in out and bool(torch.isfinite(out[keys.DIPOLE]).all()):  # none for periodic cells
            self.results["dipole"] = out[keys.DIPOLE][0].detach().cpu().numpy().astype(np.float64)

    def _graph(self) -> AtomicGraph:
        atoms = self.atoms
        edges = self.neighbors.get(atoms.positions, atoms.cell.array, atoms.pbc)
        graph = AtomicGraph.from_arrays(
            atoms.positions,
            atoms.numbers,
            atoms.cell.array,
            atoms.pbc,
            self.neighbors.request,
            edges=edges,
            total_charge=float(atoms.info.get("charge", 0.0)),
            dtype=self.dtype,
        )
        return graph.to(self.device)


def _uncertainty(out: dict) -> dict:
    """energy_std, forces_std (per atom) and max_force_std of an ensemble's outputs."""
    forces_std = out[keys.FORCES + keys.VAR_SUFFIX].detach().sum(dim=1).clamp(min=0).sqrt()
    forces_std = forces_std.cpu().numpy().astype(np.float64)
    return {
        "energy_std": float(out[keys.ENERGY + keys.VAR_SUFFIX].detach().sum().clamp(min=0).sqrt()),
        "forces_std": forces_std,
        "max_force_std": float(forces_std.max()) if forces_std.size else 0.0,
    }
