"""Checks shared by the network configs: one wording for the same mistake everywhere."""

from __future__ import annotations

from typing import Any

from nnip.errors import ConfigError
from nnip.nn.mlp import ACTIVATIONS
from nnip.strict import CUTOFF, check

__all__ = ["check_network_config"]


def check_network_config(config: Any, sizes: tuple[str, ...], activation: str | None = "activation") -> None:
    """Raise ConfigError unless ``config.cutoff`` is within CUTOFF (Å), every field in ``sizes`` >= 1 and the activation is known."""
    check("cutoff", config.cutoff, CUTOFF)
    for key in sizes:
        if getattr(config, key) < 1:
            raise ConfigError(f"{key} must be >= 1, got {getattr(config, key)}")
    if activation is not None and getattr(config, activation) not in ACTIVATIONS:
        raise ConfigError(f"{activation}: expected one of {', '.join(ACTIVATIONS)}, got {getattr(config, activation)!r}")
