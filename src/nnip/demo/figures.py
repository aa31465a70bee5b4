"""The demo's own figures: the adversarial attack, the MD monitor and the structure check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from nnip.plots import save_figure

__all__ = ["attack_plot", "md_monitor_plot", "distance_plot"]


def attack_plot(train_spread: np.ndarray, candidate_spread: np.ndarray, chosen: np.ndarray,
                label_spread: np.ndarray, label_error: np.ndarray, path) -> Path:
    """Left: force spread sigma_F (meV/Å) of the training structures, the attacked candidates and
    the chosen ones. Right: predicted sigma_F against the true force RMSE of the labelled
    candidates (eV/Å in, meV/Å shown); points near the diagonal mean the spread is an honest error bar."""
    fig = Figure(figsize=(9.0, 3.6), layout="constrained")
    spread, honesty = fig.subplots(1, 2)
    values = [1000 * np.asarray(v, dtype=float) for v in (train_spread, candidate_spread)]
    top = max(float(np.nanmax(v)) for v in values if v.size) if any(v.size for v in values) else 1.0
    bins = np.linspace(0.0, 1.05 * top, 30)
    spread.hist(values[0], bins=bins, alpha=0.6, label="training structures", density=True)
    spread.hist(values[1], bins=bins, alpha=0.6, label="attacked candidates", density=True)
    for k, x in enumerate(1000 * np.asarray(chosen, dtype=float)):
        spread.axvline(x, color="C3", linewidth=0.8, label="chosen for labelling" if k == 0 else None)
    spread.set_xlabel("ensemble force spread σ_F (meV/Å)")
    spread.set_ylabel("density")
    spread.legend(fontsize=8)
    x, y = 1000 * np.asarray(label_spread, dtype=float), 1000 * np.asarray(label_error, dtype=float)
    honesty.scatter(x, y, s=16, color="C3")
    if x.size:
        limit = 1.1 * max(float(np.nanmax(x)), float(np.nanmax(y)))
        honesty.plot([0, limit], [0, limit], color="0.6", linewidth=0.8, linestyle=":")
        honesty.set_xlim(0, limit)
        honesty.set_ylim(0, limit)
    honesty.set_xlabel("predicted σ_F (meV/Å)")
    honesty.set_ylabel("true force RMSE vs GFN2-xTB (meV/Å)")
    honesty.set_title("labelled candidates", fontsize=9)
    return save_figure(fig, path)


def md_monitor_plot(time_fs: np.ndarray, temperature: np.ndarray, max_force_std: np.ndarray, target: float,
                    threshold: float | None, path) -> Path:
    """Temperature (K) and the ensemble's largest per-atom force std (eV/Å in, meV/Å shown) along an MD run;
    ``threshold`` (eV/Å) is the stop rule's, if any."""
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    heat, spread = fig.subplots(1, 2)
    time_ps = np.asarray(time_fs) / 1000.0
    heat.plot(time_ps, temperature, color="C0")
    heat.axhline(target, color="0.6", linestyle=":", linewidth=0.8)
    heat.set_ylabel("temperature (K)")
    spread.plot(time_ps, 1000 * np.asarray(max_force_std, dtype=float), color="C1")
    if threshold is not None:
        spread.axhline(1000 * threshold, color="C3", linestyle="--", linewidth=0.8, label="stop threshold")
        spread.legend(fontsize=8)
    spread.set_ylabel("largest per-atom force std (meV/Å)")
    for ax in (heat, spread):
        ax.set_xlabel("time (ps)")
    return save_figure(fig, path)


def distance_plot(model: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  reference: Mapping[str, tuple[np.ndarray, np.ndarray]], path) -> Path:
    """Interatomic distance distributions per element pair: MD with the model (solid) against
    the reference data (dashed), one colour per pair."""
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    for k, name in enumerate(sorted(set(model) | set(reference))):
        colour = f"C{k % 10}"
        if name in model:
            ax.plot(*model[name], color=colour, label=f"{name} model MD")
        if name in reference:
            ax.plot(*reference[name], color=colour, linestyle="--", linewidth=0.9)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("distance density (1/Å)")
    ax.set_title("solid: MD with the model; dashed: GFN2-xTB reference", fontsize=9)
    ax.legend(fontsize=7, ncols=2)
    return save_figure(fig, path)
