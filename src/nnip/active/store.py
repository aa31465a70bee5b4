"""Every structure of an active-learning run, with provenance, in an ASE database (SQLite).

Rows carry ``generation`` (int), ``sampler`` (initial, adversarial, md, normal_modes,
random), ``candidate`` (index in that generation's selection, -1 for initial data),
``seed_index`` (training structure it started from, -1 if none), ``objective`` (sampler's
figure: sigma_F, log A, ...), ``oracle``, ``wall_time`` (s spent labelling), and
``status`` ("labelled" or "failed", with ``reason``); ``atoms.info`` (numbers, text,
arrays: e.g. a net ``charge``) is kept in the row's data and restored. Each row is committed when written,
so a killed run keeps every label it received, and ``(generation, candidate)`` is
unique, so a resumed run never labels a candidate twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import ase.db
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = ["Store"]


class Store:
    """An ASE database file of labelled structures and failed oracle calls."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        self.db = ase.db.connect(self.path, type="db", append=True)

    def add(self, atoms: Atoms, generation: int, sampler: str, candidate: int = -1, seed_index: int = -1,
            objective: float = float("nan"), oracle: str = "", wall_time: float = 0.0, status: str = "labelled",
            reason: str = "") -> int:
        """Commit one structure (with its calculator's results as labels); returns its row id."""
        if candidate >= 0 and self.has(generation, candidate):
            raise ValueError(f"generation {generation} candidate {candidate} is already in {self.path}")
        pairs = {"generation": int(generation), "sampler": sampler, "candidate": int(candidate),
                 "seed_index": int(seed_index), "oracle": oracle, "wall_time": float(wall_time), "status": status}
        if objective == objective:  # not NaN
            pairs["objective"] = float(objective)
        if reason:
            pairs["reason"] = reason[:500]
        return self.db.write(atoms, key_value_pairs=pairs, data={"info": _plain_info(atoms.info)})

    def has(self, generation: int, candidate: int) -> bool:
        """Whether that candidate was labelled (or failed) already."""
        return self.db.count(generation=int(generation), candidate=int(candidate)) > 0

    def rows(self, **selection) -> Iterator:
        """Database rows matching ``selection`` (e.g. status="labelled", generation=2), in insertion order."""
        return self.db.select(sort="id", **selection)

    def labelled(self, before_generation: int | None = None) -> list[Atoms]:
        """Labelled structures (energy and forces attached), optionally only those of earlier generations."""
        out = []
        for row in self.rows(status="labelled"):
            if before_generation is not None and row.generation >= before_generation:
                continue
            atoms = row.toatoms()
            results = {k: row.get(k) for k in ("energy", "forces", "stress") if row.get(k) is not None}
            atoms.calc = SinglePointCalculator(atoms, **results)
            atoms.info = {**row.data.get("info", {}), "generation": row.generation, "sampler": row.sampler}
            out.append(atoms)
        return out

    def count(self, **selection) -> int:
        return self.db.count(**selection)


def _plain_info(info: dict) -> dict:
    """The entries of ``atoms.info`` an ASE database can hold (numbers, text, booleans, arrays)."""
    out = {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            value = value.item()  # the database stores Python scalars, not numpy ones
        if isinstance(value, (bool, int, float, str, np.ndarray)):
            out[key] = value
    return out
