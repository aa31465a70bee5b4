"""Errors of a potential on labelled structures, in eV, eV/atom, eV/Å and eV/Å^3.

The keys are those of ``nnip evaluate --json`` (DESIGN.md): ``n_structures, n_atoms,
energy_mae, energy_rmse`` (per structure), ``energy_mae_per_atom, energy_rmse_per_atom``,
``forces_mae, forces_rmse`` (over components), ``forces_norm_mae`` (mean over atoms of
|F_i - F̂_i|), ``stress_mae, stress_rmse`` (over components), and for models with
charges ``dipole_mae, dipole_rmse`` (e Å). A metric whose label no structure has is NaN
(null in JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from nnip import keys
from nnip.training.loss import combine, loss_terms

__all__ = ["Predictions", "error_metrics", "predict", "prediction_loss"]


@dataclass
class Predictions:
    """Reference and predicted values collected over a dataset, as numpy float64.

    Shapes: energy (B,) eV, n_atoms (B,), forces (N, 3) eV/Å, stress (B, 3, 3) eV/Å^3;
    reference entries are NaN where a structure lacks the label.
    """

    n_atoms: np.ndarray
    energy: np.ndarray
    energy_ref: np.ndarray
    forces: np.ndarray
    forces_ref: np.ndarray
    stress: np.ndarray
    stress_ref: np.ndarray
    weight: np.ndarray
    dipole: np.ndarray | None = None
    dipole_ref: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _mae_rmse(error: np.ndarray) -> tuple[float, float]:
    error = error[np.isfinite(error)]
    if error.size == 0:
        return float("nan"), float("nan")
    return float(np.abs(error).mean()), float(np.sqrt(np.mean(error**2)))


def error_metrics(p: Predictions) -> dict[str, float]:
    """The evaluate metrics of collected predictions (see module docstring)."""
    energy_error = p.energy - p.energy_ref
    out: dict[str, float] = {"n_structures": int(p.n_atoms.size), "n_atoms": int(p.n_atoms.sum())}
    out["energy_mae"], out["energy_rmse"] = _mae_rmse(energy_error)
    out["energy_mae_per_atom"], out["energy_rmse_per_atom"] = _mae_rmse(energy_error / p.n_atoms)
    force_error = p.forces - p.forces_ref
    out["forces_mae"], out["forces_rmse"] = _mae_rmse(force_error)
    out["forces_norm_mae"], _ = _mae_rmse(np.linalg.norm(force_error, axis=1))
    out["stress_mae"], out["stress_rmse"] = _mae_rmse(p.stress - p.stress_ref)
    if p.dipole is not None:
        out["dipole_mae"], out["dipole_rmse"] = _mae_rmse(p.dipole - p.dipole_ref)
    return out


def predict(potential, dataset, batch_size: int = 64, device="cpu") -> Predictions:
    """Run ``potential`` over ``dataset`` (an AtomicDataset) and collect predictions and references."""
    dtype = potential.dtype
    stress = dataset.has(keys.STRESS)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("n", "e", "er", "f", "fr", "s", "sr", "w")}
    for graph, targets in dataset.batches(batch_size, dtype, device=device):
        out = potential(graph, compute_forces=True, compute_stress=stress)
        parts["n"].append(graph.n_atoms.cpu().numpy())
        parts["e"].append(out[keys.ENERGY].detach().cpu().double().numpy())
        parts["er"].append(targets[keys.ENERGY].cpu().numpy())
        parts["f"].append(out[keys.FORCES].detach().cpu().double().numpy())
        parts["fr"].append(targets[keys.FORCES].cpu().numpy())
        s = out[keys.STRESS].detach().cpu().double().numpy() if stress else np.full((graph.n_structures, 3, 3), np.nan)
        parts["s"].append(s)
        parts["sr"].append(targets[keys.STRESS].cpu().numpy())
        parts["w"].append(targets[keys.WEIGHT].cpu().numpy())
        if keys.DIPOLE in out:
            parts.setdefault("d", []).append(out[keys.DIPOLE].detach().cpu().double().numpy())
            parts.setdefault("dr", []).append(targets[keys.DIPOLE].cpu().numpy())
        if keys.FORCES + keys.VAR_SUFFIX in out:
            parts.setdefault("fv", []).append(out[keys.FORCES + keys.VAR_SUFFIX].detach().cpu().double().numpy())
            parts.setdefault("ev", []).append(out[keys.ENERGY + keys.VAR_SUFFIX].detach().cpu().double().numpy())
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    return Predictions(
        n_atoms=cat["n"], energy=cat["e"], energy_ref=cat["er"], forces=cat["f"].reshape(-1, 3),
        forces_ref=cat["fr"].reshape(-1, 3), stress=cat["s"].reshape(-1, 3, 3), stress_ref=cat["sr"].reshape(-1, 3, 3),
        weight=cat["w"],
        dipole=cat["d"].reshape(-1, 3) if "d" in cat else None,
        dipole_ref=cat["dr"].reshape(-1, 3) if "dr" in cat else None,
        extra={name: cat[short] for short, name in (("fv", "forces_var"), ("ev", "energy_var")) if short in cat},
    )


def prediction_loss(p: Predictions, config) -> float:
    """The training loss (a LossConfig) of collected predictions, over the whole set at once."""
    n_atoms = torch.from_numpy(p.n_atoms)
    predicted = {keys.ENERGY: torch.from_numpy(p.energy), keys.FORCES: torch.from_numpy(p.forces),
                 keys.STRESS: torch.from_numpy(p.stress)}
    targets = {keys.ENERGY: torch.from_numpy(p.energy_ref), keys.FORCES: torch.from_numpy(p.forces_ref),
               keys.STRESS: torch.from_numpy(p.stress_ref), keys.WEIGHT: torch.from_numpy(p.weight)}
    if p.dipole is not None:
        predicted[keys.DIPOLE], targets[keys.DIPOLE] = torch.from_numpy(p.dipole), torch.from_numpy(p.dipole_ref)
    structure_index = torch.repeat_interleave(torch.arange(n_atoms.shape[0]), n_atoms)
    return float(combine(loss_terms(predicted, targets, n_atoms, structure_index, config), config))
