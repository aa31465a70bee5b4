"""Strict construction of configuration dataclasses from plain data (YAML, saved models).

Unknown keys are errors naming the key and the closest valid one; values of the wrong
type are errors naming the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from nnip.errors import ConfigError

__all__ = ["from_dict", "closest"]

T = TypeVar("T")


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
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in data:
        if key not in names:
            raise ConfigError(f"{_join(where, key)}: unknown key{closest(key, names)}; valid keys: {', '.join(names)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint) and not isinstance(value, hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{_join(where, key)}: expected a mapping of {hint.__name__} keys, got {value!r}")
            kwargs[key] = from_dict(hint, value, _join(where, key))
            continue
        if not _matches(value, hint):
            raise ConfigError(f"{_join(where, key)}: expected {_type_name(hint)}, got {value!r}")
        kwargs[key] = _convert(value, hint)
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}" if where else str(error)) from None
