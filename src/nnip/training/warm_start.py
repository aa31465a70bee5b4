"""Warm start: a new potential takes the weights of an earlier model file (``model.init``)."""

from __future__ import annotations

import torch

from nnip.errors import ConfigError
from nnip.potentials.contract.base import Potential

__all__ = ["start_from"]


def _antithetic(states: list[dict]) -> bool:
    """Whether the members' states come in pairs around their common mean (a saved posterior's draws,
    nnip.uncertainty.posterior), as opposed to independently trained members. Two members always do: at least
    two pairs are needed to tell."""
    if len(states) < 4 or len(states) % 2:
        return False
    for key, value in states[0].items():
        if value.is_floating_point():
            mean = sum(s[key] for s in states) / len(states)
            if any(not torch.allclose(states[k][key] + states[k + 1][key], 2 * mean, rtol=1e-5, atol=1e-7)
                   for k in range(0, len(states), 2)):
                return False
    return True


def start_from(potential: Potential, path: str, member: int, mean: bool | None = None) -> None:
    """Copy weights and reference energies from the model file ``path``: member ``member`` of an ensemble, or with
    ``mean`` the members' mean. ``mean`` None: the mean when the file holds a posterior's antithetic draws (their
    mean is the fitted model, where any one member is a random draw), else the member."""
    from nnip.potentials.contract.ensemble import Ensemble
    from nnip.potentials.files.serialization import load

    source = load(path)
    members = source.members if isinstance(source, Ensemble) else [source]
    states = [m.state_dict() for m in members]
    if mean is None:
        mean = _antithetic(states)
    first = members[0] if mean else members[member % len(members)]
    if first.spec() != potential.spec():
        raise ConfigError(f"model.init: {path} holds a different model ({first.spec()['terms']} for elements "
                          f"{first.spec()['elements']}); it must match model.terms and the elements")
    state = first.state_dict()
    if mean and len(members) > 1:
        state = {k: sum(s[k] for s in states) / len(states) if v.is_floating_point() else v for k, v in state.items()}
    potential.load_state_dict(state)
