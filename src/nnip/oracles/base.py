"""The oracle protocol and the oracle made from any ASE calculator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator

from nnip.errors import OracleError

__all__ = ["Oracle", "CalculatorOracle", "label_one"]


class Oracle(Protocol):
    """A reference method: ``label`` returns copies of the frames with energy and forces (eV, eV/Å)."""

    name: str

    def label(self, frames: Sequence[Atoms]) -> list[Atoms]:
        ...


def label_one(atoms: Atoms, calculator: Calculator, name: str) -> Atoms:
    """A copy of ``atoms`` with energy, forces (and stress for 3-D periodic cells) from ``calculator``, reset
    first, so that the label does not depend on what the calculator computed before.

    Raises:
        OracleError: naming the oracle and the frame's ``source_index`` when the method fails.
    """
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info = dict(atoms.info)
    calculator.reset()  # nothing of the previous structure (an SCF's starting guess) may reach this label
    out.calc = calculator
    try:
        labels = {"energy": out.get_potential_energy(), "forces": out.get_forces()}
        if out.pbc.all() and "stress" in calculator.implemented_properties:
            labels["stress"] = out.get_stress()
    except Exception as error:  # reference codes raise anything (SCF not converged, bad geometry ...)
        where = f"frame {atoms.info.get('source_index', '?')}"
        raise OracleError(f"oracle {name}: {where}: {type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}") \
            from None
    if not (np.isfinite(labels["energy"]) and np.isfinite(labels["forces"]).all()):
        raise OracleError(f"oracle {name}: frame {atoms.info.get('source_index', '?')}: non-finite energy or forces")
    out.calc = SinglePointCalculator(out, **labels)
    return out


class CalculatorOracle:
    """An oracle from a factory of ASE calculators (called once per process, so it can be pickled).

    Args:
        name: oracle name, for messages.
        factory: a picklable callable returning an ASE calculator (e.g. ``ase.calculators.emt.EMT``).
    """

    def __init__(self, name: str, factory: Callable[[], Calculator]):
        self.name = name
        self.factory = factory
        self._calculator: Calculator | None = None

    def label(self, frames: Sequence[Atoms]) -> list[Atoms]:
        if self._calculator is None:
            self._calculator = self.factory()
        return [label_one(atoms, self._calculator, self.name) for atoms in frames]

    def __getstate__(self):  # calculators hold open resources: rebuild them in the worker
        return {"name": self.name, "factory": self.factory, "_calculator": None}
