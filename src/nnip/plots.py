"""Figures for training and evaluation reports: parity plots and learning curves.

Figures are built on :class:`matplotlib.figure.Figure` and written with ``Figure.savefig``,
so this module needs no pyplot, opens no window and never switches matplotlib's global
backend. Inputs are plain numpy arrays and lists of dicts (rows of a metrics.csv).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["error_summary", "parity_plot", "learning_curves", "rdf_plot", "calibration_plot", "profile_plot",
           "active_learning_plot", "surface_plot", "save_figure", "column_label"]

#: Above this many points a parity plot is a log-scaled hexbin instead of a scatter.
HEXBIN_THRESHOLD = 20000
DPI = 120


def _finite_pairs(reference, predicted) -> tuple[np.ndarray, np.ndarray]:
    """Flatten both arrays and keep the pairs where both entries are finite."""
    ref = np.asarray(reference, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    if ref.shape != pred.shape:
        raise ValueError(f"reference has shape {ref.shape} but predicted has shape {pred.shape}")
    ref, pred = ref.ravel(), pred.ravel()
    keep = np.isfinite(ref) & np.isfinite(pred)
    if not keep.any():
        raise ValueError(f"no finite (reference, predicted) pairs among {ref.size} entries")
    return ref[keep], pred[keep]


def _milli(unit: str) -> str:
    """The milli-unit: "eV/atom" -> "meV/atom", "eV/Å" -> "meV/Å", "Å" -> "mÅ"."""
    return "m" + unit


def error_summary(reference, predicted, unit: str) -> str:
    """Mean absolute and root-mean-square error as the three-line text of a parity plot.

    Non-finite entries (missing labels) are dropped pairwise. When the RMSE (and so the
    MAE) is below 1 ``unit``, both are given in milli-units with one decimal, otherwise in
    ``unit`` with three decimals.

    Args:
        reference: reference values, any shape, in ``unit``.
        predicted: predicted values, same shape as ``reference``, in ``unit``.
        unit: unit of the values, e.g. "eV/atom" or "eV/Å".

    Returns:
        For example ``"MAE 10.0 meV/Å\\nRMSE 12.9 meV/Å\\nN 3"``.

    Raises:
        ValueError: the shapes differ, or no finite pair remains.
    """
    ref, pred = _finite_pairs(reference, predicted)
    error = pred - ref
    mae = float(np.mean(np.abs(error)))
    rmse = float(np.sqrt(np.mean(error**2)))
    if rmse < 1.0:
        text = f"MAE {1000 * mae:.1f} {_milli(unit)}\nRMSE {1000 * rmse:.1f} {_milli(unit)}"
    else:
        text = f"MAE {mae:.3f} {unit}\nRMSE {rmse:.3f} {unit}"
    return f"{text}\nN {ref.size}"


def _square_limits(ref: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Common axis limits covering both arrays, padded by 5 % of the span."""
    lo = float(min(ref.min(), pred.min()))
    hi = float(max(ref.max(), pred.max()))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.05
    return lo - pad, hi + pad


def parity_plot(reference, predicted, path, *, quantity: str, unit: str,
                title: str | None = None) -> Path:
    """Write a parity plot (predicted against reference) as a PNG.

    Up to 20000 points are drawn as a scatter; more as a hexbin with a log colour scale.
    The plot has the y = x line, equal axis limits and a text box from
    :func:`error_summary` (MAE, RMSE, N).

    Args:
        reference: reference values, any shape (flattened), in ``unit``; e.g. energies per
            atom (n_frames,) in eV/atom or force components (n_atoms, 3) in eV/Å. NaN marks
            a missing label; such pairs are dropped.
        predicted: predicted values, same shape and unit as ``reference``.
        path: output file; parent directories are created.
        quantity: name for the axis labels, e.g. "energy" or "force".
        unit: unit of the values, e.g. "eV/atom".
        title: optional figure title.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        ValueError: the shapes differ, or no finite pair remains.
    """
    ref, pred = _finite_pairs(reference, predicted)
    lo, hi = _square_limits(ref, pred)
    fig = Figure(figsize=(5.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    if ref.size > HEXBIN_THRESHOLD:
        cells = ax.hexbin(ref, pred, gridsize=120, bins="log", mincnt=1, cmap="viridis",
                          extent=(lo, hi, lo, hi))
        fig.colorbar(cells, ax=ax, label="points per cell")
    else:
        ax.scatter(ref, pred, s=6, alpha=0.5, edgecolors="none", color="tab:blue")
    ax.plot([lo, hi], [lo, hi], color="black", linestyle="--", linewidth=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    for axis in (ax.xaxis, ax.yaxis):  # at most five labels, so long ones such as -34.375 never touch
        axis.set_major_locator(MaxNLocator(nbins=4))
    ax.set_xlabel(f"reference {quantity} ({unit})")
    ax.set_ylabel(f"predicted {quantity} ({unit})")
    ax.text(0.04, 0.96, error_summary(ref, pred, unit), transform=ax.transAxes, va="top",
            ha="left", fontsize=9, bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85})
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def save_figure(fig: Figure, path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _as_float(value) -> float:
    """A metrics value as a float; None, "" and unparseable text become NaN."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _column(rows: Sequence[Mapping], name: str, scale: float = 1.0) -> np.ndarray:
    return np.array([_as_float(row.get(name)) for row in rows]) * scale


#: Legend text for the columns of a metrics.csv; a split prefix names the data set.
_SETS = {"train": "training", "val": "validation", "test": "test"}
_QUANTITIES = {"loss": "loss", "energy_mae_per_atom": "energy MAE", "forces_mae": "force MAE", "lr": "learning rate",
               "energy_rmse_per_atom": "energy RMSE", "forces_rmse": "force RMSE", "stress_mae": "stress MAE"}


def column_label(name: str) -> str:
    """Human text for a metrics column: "val_forces_mae" -> "validation force MAE"; unknown names as given."""
    prefix, _, rest = name.partition("_")
    if prefix in _SETS and rest in _QUANTITIES:
        return f"{_SETS[prefix]} {_QUANTITIES[rest]}"
    return _QUANTITIES.get(name, name)


def _panel(ax, epochs: np.ndarray, series: list[tuple[str, np.ndarray]], ylabel: str,
           style: str = "-", first_colour: int = 0) -> list:
    """Draw ``series`` (column, values) on ``ax`` with human labels; log y when all values are positive."""
    lines = []
    for i, (name, values) in enumerate(series):
        lines += ax.plot(epochs, values, style, color=f"C{(first_colour + i) % 10}", marker=".",
                         markersize=4, label=column_label(name))
    finite = np.concatenate([v[np.isfinite(v)] for _, v in series])
    ax.set_yscale("log" if (finite > 0).all() else "linear")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return lines


def _series(rows, names, scale: float = 1.0) -> list[tuple[str, np.ndarray]]:
    """The named columns that have at least one finite value, scaled."""
    columns = [(name, _column(rows, name, scale)) for name in names]
    return [(name, v) for name, v in columns if np.isfinite(v).any()]


def _default_panels(rows, names) -> list[tuple[str, list, list]]:
    """(title, [(ylabel, series)], ...) for losses, validation errors and learning rate."""
    losses = _series(rows, [n for n in names if n.endswith("_loss")])
    energy = _series(rows, [n for n in names if "energy_mae_per_atom" in n], 1000.0)
    forces = _series(rows, [n for n in names if "forces_mae" in n], 1000.0)
    rate = _series(rows, [n for n in names if n == "lr"])
    panels = [("losses", [("loss (weighted, dimensionless)", losses)]),
              ("errors", [("energy MAE (meV/atom)", energy), ("force MAE (meV/Å)", forces)]),
              ("learning rate", [("learning rate", rate)])]
    panels = [(title, [(label, s) for label, s in axes if s]) for title, axes in panels]
    return [(title, axes) for title, axes in panels if axes]


def learning_curves(rows: Sequence[Mapping], path, *,
                    columns: Sequence[str] | None = None) -> Path:
    """Write learning curves (metrics against epoch) as a PNG.

    By default up to three panels side by side: every ``*_loss`` column; the energy
    (``*energy_mae_per_atom*``, meV/atom) and force (``*forces_mae*``, meV/Å) errors, the
    forces on a twin y axis (dashed); and the learning rate ``lr``. Panels without finite
    values are skipped. A y axis is logarithmic when all its values are positive.

    Args:
        rows: one mapping per epoch, as read from a metrics.csv, e.g. ``{"epoch": 3,
            "train_loss": 0.2, "val_loss": 0.3, "lr": 1e-3, "val_energy_mae_per_atom": 0.01,
            "val_forces_mae": 0.05}``; energies in eV/atom, forces in eV/Å. Values may be
            NaN, None, empty or absent. Without an "epoch" key the row index is used.
        path: output file; parent directories are created.
        columns: plot only these columns, unscaled, in one panel.

    Returns:
        The path written, as a :class:`pathlib.Path`.

    Raises:
        ValueError: ``rows`` is empty, a requested column is in no row, or nothing is finite.
    """
    if not rows:
        raise ValueError("no rows to plot: the metrics table is empty")
    names = list(dict.fromkeys(name for row in rows for name in row))
    epochs = np.array([_as_float(row.get("epoch", i)) for i, row in enumerate(rows)])
    if isinstance(columns, str):
        columns = [columns]
    if columns is not None:
        missing = [c for c in columns if c not in names]
        if missing:
            raise ValueError(f"columns {missing} are in no row; available: {names}")
        series = _series(rows, columns)
        panels = [("", [("value", series)])] if series else []
    else:
        panels = _default_panels(rows, [n for n in names if n != "epoch"])
    if not panels:
        raise ValueError(f"nothing finite to plot among the columns {names}")
    fig = Figure(figsize=(4.6 * len(panels), 3.6), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.12)  # room for a twin axis label next to a panel
    for index, (title, axes) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        lines = _panel(ax, epochs, axes[0][1], axes[0][0])
        if len(axes) > 1:
            lines += _panel(ax.twinx(), epochs, axes[1][1], axes[1][0], "--", len(axes[0][1]))
        ax.legend(lines, [line.get_label() for line in lines], fontsize=8)
        ax.set_title(title)
    return save_figure(fig, path)


def rdf_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path) -> Path:
    """Radial distribution functions g(r), one line per element pair ("A-B" -> (r Å, g))."""
    if not curves:
        raise ValueError("no g(r) curves to plot")
    fig = Figure(figsize=(5.0, 3.6))
    ax = fig.add_subplot()
    for name, (r, g) in curves.items():
        ax.plot(r, g, label=name)
    ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.legend(frameon=False)
    return save_figure(fig, path)


def calibration_plot(expected: np.ndarray, observed: np.ndarray, path) -> Path:
    """Observed vs expected fraction of errors inside the predicted Gaussian intervals (diagonal = calibrated)."""
    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
    ax.plot(expected, observed, color="C0")
    ax.fill_between(expected, expected, observed, color="C0", alpha=0.2)
    area = float(np.mean(np.abs(np.asarray(observed) - np.asarray(expected))))
    ax.text(0.05, 0.92, f"miscalibration area {area:.3f}", transform=ax.transAxes)
    ax.set_xlabel("expected fraction")
    ax.set_ylabel("observed fraction")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return save_figure(fig, path)


def profile_plot(x: np.ndarray, y: np.ndarray, path, *, xlabel: str, ylabel: str) -> Path:
    """A single curve y(x), e.g. a free-energy profile along a collective variable."""
    fig = Figure(figsize=(5.0, 3.6))
    ax = fig.add_subplot()
    ax.plot(x, y, color="C0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return save_figure(fig, path)


def active_learning_plot(rows: Sequence[Mapping], path) -> Path:
    """Per generation: test force MAE and ensemble spread (meV/Å), labels, rejected fractions, sample spread."""
    generation = _column(rows, "generation")
    fig = Figure(figsize=(14, 3.4), layout="constrained")
    errors, labels, rejected, spread = fig.subplots(1, 4)
    for name, label in (("test_forces_mae", "force MAE"), ("test_forces_std_mean", "mean force std"),
                        ("test_forces_std_max", "max force std")):
        values = _column(rows, name, 1000.0)
        if np.isfinite(values).any():
            errors.plot(generation, values, marker="o", label=label)
    errors.set_ylabel("test set (meV/Å)")
    labels.plot(generation, _column(rows, "labels"), marker="o", label="labels")
    labels.plot(generation, _column(rows, "oracle_calls"), marker=".", linestyle="--", label="oracle calls")
    labels.set_ylabel("cumulative count")
    for name in ("contact", "uncertainty", "known", "duplicate", "limit"):
        values = _column(rows, f"rejected_{name}")
        if np.isfinite(values).any():
            rejected.plot(generation, values, marker="o", label=name)
    rejected.set_ylabel("fraction of candidates rejected")
    spread.plot(generation, _column(rows, "sample_spread"), marker="o")
    spread.set_ylabel("mean RMSD of candidates from seeds (Å)")
    known = generation[np.isfinite(generation)]
    for ax in (errors, labels, rejected, spread):
        ax.set_xlabel("generation")
        if known.size:  # whole generations only, with room for a single one
            ax.set_xlim(known.min() - 0.5, known.max() + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save_figure(fig, path)


def surface_plot(x: np.ndarray, y: np.ndarray, energy: np.ndarray, points: Mapping[str, np.ndarray], path, *,
                 levels: int = 30) -> Path:
    """Contours of a 2-D surface ``energy`` (len(y), len(x)) with point sets {label: (n, 2)} on top, in order."""
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.subplots()
    filled = ax.contourf(x, y, energy, levels=levels, cmap="Greys_r")
    fig.colorbar(filled, ax=ax, label="energy (eV)")
    colours = [f"C{k % 10}" for k in range(len(points))]
    for (label, xy), colour in zip(points.items(), colours):
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colour, edgecolor="white", linewidth=0.4, label=label)
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.legend(fontsize=7, loc="upper left", ncols=2)
    return save_figure(fig, path)
