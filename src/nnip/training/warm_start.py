"""Warm start: a new potential takes the weights of an earlier model file (``model.init``)."""

from __future__ import annotations

from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential

__all__ = ["start_from"]


def start_from(potential: Potential, path: str, member: int) -> None:
    """Copy weights and reference energies from the model file ``path`` (member ``member`` of an ensemble)."""
    from nnip.potentials.contract.ensemble import Ensemble
    from nnip.potentials.files.serialization import load

    source = load(path)
    if isinstance(source, Ensemble):
        source = source.members[member % len(source)]
    if source.spec() != potential.spec():
        raise ConfigError(f"model.init: {path} holds a different model ({source.spec()['terms']} for elements "
                          f"{source.spec()['elements']}); it must match model.terms and the elements")
    potential.load_state_dict(source.state_dict())
