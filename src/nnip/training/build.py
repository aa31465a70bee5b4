"""The potential of a run's ``model`` section, with seeded weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.registry import build_term
from nnip.training.config import ModelConfig

__all__ = ["build_model"]


def build_model(model: ModelConfig, elements: Sequence[int], seed: int) -> Potential:
    """The potential of the ``model`` section for ``elements`` (atomic numbers), weights seeded by ``seed``."""
    torch.manual_seed(seed)
    terms = []
    for k, term in enumerate(model.terms):
        options = {key: value for key, value in term.items() if key != "name"}
        where = "model" if len(model.terms) == 1 else f"model.terms[{k}]"
        terms.append(build_term(term["name"], options, elements, where=where))
    return Potential(terms, elements)
