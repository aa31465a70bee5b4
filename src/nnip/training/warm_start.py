"""Warm start: a new potential takes the weights of an earlier model file (``model.init``)."""

from __future__ import annotations

from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential

__all__ = ["start_from"]


def start_from(potential: Potential, path: str, member: int, mean: bool = False) -> None:
    """Copy weights and reference energies from the model file ``path``: member ``member`` of an ensemble, or with
    ``mean`` the members' mean (a saved posterior's draws are antithetic pairs around the fitted model, so their
    mean is that model, where any one member is a random draw)."""
    from nnip.potentials.contract.ensemble import Ensemble
    from nnip.potentials.files.serialization import load

    source = load(path)
    members = source.members if isinstance(source, Ensemble) else [source]
    first = members[0] if mean else members[member % len(members)]
    if first.spec() != potential.spec():
        raise ConfigError(f"model.init: {path} holds a different model ({first.spec()['terms']} for elements "
                          f"{first.spec()['elements']}); it must match model.terms and the elements")
    state = first.state_dict()
    if mean and len(members) > 1:
        states = [m.state_dict() for m in members]
        state = {k: sum(s[k] for s in states) / len(states) if v.is_floating_point() else v for k, v in state.items()}
    potential.load_state_dict(state)
