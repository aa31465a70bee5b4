"""Oracles by name: ``emt``, ``gfn2``, ``gfn1``, ``double_well``, ``model:PATH``, ``module:Class``.

- ``emt``: ASE's effective-medium theory (Al, Ni, Cu, Pd, Ag, Pt, Au; fast, for metals).
- ``gfn2`` / ``gfn1``: GFN2-xTB / GFN1-xTB tight binding through the ``tblite`` package
  (Bannwarth, Ehlert and Grimme, J. Chem. Theory Comput. 15, 1652 (2019)); molecules and
  periodic cells, milliseconds per small molecule.
- ``double_well``: the analytic 2-D double well of the adversarial-attack paper.
- ``model:PATH``: any nnip model file (e.g. a classical potential saved with ``nnip.save``),
  or a YAML/JSON file spelling out a classical potential of this package as
  ``{elements: [...], terms: [{name: lj, config: {...}}, ...]}`` (eV-valued terms only:
  an untrained network is no reference method).
- ``module:Class``: any ASE calculator class, constructed without arguments (e.g. a PySCF
  or ORCA wrapper configured by its defaults or environment).
"""

from __future__ import annotations

import functools
import importlib

from ase.calculators.emt import EMT

from nnip.errors import OracleError
from nnip.oracles.analytic import DoubleWell
from nnip.oracles.base import CalculatorOracle
from nnip.strict import closest

__all__ = ["ORACLES", "get_oracle"]


def _tblite(method: str):
    try:
        from tblite.ase import TBLite
    except ImportError:
        raise OracleError(f"oracle {method}: the tblite package is not installed (pip install tblite)") from None
    # cache_api False: reset() drops the previous structure's wavefunction, which tblite would otherwise take as
    # the start of the next SCF (its labels then depended on what was labelled before, by up to 2e-4 eV/Å)
    return TBLite(method=method, verbosity=0, cache_api=False)


def _model(path: str):
    from nnip.calculator import Calculator
    from nnip.potentials.files.serialization import load

    if path.endswith((".yaml", ".yml", ".json")):
        return Calculator(_classical(path), dtype="float64")
    return Calculator(load(path), dtype="float64")


def _classical(path: str):
    """The classical potential a YAML/JSON file spells out (parameters as given, nothing trained)."""
    from pathlib import Path

    import yaml

    from nnip.errors import ConfigError
    from nnip.potentials.contract.registry import build_potential

    try:
        spec = yaml.safe_load(Path(path).read_text())
        if not isinstance(spec, dict) or set(spec) != {"elements", "terms"}:
            raise ConfigError("expected exactly the keys 'elements' and 'terms'")
        potential = build_potential(spec)
    except (OSError, yaml.YAMLError, ConfigError, ValueError, TypeError, KeyError) as error:
        raise OracleError(f"oracle model:{path}: {error}") from None
    learned = [t.name for t in potential.terms if t.dimensionless]
    if learned:
        raise OracleError(f"oracle model:{path}: {', '.join(learned)} must be trained first; "
                          "a spec file may hold only classical (eV) terms")
    return potential


def _import(spec: str):
    module_name, _, class_name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), class_name)()
    except (ImportError, AttributeError) as error:
        raise OracleError(f"oracle {spec}: cannot import {class_name} from {module_name} ({error})") from None


#: Oracle names -> factory of an ASE calculator (module-level callables, so process pools can pickle them).
ORACLES = {
    "emt": EMT,
    "gfn2": functools.partial(_tblite, "GFN2-xTB"),
    "gfn1": functools.partial(_tblite, "GFN1-xTB"),
    "double_well": DoubleWell,
}


def get_oracle(name: str) -> CalculatorOracle:
    """The oracle called ``name`` (see the module docstring); OracleError names what is wrong."""
    if name.startswith("model:"):
        return CalculatorOracle(name, functools.partial(_model, name.removeprefix("model:")))
    if name in ORACLES:
        return CalculatorOracle(name, ORACLES[name])
    if ":" in name:
        return CalculatorOracle(name, functools.partial(_import, name))
    raise OracleError(f"unknown oracle {name!r}{closest(name, ORACLES)}; known: {', '.join(ORACLES)}, "
                      "model:PATH, module:Class")
