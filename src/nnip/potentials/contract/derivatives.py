"""Forces, stress and virial by automatic differentiation, in exactly one place.

A symmetric strain eps (B, 3, 3) deforms every structure: r -> r (1 + eps), cell -> cell (1 + eps).
Then forces = -dE/dr, virial = -dE/d(eps) and stress = (1/V) dE/d(eps) (ASE's sign:
positive when the structure pulls inward, i.e. under tension).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nnip import keys
from nnip.data.graph import AtomicGraph

__all__ = ["DifferentiableInputs", "prepare_inputs", "energy_derivatives"]


@dataclass
class DifferentiableInputs:
    """Positions and cell the potential computes with, and what they are differentiated by.

    Shapes: positions (N, 3) Å (strained), cell (B, 3, 3) Å (strained),
    unstrained_positions (N, 3), strain (B, 3, 3) or None.
    """

    positions: torch.Tensor
    cell: torch.Tensor
    unstrained_positions: torch.Tensor
    strain: torch.Tensor | None


def prepare_inputs(graph: AtomicGraph, compute_forces: bool, compute_stress: bool) -> DifferentiableInputs:
    """Make positions (and a zero strain) leaves of the autograd graph when derivatives are wanted.

    Positions that already require grad (e.g. displaced by an adversarial attack) are used
    as they are, so gradients flow back to whatever produced them.
    """
    positions = graph.positions
    if (compute_forces or compute_stress) and not positions.requires_grad:
        positions = positions.detach().requires_grad_(True)
    if not compute_stress:
        return DifferentiableInputs(positions, graph.cell, positions, None)
    strain = torch.zeros_like(graph.cell, requires_grad=True)
    symmetric = 0.5 * (strain + strain.transpose(1, 2))
    strained_positions = positions + torch.einsum("ni,nij->nj", positions, symmetric[graph.structure_index])
    strained_cell = graph.cell + torch.bmm(graph.cell, symmetric)
    return DifferentiableInputs(strained_positions, strained_cell, positions, strain)


def _stress(de_dstrain: torch.Tensor, cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """(1/V) dE/dstrain for fully periodic structures, NaN otherwise. Shapes: (B, 3, 3), (B, 3) -> (B, 3, 3).

    The NaN is inserted after dividing by a safe volume, so a loss that masks those
    entries gets zero (not NaN) gradients from them.
    """
    periodic = pbc.all(dim=1)[:, None, None]
    volume = torch.linalg.det(cell).abs().to(de_dstrain.dtype)[:, None, None]
    stress = de_dstrain / torch.where(periodic, volume, torch.ones_like(volume))
    return torch.where(periodic, stress, torch.full_like(stress, float("nan")))


def energy_derivatives(
    energy: torch.Tensor,
    inputs: DifferentiableInputs,
    graph: AtomicGraph,
    compute_forces: bool,
    compute_stress: bool,
    create_graph: bool,
) -> dict[str, torch.Tensor]:
    """Forces (N, 3) eV/Å, virial (B, 3, 3) eV and stress (B, 3, 3) eV/Å^3 from energy (B,) eV.

    Stress is NaN for structures that are not periodic in all three directions (no volume);
    the virial is defined for every structure. ``create_graph`` keeps the graph so the
    results can be differentiated again (training, adversarial attacks).
    """
    wrt = []
    if compute_forces:
        wrt.append(inputs.unstrained_positions)
    if compute_stress:
        assert inputs.strain is not None
        wrt.append(inputs.strain)
    if not wrt:
        return {}
    grads = torch.autograd.grad(
        energy.sum(), wrt, create_graph=create_graph, retain_graph=create_graph, allow_unused=True
    )
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]
    out: dict[str, torch.Tensor] = {}
    if compute_forces:
        out[keys.FORCES] = -grads[0]
    if compute_stress:
        de_dstrain = grads[-1]
        out[keys.VIRIAL] = -de_dstrain
        out[keys.STRESS] = _stress(de_dstrain, graph.cell, graph.pbc)
    return out
