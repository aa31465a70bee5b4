"""The dependency direction of DESIGN.md: nothing imports upward; nothing imports nnip.testing."""

import ast
from pathlib import Path

import nnip

PACKAGE = Path(nnip.__file__).parent
# Layers from the bottom, as DESIGN.md states the dependency direction:
#   units, keys, errors -> data -> nn -> potentials -> uncertainty -> training | calculator -> md | lammps -> oracles
#   -> active learning -> demo -> cli
# plus the helpers DESIGN.md's layout places at the root: strict (the config parser, beside errors), runlock
# (one writer per run folder, beside them), progress (the long stages' bars, beside them) and
# plots (drawn from predictions and calibration, beside uncertainty). A module may import its own layer and
# the layers below it.
LAYERS = [
    {"errors", "units", "keys", "version", "strict", "runlock", "progress"},
    {"data"},
    {"nn"},
    {"potentials"},
    {"uncertainty", "plots"},
    {"training", "calculator"},
    {"md", "lammps"},
    {"oracles"},
    {"active"},
    {"demo"},
    {"cli", "__init__", "__main__"},
]


def _layer(name: str) -> int:
    for level, members in enumerate(LAYERS):
        if name in members:
            return level
    raise AssertionError(f"module nnip.{name} is in no layer of the dependency test: add it")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nnip"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("nnip"))


def test_no_module_imports_upward_or_imports_testing():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        top = parts[0]
        if top == "testing":
            continue
        for module in _imports(path):
            target = module.split(".")
            if len(target) < 2:
                continue
            if target[1] == "testing":
                violations.append(f"{path.name} imports nnip.testing")
            elif _layer(target[1]) > _layer(top):
                violations.append(f"nnip.{'.'.join(parts)} imports {module}")
    assert violations == []


def test_modules_stay_small():
    too_long = [p.name for p in PACKAGE.rglob("*.py") if len(p.read_text().splitlines()) > 400]
    assert too_long == []


def test_only_the_irreps_wrapper_imports_e3nn():
    importers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] \
                if isinstance(node, ast.ImportFrom) else []
            if any(name.split(".")[0] == "e3nn" for name in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(importers)) == ["nn/irreps.py"]
