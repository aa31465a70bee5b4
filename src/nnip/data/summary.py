"""Dataset summary for ``nnip info``: sizes, elements, label ranges, periodicity."""

from __future__ import annotations

from collections import Counter

import numpy as np
from ase import Atoms

__all__ = ["summarize", "format_summary"]


def _range(values: list[float], unit: str, fmt: str = ".4f") -> str:
    if not values:
        return "none"
    v = np.asarray(values)
    return f"{v.min():{fmt}} .. {v.max():{fmt}} {unit} (mean {v.mean():{fmt}}, std {v.std():{fmt}})"


def summarize(frames: list[Atoms]) -> dict:
    """Plain-data summary of labelled structures (energies eV, forces eV/Å)."""
    elements: Counter[str] = Counter()
    formulas: Counter[str] = Counter()
    energies, energies_per_atom, force_norms, sizes = [], [], [], []
    n_periodic = n_forces = n_stress = 0
    for atoms in frames:
        elements.update(atoms.get_chemical_symbols())
        formulas[atoms.get_chemical_formula()] += 1
        sizes.append(len(atoms))
        n_periodic += bool(atoms.pbc.any())
        results = atoms.calc.results if atoms.calc is not None else {}
        if results.get("energy") is not None:
            energies.append(float(results["energy"]))
            energies_per_atom.append(float(results["energy"]) / len(atoms))
        if results.get("forces") is not None:
            n_forces += 1
            force_norms.extend(np.linalg.norm(results["forces"], axis=1).tolist())
        n_stress += results.get("stress") is not None
    return {
        "frames": len(frames),
        "atoms": _range(sizes, "atoms per frame", ".0f") if sizes else "none",
        "elements": dict(sorted(elements.items())),
        "formulas": dict(formulas.most_common()),
        "energy": _range(energies, "eV"),
        "energy_per_atom": _range(energies_per_atom, "eV/atom"),
        "force_norm": _range(force_norms, "eV/Å"),
        "frames_with_energy": len(energies),
        "frames_with_forces": n_forces,
        "frames_with_stress": n_stress,
        "periodic": f"{n_periodic} periodic, {len(frames) - n_periodic} non-periodic",
    }


def format_summary(path: str, summary: dict, n_in_file: int) -> str:
    """Human-readable block of a :func:`summarize` result."""
    formulas = summary["formulas"]
    shown = ", ".join(f"{f} x{n}" for f, n in list(formulas.items())[:8])
    if len(formulas) > 8:
        shown += f", ... ({len(formulas)} compositions)"
    lines = [
        f"file:          {path}",
        f"frames:        {summary['frames']} valid of {n_in_file}",
        f"atoms:         {summary['atoms']}",
        f"elements:      {', '.join(f'{e} ({n})' for e, n in summary['elements'].items())}",
        f"composition:   {shown}",
        f"periodicity:   {summary['periodic']}",
        f"labels:        energy {summary['frames_with_energy']}, forces {summary['frames_with_forces']}, "
        f"stress {summary['frames_with_stress']} frames",
        f"energy:        {summary['energy']}",
        f"energy/atom:   {summary['energy_per_atom']}",
        f"|force|:       {summary['force_norm']}",
    ]
    return "\n".join(lines)
