"""Write docs/configuration.md from the config classes (their fields, types, defaults, docstrings).

    python tools/make_config_reference.py          # rewrite docs/configuration.md
    python tools/make_config_reference.py --check  # exit 1 if the file is out of date

tests/docs/test_code_blocks.py runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path

from nnip.active.adversarial import AttackSettings
from nnip.active.samplers import ActiveSettings, SelectionConfig
from nnip.potentials.contract.registry import REGISTRY
from nnip.strict import bounds_of
from nnip.training.config import DataConfig, ModelConfig, RunConfig, SplitConfig, TrainingConfig
from nnip.training.loss import LossConfig
from nnip.training.recipes import BUDGET_EPOCHS, RECIPES

TARGET = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
HEADER = """# Configuration reference

Generated from the config classes by `tools/make_config_reference.py`; a test fails when this
page and the code disagree. Every key is optional unless its default is "required". Unknown keys
and values of the wrong type are errors that name the key (and the closest valid one); so are a
key given twice, a number that is NaN or infinite, and a number outside the bounds its type shows. Any key
can be overridden on the command line: `nnip train config.yaml --set training.lr=0.005`.
Units: eV, Å, fs, K; stress eV/Å^3. In the classical terms a `PerElement` value is one number
for every element or a mapping `{symbol: value}`, combined per pair by the term's rule, and
`pairs` gives pairs that do not follow the rule: `pairs: {"Ar-Kr": {epsilon: 0.012}}`.
"""


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    if dataclasses.is_dataclass(value):
        return "(section)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return "required"
    return f"`{value!r}`".replace("'", "")


def descriptions(cls: type) -> dict[str, str]:
    """Field name -> its sentence in the docstrings of the class and its bases ("name[, name]: text"
    at a line or sentence start)."""
    doc = "\n".join(inspect.cleandoc(c.__doc__ or "") for c in cls.__mro__ if dataclasses.is_dataclass(c))
    doc = "\n".join(line.strip() for line in doc.splitlines() if line.strip() not in ("Args:", "Attributes:", ""))
    names = sorted((f.name for f in dataclasses.fields(cls)), key=len, reverse=True)
    name = "|".join(re.escape(n) for n in names)
    pattern = re.compile(rf"(?:^|(?<=\n)|(?<=\. ))((?:{name})(?:,\s*(?:{name}))*):\s")
    matches = list(pattern.finditer(doc))
    out: dict[str, str] = {}
    for k, match in enumerate(matches):
        end = matches[k + 1].start() if k + 1 < len(matches) else len(doc)
        text = " ".join(doc[match.end():end].split())
        for n in re.split(r",\s*", match.group(1)):
            out.setdefault(n, text)
    return out


def summary(cls: type) -> str:
    """The docstring without its Args block (those sentences are in the table), as one paragraph per block."""
    doc = re.split(r"(?:^|\n)(?:Args|Attributes):", inspect.cleandoc(cls.__doc__ or ""))[0]
    return "\n\n".join(" ".join(block.split()) for block in doc.split("\n\n") if block.strip())


def markdown(text: str) -> str:
    """reStructuredText roles and double back-quotes of the docstrings as Markdown code."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return markdown(text).replace("|", "\\|")


def _type(cls: type, name: str) -> str:
    """A field's type as written, with its bounds (``float > 0``)."""
    hint, bounds = bounds_of(typing.get_type_hints(cls, include_extras=True)[name])
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    return f"{text}, {bounds.text()}" if bounds else text


def section(title: str, cls: type, skip: tuple[str, ...] = ()) -> str:
    said = descriptions(cls)
    rows = [f"| `{f.name}` | `{_cell(_type(cls, f.name))}` | {_cell(_default(f))} | {_cell(said.get(f.name, ''))} |"
            for f in dataclasses.fields(cls) if f.name not in skip]
    return "\n".join([f"### {title}", "", markdown(summary(cls)), "", "| key | type | default | meaning |", "|---|---|---|---|",
                      *rows, ""])


def recipes() -> str:
    """The table of the models' training recipes (nnip.training.recipes)."""
    rows = [f"| `{name}` | " + ", ".join(f"`{key}: {value}`" for key, value in recipe.items()).replace("'", "") + " |"
            for name, recipe in RECIPES.items()]
    return "\n".join(["### Training recipes", "", "What `training` becomes for each model when the config leaves a key "
                      "out (`nnip.training.recipes`; `loss` is filled key by key; not applied when the config asks "
                      "for another `optimizer` kind). A network's run with `max_time` and no `max_epochs` gets "
                      f"`max_epochs: {BUDGET_EPOCHS}`: the time budget ends it and the cosine anneals over it. "
                      "Other models get the defaults above.", "",
                      "| model | recipe |", "|---|---|", *rows, ""])


def reference() -> str:
    parts = [HEADER, "## Training (`nnip train`, and the training part of `nnip active`)", "",
             section("top level", RunConfig, skip=("data", "model", "training")),
             section("`data`", DataConfig), section("`data.split`", SplitConfig),
             "The `model` section: `name` plus the hyperparameters of that potential (below), or "
             "`terms: [{name: ..., ...}, ...]` for a sum of terms, with these keys beside them:\n",
             section("`model`", ModelConfig), section("`training`", TrainingConfig, skip=("loss",)),
             section("`training.loss`", LossConfig), recipes(), "## Potentials (`model.name` or an entry of `model.terms`)", ""]
    for name, (config_class, _) in REGISTRY.items():
        parts.append(section(f"`{name}`", config_class))
    parts += ["## Active learning (`active` section of `nnip active`)", "",
              section("`active`", ActiveSettings, skip=("select", "attack")),
              section("`active.select`", SelectionConfig), section("`active.attack`", AttackSettings)]
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when out of date")
    text = reference()
    if parser.parse_args().check:
        current = TARGET.read_text() if TARGET.is_file() else ""
        if current != text:
            print(f"{TARGET} is out of date: run python tools/make_config_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
