"""Seeded mutations of YAML configs (``nnip train``, ``nnip active``) and of saved-model payloads (``nnip evaluate``).

A config is held as :class:`Section` trees of [key, value] pairs, so a mutation can give a key
twice or write raw YAML text; a value mutation reaches nnip either in the file or as
``--set KEY=VALUE``. Which values must be refused follows from the kind of the key
(:data:`KINDS`): a learning rate must be positive and finite, a seed an integer in 0..2^32-1.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import yaml

from mutations import Change, Context, NotApplicable, bad_number, choice, pick

__all__ = ["Section", "ConfigDocument", "train_document", "active_document", "mutate_config", "yaml_text",
           "ModelDocument", "mutate_model"]

# ---- which values each kind of key must refuse -------------------------------------------------------------------

_NUMBER = {"nan": True, "inf": True, "-inf": True, "string": True, "list": True, "mapping": True, "bool": True,
           "null": True}
_COUNT = {**_NUMBER, "negative": True, "zero": True, "huge": False, "float": True}

#: kind -> {variant: must the value be refused}; variants a kind lacks are not tried on it
KINDS: dict[str, dict[str, bool]] = {
    "positive": {**_NUMBER, "negative": True, "zero": True, "huge": False},
    "positive_or_null": {**_NUMBER, "negative": True, "zero": True, "huge": False, "null": False},
    "non_negative": {**_NUMBER, "negative": True, "zero": False, "huge": False},
    "fraction": {**_NUMBER, "negative": True, "zero": True, "huge": True},  # open interval (0, 1)
    "fraction_or_null": {**_NUMBER, "negative": True, "zero": True, "huge": True, "null": False},
    "cutoff": {**_NUMBER, "negative": True, "zero": True, "huge": True},  # (0, 100] Å
    "count": _COUNT,  # an integer >= 1
    "members": {**_COUNT, "one": True},  # an ensemble for active learning: >= 2
    "seed": {**_NUMBER, "negative": True, "zero": False, "huge": True, "float": True},  # 0 .. 2^32 - 1
    "split": {**_NUMBER, "negative": True, "zero": False, "huge": True},  # a fraction or a count below the data's
    "percent": {**_NUMBER, "negative": True, "zero": False, "huge": True},  # 0 .. 100
    "flag": {"nan": True, "string": True, "list": True, "mapping": True, "null": True, "zero": True, "huge": True},
    "choice": {"unknown": True, "zero": True, "list": True, "mapping": True, "null": True},
    "choice_or_null": {"unknown": True, "zero": True, "list": True, "mapping": True, "null": False},
    "path": {"missing": True, "zero": True, "list": True, "null": True, "empty": True},
    "path_or_null": {"missing": True, "zero": True, "list": True, "null": False, "empty": True},
}
_INTEGER_KINDS = {"count", "members", "seed", "split"}


def variant_value(variant: str, kind: str, rng: np.random.Generator) -> Any:
    """The value of a variant for a key of ``kind`` (huge: 1e6..1e308, an int for integer kinds)."""
    integer = kind in _INTEGER_KINDS
    if variant == "huge":
        if kind == "seed":
            return int(2**32 * 10 ** rng.uniform(0, 3)) + 1
        if integer:
            return int(10 ** rng.integers(6, 19))
        return float(f"{rng.uniform(1, 9.99):.3f}e{rng.integers(6, 308)}")
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "negative": -1 if integer else -0.5, "zero": 0,
            "float": 2.5, "string": "fast", "list": [1, 2], "mapping": {"a": 1}, "bool": True, "null": None,
            "unknown": "bogus", "missing": "/nonexistent/fuzz.extxyz", "empty": "", "one": 1}[variant]


# ---- YAML documents as pair trees ----------------------------------------------------------------------------------


class Section(list):
    """A YAML mapping as a list of [key, value] pairs: ordered, and a key may appear twice."""


@dataclass(frozen=True)
class Raw:
    """YAML text written as it is."""

    text: str


def section(data: dict) -> Section:
    return Section([key, section(value) if isinstance(value, dict) else value] for key, value in data.items())


def flow(value: Any) -> str:
    """One-line YAML of a value (.nan, .inf, [1, 2], {a: 1}, ...)."""
    if isinstance(value, Raw):
        return value.text
    text = yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def yaml_text(node: Section, indent: int = 0) -> str:
    lines = []
    for key, value in node:
        if isinstance(value, Section):
            lines.append(f"{' ' * indent}{key}:\n{yaml_text(value, indent + 2)}")
        else:
            lines.append(f"{' ' * indent}{key}: {flow(value)}\n")
    return "".join(lines)


def key_paths(node: Section, prefix: str = "") -> list[str]:
    """Dotted paths of every key, sections included."""
    paths = []
    for key, value in node:
        path = f"{prefix}{key}"
        paths.append(path)
        if isinstance(value, Section):
            paths.extend(key_paths(value, path + "."))
    return paths


def locate(node: Section, path: str) -> tuple[Section, int]:
    """(mapping, index of the pair) of a dotted path."""
    *parents, last = path.split(".")
    for part in parents:
        node = next(value for key, value in node if key == part)
    return node, next(k for k, (key, _) in enumerate(node) if key == last)


def _value(node: Section, path: str) -> Any:
    mapping, k = locate(node, path)
    return mapping[k][1]


# ---- the configs and their mutations ------------------------------------------------------------------------------


@dataclass
class ConfigDocument:
    """A config being mutated: its tree, the kinds of its keys, and what ``--set`` overrides the argv gets."""

    node: Section
    kinds: dict[str, str]
    required: frozenset[str]
    slow: frozenset[str]  # keys whose huge values or deletion make a valid but long run
    sets: list[str] = field(default_factory=list)
    text: Callable[[str], str] | None = None  # a last edit of the file text

    def render(self) -> str:
        text = yaml_text(self.node)
        return self.text(text) if self.text else text


_TRAINING = {
    "seed": "seed", "data.train": "path", "data.split.val": "split", "data.split.test": "split",
    "training.max_epochs": "count", "training.max_time": "positive_or_null", "training.batch_size": "count",
    "training.lr": "positive", "training.progress": "flag", "training.plots": "flag",
    "training.loss.energy_weight": "non_negative", "training.loss.forces_weight": "non_negative",
}
TRAIN_KINDS = {
    **_TRAINING, "model.sigma": "positive", "model.epsilon": "non_negative", "model.cutoff": "cutoff",
    "model.e0": "choice", "training.eval_batch_size": "count", "training.optimizer": "choice",
    "training.schedule": "choice", "training.plateau_factor": "fraction", "training.weight_decay": "non_negative",
    "training.ema_decay": "fraction_or_null", "training.clip_grad_norm": "positive_or_null",
    "training.loss.huber_delta": "positive",
}
ACTIVE_KINDS = {
    **_TRAINING, "ensemble": "members", "data.test": "path_or_null", "training.dtype": "choice_or_null",
    "active.generations": "count", "active.oracle": "choice", "active.sampler": "choice", "active.seeds": "count",
    "active.samples_per_seed": "count", "active.amplitude": "non_negative", "active.new_weight": "positive",
    "active.temperature": "non_negative", "active.rigid_invariant": "flag", "active.select.percentile": "percent",
    "active.select.rmsd": "non_negative", "active.select.max_new": "count", "active.attack.kT": "positive",
    "active.attack.lr": "positive",
}
_REQUIRED = frozenset({"data", "model", "data.train", "model.name"})
_SLOW = frozenset({"training", "training.max_epochs"})


def train_document(config: dict) -> ConfigDocument:
    return ConfigDocument(section(config), TRAIN_KINDS, _REQUIRED, _SLOW)


def active_document(config: dict) -> ConfigDocument:
    slow = _SLOW | {"active", "ensemble", "active.generations", "active.samples_per_seed"}
    return ConfigDocument(section(config), ACTIVE_KINDS, _REQUIRED | {"ensemble"}, slow)


def _deliver(document: ConfigDocument, path: str, value: Any, rng) -> str:
    """Put a value into the file or into a ``--set`` override (half each); returns where it went."""
    if rng.random() < 0.5:
        document.sets.append(f"{path}={flow(value)}")
        return "--set"
    mapping, k = locate(document.node, path)
    mapping[k][1] = Raw(flow(value))
    return "file"


def yaml_value(document: ConfigDocument, ctx: Context) -> Change:
    """A value replaced by NaN, ±inf, a negative, zero, a huge number or a value of the wrong type."""
    present = set(key_paths(document.node))
    path = choice(ctx.rng, sorted(p for p in document.kinds if p in present))
    kind = document.kinds[path]
    variants = {v: r for v, r in KINDS[kind].items() if not (v == "huge" and path in document.slow)}
    variant = choice(ctx.rng, sorted(variants))
    value = variant_value(variant, kind, ctx.rng)
    where = _deliver(document, path, value, ctx.rng)
    return Change(f"value.{path}.{variant}", f"{path}: {flow(value)} ({where})", variants[variant])


def yaml_delete(document: ConfigDocument, ctx: Context) -> Change:
    """A key (or a whole section) deleted: refused where it is required."""
    path = choice(ctx.rng, [p for p in key_paths(document.node) if p not in document.slow])
    mapping, k = locate(document.node, path)
    del mapping[k]
    return Change(f"delete.{path}", f"{path} deleted", path in document.required)


def yaml_duplicate(document: ConfigDocument, ctx: Context) -> Change:
    """A key given twice in one mapping (PyYAML would silently keep the second)."""
    path = choice(ctx.rng, key_paths(document.node))
    mapping, k = locate(document.node, path)
    mapping.insert(k + 1, copy.deepcopy(mapping[k]))
    return Change(f"duplicate_key.{path}", f"{path} given twice", True)


def yaml_unknown_key(document: ConfigDocument, ctx: Context) -> Change:
    """A misspelt key next to the real one."""
    path = choice(ctx.rng, key_paths(document.node))
    mapping, k = locate(document.node, path)
    key, value = mapping[k]
    mapping.insert(k, [key + "s", copy.deepcopy(value)])
    return Change(f"unknown_key.{path}", f"{path}s added", True)


def yaml_section_type(document: ConfigDocument, ctx: Context) -> Change:
    """A section replaced by a number, a list or text."""
    path = choice(ctx.rng, [p for p in key_paths(document.node) if isinstance(_value(document.node, p), Section)])
    value = choice(ctx.rng, (5, [1, 2], "abc"))
    where = _deliver(document, path, value, ctx.rng)
    return Change(f"section_type.{path}", f"{path}: {flow(value)} ({where})", True)


#: edits of the file text that make it invalid YAML
_SYNTAX = {
    "unclosed_bracket": lambda text: text.replace(": ", ": [", 1),
    "tab_indent": lambda text: text.replace("\n  ", "\n\t", 1),
    "double_colon": lambda text: text.replace(": ", ": : ", 1),
    "bad_indent": lambda text: text.replace("\n  ", "\n   ", 1),  # deeper than the next key of its mapping
}


def yaml_syntax(document: ConfigDocument, ctx: Context) -> Change:
    """The file made invalid YAML: an unclosed bracket, a tab, a stray colon, a broken indentation."""
    name = choice(ctx.rng, sorted(_SYNTAX))
    document.text = _SYNTAX[name]
    return Change(f"syntax.{name}", name, True)


def yaml_top(document: ConfigDocument, ctx: Context) -> Change:
    """A file whose top level is no mapping: empty, a list, a word."""
    text = choice(ctx.rng, ("", "- a\n- b\n", "hello\n", "null\n", "42\n"))
    document.text = lambda _: text
    return Change("top_level", f"file = {text!r}", True)


def yaml_bad_set(document: ConfigDocument, ctx: Context) -> Change:
    """A malformed --set: no '=', an empty key, or a key under a value that is no section."""
    item = choice(ctx.rng, ("training.lr", "=1", "data.train.x=1", "training.lr.x=1", "..=1"))
    document.sets.append(item)
    return Change("bad_set", f"--set {item}", True)


def yaml_harmless(document: ConfigDocument, ctx: Context) -> Change:
    """A comment line, or two keys of a mapping swapped: must be accepted."""
    if ctx.rng.random() < 0.5:
        document.text = lambda text: "# fuzz: a comment\n" + text
        return Change("harmless.comment", "comment line added", False)
    values = (_value(document.node, path) for path in key_paths(document.node))
    mapping = choice(ctx.rng, [document.node] + [value for value in values if isinstance(value, Section)])
    if len(mapping) < 2:
        raise NotApplicable
    mapping.reverse()
    return Change("harmless.order", "keys of a mapping reversed", False)


CONFIG_MUTATORS = {yaml_value: 0.5, yaml_delete: 0.1, yaml_duplicate: 0.07, yaml_unknown_key: 0.06,
                   yaml_section_type: 0.05, yaml_syntax: 0.05, yaml_top: 0.03, yaml_bad_set: 0.04,
                   yaml_harmless: 0.1}


def mutate_config(make: Callable[[], ConfigDocument], ctx: Context) -> tuple[ConfigDocument, Change]:
    """A fresh document from ``make`` with one mutation (drawn again while one does not apply)."""
    for _ in range(50):
        document = make()
        try:
            return document, pick(ctx.rng, CONFIG_MUTATORS)(document, ctx)
        except NotApplicable:
            continue
    raise RuntimeError("no config mutation applies")


# ---- saved models ---------------------------------------------------------------------------------------------------


@dataclass
class ModelDocument:
    """The payload of a model file (what ``torch.load(weights_only=True)`` returns), written by ``torch.save``."""

    payload: Any


def _tensor_key(payload: dict, rng, floating: bool) -> str:
    keys = [k for k, v in payload["state_dict"].items() if v.is_floating_point() == floating and v.numel()]
    return choice(rng, sorted(keys))


def model_value(document: ModelDocument, ctx: Context) -> Change:
    """One weight made non-finite (refuse) or huge (may be accepted)."""
    import torch

    state = document.payload["state_dict"]
    key = _tensor_key(document.payload, ctx.rng, floating=True)
    value, kind, refuse = bad_number(ctx.rng)
    tensor = state[key].clone().reshape(-1)
    if math.isfinite(value):  # huge within the tensor's dtype (float32 ends at 3.4e38)
        value = math.copysign(min(abs(value), torch.finfo(tensor.dtype).max), value)
    tensor[int(ctx.rng.integers(tensor.numel()))] = value
    state[key] = tensor.reshape(state[key].shape)
    return Change(f"weight.{kind}", f"{key} holds {value!r}", refuse)


def model_state(document: ModelDocument, ctx: Context) -> Change:
    """A weight of the wrong shape, an index table out of range, a weight missing or an unknown one."""
    import torch

    state = document.payload["state_dict"]
    how = choice(ctx.rng, ("shape", "index", "missing", "extra"))
    key = _tensor_key(document.payload, ctx.rng, floating=how != "index")
    if how == "shape":
        state[key] = torch.cat([state[key].reshape(-1), state[key].reshape(-1)[:1]])
    elif how == "index":  # an entry the model uses: species_of at one of its elements
        tensor = state[key].clone()
        used = document.payload["spec"]["elements"] if key.endswith("species_of") else range(tensor.numel())
        tensor.view(-1)[int(choice(ctx.rng, list(used)))] = choice(ctx.rng, (-7, 1000, 2**40))
        state[key] = tensor
    elif how == "missing":
        del state[key]
    else:
        state[key + "_extra"] = state[key].clone()
    return Change(f"state.{how}", f"{key}: {how}", True)


#: kinds of the hyperparameters of the terms of the seed models (network sizes never huge: a model would not fit)
_TERM_KINDS = {"cutoff": "cutoff", "features": "count", "interactions": "count", "basis": "count",
               "activation": "choice", "mixing": "choice", "shift": "flag"}


def model_spec(document: ModelDocument, ctx: Context) -> Change:
    """The model description: unknown elements, an unknown term, or a hyperparameter of a wrong value."""
    spec = document.payload["spec"]
    how = choice(ctx.rng, ("elements", "term_name", "hyperparameter"))
    if how == "elements":
        spec["elements"] = choice(ctx.rng, ([0], [150], ["Xx"], [], [18, 18], "Ar"))
        return Change("spec.elements", f"elements = {spec['elements']!r}", True)
    term = spec["terms"][0]
    if how == "term_name":
        term["name"] = "bogus"
        return Change("spec.term_name", "term name 'bogus'", True)
    key = choice(ctx.rng, sorted(k for k in term["config"] if k in _TERM_KINDS))
    kind = _TERM_KINDS[key]
    variants = {v: r for v, r in KINDS[kind].items() if v != "huge" or kind != "count"}
    variant = choice(ctx.rng, sorted(variants))
    term["config"][key] = variant_value(variant, kind, ctx.rng)
    return Change(f"spec.{key}.{variant}", f"{key} = {term['config'][key]!r}", variants[variant])


#: (key, value or _DELETE, refuse) of the header fields
_DELETE = object()
_HEADER = (
    ("format", "xyz", True), ("format_version", 99, True), ("format_version", "2", True),
    ("format_version", -1, True), ("format_version", 2.0, True), ("format_version", 1, False),
    ("kind", "bogus", True), ("kind", "ensemble", True), ("dtype", "float16", True), ("dtype", "bogus", True),
    ("dtype", 5, True), ("spec", _DELETE, True), ("state_dict", _DELETE, True), ("format", _DELETE, True),
    ("metadata", {"junk": [1, 2]}, False), ("nnip_version", "99.0", False),
)


def model_header(document: ModelDocument, ctx: Context) -> Change:
    """A header field changed or deleted (format, version, kind, dtype, spec, weights, metadata)."""
    key, value, refuse = choice(ctx.rng, _HEADER)
    if value is _DELETE:
        del document.payload[key]
    else:
        document.payload[key] = value
    shown = "deleted" if value is _DELETE else repr(value)
    return Change(f"header.{key}", f"{key} {shown}", refuse)


def model_not_a_mapping(document: ModelDocument, ctx: Context) -> Change:
    """A file holding a list, a tensor or text instead of the model mapping."""
    import torch

    document.payload = choice(ctx.rng, ([1, 2], "model", torch.zeros(3)))
    return Change("not_a_mapping", f"payload = {type(document.payload).__name__}", True)


MODEL_MUTATORS = (model_value, model_state, model_spec, model_header, model_not_a_mapping)


def mutate_model(payload: dict, ctx: Context) -> tuple[ModelDocument, Change]:
    document = ModelDocument(copy.deepcopy(payload))
    return document, choice(ctx.rng, MODEL_MUTATORS)(document, ctx)
