"""Evaluate a potential or ensemble on labelled structures: metrics and parity plots.

Metrics are those of :mod:`nnip.training.metrics`; an ensemble adds
``forces_std_mean`` (eV/Å, mean over atoms and components of the member standard
deviation) and ``uncertainty_spearman`` (Spearman rank correlation between each
structure's mean predicted force std and its force MAE).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from scipy.stats import spearmanr

from nnip.data.dataset import AtomicDataset, check_elements
from nnip.plots import calibration_plot, parity_plot
from nnip.uncertainty.calibration import calibration_curve, gaussian_nll, miscalibration_area
from nnip.training.metrics import Predictions, error_metrics, predict

__all__ = ["evaluate", "ensemble_metrics", "atom_force_std", "write_parity_plots", "format_metrics", "to_json"]


def to_json(value):
    """Plain data for JSON: NaN and infinities become null, numpy scalars Python numbers."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def ensemble_metrics(p: Predictions) -> dict[str, float]:
    """forces_std_mean, uncertainty_spearman, forces_nll and forces_miscalibration_area of an ensemble.

    The last two treat each force component's error as Gaussian with the predicted variance.
    """
    if "forces_var" not in p.extra:
        return {}
    std = np.sqrt(np.clip(p.extra["forces_var"], 0.0, None))
    starts = np.concatenate([[0], np.cumsum(p.n_atoms)[:-1]])
    error = np.abs(p.forces - p.forces_ref)
    per_structure_std = np.add.reduceat(std.mean(axis=1), starts) / p.n_atoms
    per_structure_error = np.add.reduceat(error.mean(axis=1), starts) / p.n_atoms
    known = np.isfinite(per_structure_error)
    rho = float("nan")
    if known.sum() > 2 and np.ptp(per_structure_std[known]) > 0:
        rho = float(spearmanr(per_structure_std[known], per_structure_error[known]).statistic)
    out = {"forces_std_mean": float(std.mean()) if std.size else float("nan"), "uncertainty_spearman": rho}
    errors = p.forces - p.forces_ref
    if np.isfinite(errors).any() and (p.extra["forces_var"] > 0).any():
        out["forces_nll"] = gaussian_nll(errors, p.extra["forces_var"])
        out["forces_miscalibration_area"] = miscalibration_area(errors, p.extra["forces_var"])
    return out


def atom_force_std(p: Predictions) -> np.ndarray:
    """Per-atom force std of an ensemble (N,) eV/Å: root of the summed variance of the three
    components, as the calculator's ``forces_std``."""
    return np.sqrt(np.clip(p.extra["forces_var"], 0, None).sum(axis=1))


def evaluate(model, frames: Sequence[Atoms], batch_size: int = 64, device="cpu",
             source: str = "data") -> tuple[dict[str, float], Predictions]:
    """Metrics (the ``nnip evaluate --json`` keys) and collected predictions of ``model`` on ``frames``.

    Raises:
        DataError: ``SOURCE: frame K: element(s) X not in the model (...)``.
    """
    check_elements(frames, source, model.elements.tolist(), "the model")
    dataset = AtomicDataset(frames, model.neighbor_request())
    predictions = predict(model, dataset, batch_size, device)
    metrics = error_metrics(predictions)
    metrics.update(ensemble_metrics(predictions))
    return metrics, predictions


def write_parity_plots(p: Predictions, directory: Path, prefix: str = "parity", title: str | None = None) -> list[Path]:
    """Energy-per-atom and force-component parity plots (PNG) where the labels exist; calibration for ensembles."""
    written = []
    if np.isfinite(p.energy_ref).any():
        written.append(parity_plot(p.energy_ref / p.n_atoms, p.energy / p.n_atoms, directory / f"{prefix}_energy.png",
                                   quantity="energy per atom", unit="eV/atom", title=title))
    if np.isfinite(p.forces_ref).any():
        written.append(parity_plot(p.forces_ref, p.forces, directory / f"{prefix}_forces.png",
                                   quantity="force component", unit="eV/Å", title=title))
        if "forces_var" in p.extra and (p.extra["forces_var"] > 0).any():
            expected, observed = calibration_curve(p.forces - p.forces_ref, p.extra["forces_var"])
            written.append(calibration_plot(expected, observed, directory / "calibration.png"))
    return written


_ROWS = (
    ("energy_mae", "energy MAE", "meV/structure", 1000), ("energy_rmse", "energy RMSE", "meV/structure", 1000),
    ("energy_mae_per_atom", "energy MAE", "meV/atom", 1000), ("energy_rmse_per_atom", "energy RMSE", "meV/atom", 1000),
    ("forces_mae", "forces MAE", "meV/Å", 1000), ("forces_rmse", "forces RMSE", "meV/Å", 1000),
    ("forces_norm_mae", "force-vector MAE", "meV/Å", 1000), ("stress_mae", "stress MAE", "meV/Å^3", 1000),
    ("dipole_mae", "dipole MAE", "me Å", 1000), ("forces_std_mean", "mean force std", "meV/Å", 1000),
    ("forces_nll", "force NLL", "", 1), ("forces_miscalibration_area", "miscalibration area", "", 1), ("uncertainty_spearman", "uncertainty Spearman", "", 1),
)


def format_metrics(metrics: dict[str, float]) -> str:
    """A human-readable table of metrics (milli-units), skipping those that are NaN or absent."""
    lines = [f"structures            {metrics.get('n_structures', 0)}", f"atoms                 {metrics.get('n_atoms', 0)}"]
    for key, label, unit, factor in _ROWS:
        value = metrics.get(key)
        if value is not None and np.isfinite(value):
            lines.append(f"{label:<22}{factor * value:.4g} {unit}".rstrip())
    return "\n".join(lines)

