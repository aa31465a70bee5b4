"""Fuzz cases: an argv for ``nnip.cli.main`` and the mutated files it names, made from (seed, index) alone.

Most cases go to the cheap ``info`` family; ``evaluate`` loads a small model and ``train`` (which
also runs ``nnip active``) trains for one epoch, so they get fewer.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from config_mutations import ConfigDocument, active_document, mutate_config, mutate_model, train_document
from mutations import FORMATS, Change, Context, always, choice, mutate_bytes, mutate_data, never, pick
from seeds import Seeds, active_config, train_config, xyz_frames, xyz_text

__all__ = ["Case", "FAMILY_WEIGHTS", "case_family", "make_case", "seed_commands"]

FAMILY_WEIGHTS = {"info": 0.55, "evaluate": 0.2, "train": 0.25}
FORMAT_WEIGHTS = {"extxyz": 0.4, "npz": 0.25, "db": 0.15, "json": 0.2}
#: structure sets ``info`` reads in each format (.npz holds no cell: molecules only)
INFO_SETS = {"extxyz": ("ethanol", "silicon", "argon"), "npz": ("ethanol", "argon"),
             "db": ("ethanol", "silicon", "argon"), "json": ("silicon", "argon", "ethanol")}
#: labels ``info`` requires of every frame (every seed structure has them)
REQUIRE = ("energy", "forces")
#: (options, must they be refused) given to a valid file
INFO_OPTIONS = ((("--energy-unit", "furlong"), True), (("--require", "bogus"), True), (("--require", "stress"), True),
                (("--energy-key", "nothere", "--require", "energy"), True), (("--stress-key", "nothere"), False),
                (("--energy-unit", "kcal/mol"), False))
EVALUATE_OPTIONS = ((("--energy-unit", "furlong"), True), (("--device", "tpu"), True),
                    (("--energy-key", "nothere", "--forces-key", "nothere"), True), (("--batch-size", "1"), False),
                    (("--dtype", "float64"), False))


@dataclass
class Case:
    """One run of ``nnip.cli.main(argv)``; ``refuse``: a correct nnip exits non-zero on it."""

    seed: int
    index: int
    family: str
    argv: list[str]
    mutation: str
    detail: str
    refuse: bool
    directory: str

    def command(self) -> str:
        return shlex.join(["nnip", *self.argv])

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def case_family(seed: int, index: int) -> str:
    """The family of a case, without making it (its first draw)."""
    return pick(_rng(seed, index), FAMILY_WEIGHTS)


def make_case(seed: int, index: int, seeds: Seeds, root: Path) -> Case:
    """Write the files of case ``index`` into ``root``/case-NNNNNN and return it."""
    rng = _rng(seed, index)
    family = pick(rng, FAMILY_WEIGHTS)
    directory = Path(root) / f"case-{index:06d}"
    directory.mkdir(parents=True, exist_ok=True)
    with np.errstate(all="ignore"):  # ASE's db summarises huge forces with overflowing squares
        argv, change = BUILDERS[family](seeds, rng, directory)
    return Case(seed, index, family, argv, change.name, change.detail, change.refuse, str(directory))


def _prefixed(prefix: str, change: Change) -> Change:
    return Change(f"{prefix}.{change.name}", change.detail, change.refuse)


def _options(argv: list[str], options, rng) -> tuple[list[str], Change]:
    """A valid argv with options from ``options`` added."""
    chosen, refuse = choice(rng, options)
    return [*argv, *chosen], Change(f"{argv[0]}.options", " ".join(chosen), refuse)


# ---- the families --------------------------------------------------------------------------------------------------


def info_case(seeds: Seeds, rng, directory: Path) -> tuple[list[str], Change]:
    """``nnip info`` on a mutated data file (or on a valid one with wrong options)."""
    if rng.random() < 0.04:
        path = directory / "ethanol.extxyz"
        path.write_text(xyz_text(xyz_frames(seeds.frames["ethanol"])))
        return _options(["info", str(path)], INFO_OPTIONS, rng)
    fmt = FORMATS[pick(rng, FORMAT_WEIGHTS)]
    name = choice(rng, INFO_SETS[fmt.name])
    path = directory / f"{name}{fmt.suffix}"
    change = mutate_data(fmt, seeds.frames[name], Context(rng, REQUIRE), path)
    return ["info", str(path), "--require", ",".join(REQUIRE)], change


def evaluate_case(seeds: Seeds, rng, directory: Path) -> tuple[list[str], Change]:
    """``nnip evaluate`` of a model on argon data, with the data or the model file mutated."""
    model = choice(rng, sorted(seeds.models))
    extra = ["--json"] if rng.random() < 0.3 else []
    draw = rng.random()
    if draw < 0.5:
        fmt = FORMATS[pick(rng, FORMAT_WEIGHTS)]
        path = directory / f"argon{fmt.suffix}"
        change = mutate_data(fmt, seeds.frames["argon"], Context(rng), path)
        return ["evaluate", str(seeds.model(model)), str(path), *extra], change
    if draw < 0.95:
        path = directory / f"{model}.pt"
        change = _mutated_model(seeds.models[model], rng, path)
        return ["evaluate", str(path), str(seeds.argon), *extra], change
    return _options(["evaluate", str(seeds.model(model)), str(seeds.argon)], EVALUATE_OPTIONS, rng)


def _mutated_model(payload: dict, rng, path: Path) -> Change:
    """Write a model file with its payload or its bytes mutated."""
    import torch

    if rng.random() < 0.2:
        torch.save(payload, path)
        return _prefixed("model", mutate_bytes(path, rng, always))
    document, change = mutate_model(payload, Context(rng))
    torch.save(document.payload, path)
    return _prefixed("model", change)


def train_case(seeds: Seeds, rng, directory: Path) -> tuple[list[str], Change]:
    """``nnip train`` with its config or its data mutated, or ``nnip active`` with its config mutated."""
    output = directory / "run"
    draw = rng.random()
    if draw < 0.5:
        return _config_case("train", lambda: train_document(train_config(seeds.argon_train, output)), rng, directory)
    if draw < 0.8:
        fmt = FORMATS[pick(rng, FORMAT_WEIGHTS)]
        data = directory / f"argon_train{fmt.suffix}"
        change = mutate_data(fmt, seeds.frames["argon_train"], Context(rng), data)
        config = directory / "config.yaml"
        config.write_text(train_document(train_config(data, output)).render())
        return ["train", str(config)], change
    return _config_case("active", lambda: active_document(active_config(seeds.well_train, seeds.well_test, output)),
                        rng, directory)


def _config_case(command: str, make: Callable[[], ConfigDocument], rng, directory: Path) -> tuple[list[str], Change]:
    """A YAML config with one mutation of its keys, its text or its bytes (``--set`` overrides in the argv)."""
    path = directory / "config.yaml"
    if rng.random() < 0.12:
        text = make().render()
        path.write_text(text)
        output = re.search(r"^output:.*$", text, re.MULTILINE)  # a flipped output would write anywhere
        protected = range(*output.span()) if output else range(0)
        return [command, str(path)], _prefixed(f"{command}_yaml", mutate_bytes(path, rng, never, protected))
    document, change = mutate_config(make, Context(rng))
    path.write_text(document.render())
    return [command, str(path), *(f"--set={item}" for item in document.sets)], _prefixed(f"{command}_yaml", change)


BUILDERS = {"info": info_case, "evaluate": evaluate_case, "train": train_case}


def seed_commands(seeds: Seeds, family: str, directory: Path) -> list[list[str]]:
    """Argvs of a family on the unmutated inputs (every format of every structure set): each must exit 0."""
    ctx = Context(np.random.default_rng(0))

    def data(name: str, fmt) -> str:
        path = directory / f"{name}{fmt.suffix}"
        fmt.write(fmt.document([frame.copy() for frame in seeds.frames[name]], ctx), path)
        return str(path)

    if family == "info":
        return [["info", data(name, FORMATS[fmt]), "--require", ",".join(REQUIRE)]
                for fmt, names in INFO_SETS.items() for name in names]
    if family == "evaluate":
        return [["evaluate", str(seeds.model(model)), data("argon", fmt)]
                for model in sorted(seeds.models) for fmt in FORMATS.values()]
    commands = []
    for fmt in FORMATS.values():
        config = directory / f"train-{fmt.name}.yaml"
        config.write_text(train_document(train_config(data("argon_train", fmt), directory / fmt.name)).render())
        commands.append(["train", str(config)])
    config = directory / "active.yaml"
    config.write_text(active_document(active_config(seeds.well_train, seeds.well_test, directory / "active")).render())
    return commands + [["active", str(config)]]
