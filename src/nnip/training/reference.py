"""Reference constants of a new potential from its training data: E0, scale and shift.

:func:`initialise_reference` sets them from training statistics (DESIGN.md: they live inside
the saved potential); E0 is chosen as the ``model.e0`` setting says.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from nnip import keys
from nnip.data.dataset import AtomicDataset, labels_of
from nnip.data.statistics import DatasetStatistics, dataset_statistics, isolated_atom_e0, least_squares_e0
from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential, to_atomic_numbers
from nnip.training.config import ModelConfig
from nnip.training.metrics import predict

__all__ = ["initialise_reference", "refit_shift"]


@torch.no_grad()
def _term_energies(potential: Potential, dataset: AtomicDataset) -> np.ndarray:
    """Energies (B,) of the eV-valued terms alone (E0, shift and scaled terms set to zero)."""
    saved = (potential.e0.clone(), potential.scale.clone(), potential.shift.clone())
    potential.e0.zero_(), potential.scale.zero_(), potential.shift.zero_()
    try:
        energies = [potential(graph, compute_forces=False)[keys.ENERGY].cpu().numpy()
                    for graph, _ in dataset.batches(64, potential.dtype)]
    finally:
        potential.e0.copy_(saved[0]), potential.scale.copy_(saved[1]), potential.shift.copy_(saved[2])
    return np.concatenate(energies)


def _neighbour_counts(dataset: AtomicDataset) -> list[int]:
    factor = 1 if dataset.neighbor_request.full else 2  # directed edges
    return [factor * s.graph.edge_index.shape[1] for s in dataset.samples]


def initialise_reference(potential: Potential, model: ModelConfig, dataset: AtomicDataset,
                         isolated: Sequence[Atoms] | None, isolated_source: str = "isolated atoms") -> DatasetStatistics:
    """Fit data-dependent constants of the terms (Term.fit_to_data), then E0, scale and shift; returns the statistics.

    E0: least squares of (E - E_eV-terms) on composition, isolated-atom energies, zero, or given.
    scale: force RMS, for potentials with dimensionless (network) terms, else 1. shift: mean
    residual energy per atom with least-squares E0 and network terms, else 0 (so a lone
    atom returns E0). Numbers in the config override both.
    """
    potential.fit_terms_to_data([graph for graph, _ in dataset.batches(64, potential.dtype)])
    elements = potential.elements.tolist()
    frames = dataset.frames
    energies = np.array([float(labels_of(a)[keys.ENERGY]) for a in frames]) - _term_energies(potential, dataset)
    e0, method = _choose_e0(model, elements, frames, energies, isolated, isolated_source)
    stats = dataset_statistics(frames, elements, e0, method, _neighbour_counts(dataset), energies)
    networks = potential.has_dimensionless_terms
    scale = model.scale if not isinstance(model.scale, str) else (stats.force_rms if networks else 1.0)
    if not np.isfinite(scale) or scale <= 0:
        scale = 1.0
    # An automatic shift only where E0 is fitted: with isolated-atom or given E0 a lone atom must return E0.
    auto_shift = stats.mean_residual_per_atom if networks and method == "least_squares" else 0.0
    shift = model.shift if not isinstance(model.shift, str) else auto_shift
    potential.set_reference(e0=e0, scale=scale, shift=shift)
    return stats


def _choose_e0(model: ModelConfig, elements: list[int], frames, energies, isolated, isolated_source):
    """(E0 per atomic number in eV, method name) as ``model.e0`` says."""
    if isinstance(model.e0, dict):
        e0 = {to_atomic_numbers([k])[0]: float(v) for k, v in model.e0.items()}
        missing = [chemical_symbols[z] for z in elements if z not in e0]
        if missing:
            raise ConfigError(f"model.e0: no value for element(s) {', '.join(missing)}")
        return e0, "given"
    if model.e0 == "isolated":
        if not isolated:
            raise ConfigError("model.e0 is 'isolated' but data.isolated_atoms names no file")
        return isolated_atom_e0(isolated, elements, isolated_source), "isolated_atoms"
    if model.e0 == "zero":
        return {z: 0.0 for z in elements}, "zero"
    return least_squares_e0(frames, elements, energies), "least_squares"


def refit_shift(potential: Potential, model: ModelConfig, stats: DatasetStatistics, dataset: AtomicDataset,
                device: str = "cpu", batch_size: int = 64) -> float:
    """After training, add to the potential's ``shift`` the constant energy per atom that its loss left unfit:
    the loss-weighted mean over ``dataset`` of (E_ref - E_pred) / N. Forces do not change. Done where the shift
    is automatic (network terms, least-squares E0, ``model.shift: auto``); returns the change, eV per atom.

    A loss dominated by forces barely constrains a constant energy offset: after an active-learning
    generation added strongly distorted structures, the forces' gradient moved the baseline of a warm-started
    SchNet ensemble by -0.18 eV/atom on its own training data, though its labels agree with the old ones.
    """
    if not (potential.has_dimensionless_terms and stats.e0_method == "least_squares" and isinstance(model.shift, str)):
        return 0.0
    p = predict(potential, dataset, batch_size, device)
    have = np.isfinite(p.energy_ref)
    if not have.any():
        return 0.0
    residual = (p.energy_ref[have] - p.energy[have]) / p.n_atoms[have]
    weight = p.weight[have]
    delta = float(np.average(residual, weights=weight)) if weight.sum() > 0 else float(residual.mean())
    with torch.no_grad():
        potential.shift.add_(delta)
    return delta
