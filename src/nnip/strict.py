"""Strict construction of configuration dataclasses from plain data (YAML, saved models).

Unknown keys are errors naming the key and the closest valid one; values of the wrong
type are errors naming the key and the expected type. Every number must be finite, and a
field annotated with :class:`Bounds` (``lr: Annotated[float, POSITIVE]``) must lie within them.
YAML files are read with :func:`load_yaml`, which refuses a key given twice in one mapping.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nnip.errors import ConfigError

__all__ = ["from_dict", "closest", "Bounds", "POSITIVE", "NON_NEGATIVE", "AT_LEAST_ONE", "FRACTION", "SEED",
           "CUTOFF", "MAX_CUTOFF", "load_yaml", "parse_yaml", "non_finite", "check", "bounds_of"]

T = TypeVar("T")


@dataclass(frozen=True)
class Bounds:
    """The values a number of a config may take: ``low`` <= x <= ``high`` (None: no bound; ``open_low`` /
    ``open_high``: that end excluded). Attach it to a field with ``typing.Annotated``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def problem(self, value: Any) -> str | None:
        """'must be ..., got X' when ``value`` (a number; anything else passes) is outside, else None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        below = self.low is not None and (value < self.low or (self.open_low and value == self.low))
        above = self.high is not None and (value > self.high or (self.open_high and value == self.high))
        return f"must be {self.text()}, got {value!r}" if below or above else None

    def text(self) -> str:
        """The bounds as written in messages and the configuration reference, e.g. '> 0 and <= 100'."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {_number(self.high)}")
        return " and ".join(parts)


def _number(value: float) -> str:
    """A bound as written: whole numbers in full (a seed's 4294967295), others like 0.5 or 1e-08."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


POSITIVE = Bounds(0, open_low=True)
NON_NEGATIVE = Bounds(0)
AT_LEAST_ONE = Bounds(1)
FRACTION = Bounds(0, 1, open_low=True, open_high=True)
#: seeds of numpy's and torch's generators
SEED = Bounds(0, 2**32 - 1)
#: Å; the longest cutoff a term may have (neighbour lists beyond it would hold most of any large system)
MAX_CUTOFF = 100.0
CUTOFF = Bounds(0, MAX_CUTOFF, open_low=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """The data of YAML ``text``; ConfigError naming ``where`` and the line for bad YAML or a key given twice."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f": line {mark.line + 1}" if mark is not None else ""
        problem = str(getattr(error, "problem", None) or error).strip().splitlines() or ["unreadable"]
        raise ConfigError(f"{where}{line} is not valid YAML ({problem[0]})") from None


def load_yaml(path: str | Path) -> Any:
    """The data of the YAML file ``path`` (:func:`parse_yaml`); ConfigError when it cannot be read."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot be read ({error.__class__.__name__}: {error})") from None
    return parse_yaml(text, str(path))


def closest(name: str, options: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for the closest option, or '' when none is close."""
    match = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits the type hint (unions, optionals, dict/list of simple types)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)) or _float_text(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint) or (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, key_hint) and _matches(v, value_hint) for k, v in value.items()
        )
    if origin in (list, tuple):
        args = typing.get_args(hint)
        item_hint = args[0] if args else Any
        return isinstance(value, (list, tuple)) and all(_matches(v, item_hint) for v in value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def bounds_of(hint: Any) -> tuple[Any, Bounds | None]:
    """The type of a field and its Bounds, when it is ``Annotated[type, Bounds(...)]``."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *extras = typing.get_args(hint)
        return base, next((e for e in extras if isinstance(e, Bounds)), None)
    return hint, None


def check(name: str, value: Any, bounds: Bounds | None = None) -> None:
    """ConfigError '<name> must be ..., got X' unless ``value`` is finite and within ``bounds`` (for configs
    built in Python, which do not pass through :func:`from_dict`)."""
    problem = _problem(value, bounds)
    if problem:
        raise ConfigError(f"{name}{problem}")


def _problem(value: Any, bounds: Bounds | None) -> str | None:
    """' must be ...' (with where inside a list or mapping) when ``value`` is not finite or out of ``bounds``."""
    return non_finite(value) or (_first(value, lambda x: f" {bounds.problem(x)}" if bounds.problem(x) else None)
                                 if bounds else None)


def non_finite(value: Any) -> str | None:
    """' must be a finite number, got X' for a NaN or infinite number; inside lists and mappings
    '[k].key must be ...', naming where; None when every number is finite."""
    return _first(value, lambda x: f" must be a finite number, got {x!r}"
                  if isinstance(x, float) and not math.isfinite(x) else None)


def _first(value: Any, problem) -> str | None:
    """The first problem ``problem(number)`` finds in ``value`` or inside its lists and mappings, prefixed
    with where (``[k]``, ``.key``); None when there is none."""
    if isinstance(value, Mapping):
        items = ((f".{key}", item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"[{k}]", item) for k, item in enumerate(value))
    else:
        return problem(value)
    return next((where + found for where, item in items if (found := _first(item, problem))), None)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _float_text(value: Any) -> bool:
    """YAML 1.1 reads 1e-3 (no dot) as a string: accept such text where a float is expected."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _convert(value: Any, hint: Any) -> Any:
    """Normalise accepted values: ints and numeric text to floats where a float is expected, tuples to lists."""
    if hint is float and (isinstance(value, int) or _float_text(value)):
        return float(value)
    args = typing.get_args(hint)
    if _float_text(value) and float in args and str not in args:
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; ``where`` prefixes key names in errors (e.g. 'model').

    Fields whose type is itself a dataclass are built recursively from nested mappings.
    """
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    data = dict(data or {})
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise ConfigError(f"{_join(where, key)}: unknown key{closest(key, names)}; valid keys: {', '.join(names)}")
    kwargs = {}
    for key, value in data.items():
        hint, bounds = bounds_of(hints[key])
        if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{_join(where, key)}: expected a mapping of {hint.__name__} keys, got {value!r}")
            kwargs[key] = from_dict(hint, value, _join(where, key))
            continue
        if not _matches(value, hint):
            raise ConfigError(f"{_join(where, key)}: expected {_type_name(hint)}, got {value!r}")
        value = _convert(value, hint)
        problem = _problem(value, bounds)
        if problem:
            raise ConfigError(f"{_join(where, key)}{problem}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}" if where else str(error)) from None
