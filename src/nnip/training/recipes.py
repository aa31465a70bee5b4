"""Default training recipes: per model, the training settings ``nnip train`` uses for every key a config leaves out.

A config names a model and data; the rest of its ``training`` section may be empty. The recipe of the model
(the first term of ``model.terms`` that has one) fills in the keys the config does not give, before the config
is checked, so the resolved ``config.yaml`` of a run shows every value used. Keys the config gives always win;
``loss`` is filled key by key. Models without a recipe (classical terms) get TrainingConfig's own defaults.

The networks' recipes anneal the learning rate by a cosine over ``max_time`` when it is set (otherwise over
``max_epochs``; with ``max_time`` and no ``max_epochs`` the time budget alone ends the run), clip the gradient
norm and average the weights (EMA); they were chosen by benchmarks/recipes.py (docs/benchmarks.md, "Default
training recipes"). Linear ACE and the sparse GP are fitted in closed form.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["BUDGET_EPOCHS", "RECIPES", "recipe_for", "with_recipe"]

#: ``max_epochs`` of a network's recipe when the config gives ``max_time`` but no ``max_epochs``: so many that
#: the time budget ends the run (and the cosine anneals over it), not TrainingConfig's default of 100 epochs
BUDGET_EPOCHS = 1_000_000

#: the networks' shared recipe: Adam from 5e-3 with a cosine to 1e-5 over the budget, gradient norm clipped
#: at 10, EMA 0.99, 8 structures per step, forces weighted 10 to the per-atom energy's 1
_NETWORK = {"lr": 5e-3, "schedule": "cosine", "min_lr": 1e-5, "ema_decay": 0.99, "clip_grad_norm": 10.0,
            "batch_size": 8, "loss": {"energy_weight": 1.0, "forces_weight": 10.0}}

#: model name -> training keys (a partial ``training`` section). The equivariant model weights the per-atom
#: energy 10 (to forces 10): against 1, a 30-minute fit of mlearn Si keeps a far smaller energy error; against
#: 100, the forces of 3BPA at 600-1200 K come out better (docs/benchmarks.md, "The equivariant model's energy weight")
RECIPES: dict[str, dict[str, Any]] = {
    "equivariant": {**_NETWORK, "loss": {"energy_weight": 10.0, "forces_weight": 10.0}},
    "painn": _NETWORK,
    "schnet": _NETWORK,
    "behler_parrinello": _NETWORK,
    "linear_ace": {"optimizer": "least_squares"},
    "sparse_gp": {"optimizer": "least_squares"},
}


def recipe_for(model: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe of a ``model`` section (plain data): that of its ``name``, or of the first of its ``terms``
    that has one; {} when none has."""
    names = [model.get("name")] + [t.get("name") for t in model.get("terms") or [] if isinstance(t, Mapping)]
    return copy.deepcopy(next((RECIPES[n] for n in names if isinstance(n, str) and n in RECIPES), {}))


#: optimizers a recipe applies to, by the recipe's own optimizer (Adam when it names none)
_FAMILIES = {"adam": ("adam", "adamw"), "least_squares": ("least_squares",)}


def with_recipe(training: Any, model: Mapping[str, Any]) -> Any:
    """The ``training`` section (plain data) completed by the model's recipe: given keys win, ``loss`` key by key;
    a network's run with ``max_time`` and no ``max_epochs`` gets BUDGET_EPOCHS.
    The recipe is not applied when the config asks for another kind of fit (``optimizer`` lbfgs, or adam for a
    closed-form model), nor to a section that is not a mapping (the config check reports it)."""
    if training is not None and not isinstance(training, Mapping):
        return training
    given = dict(training or {})
    recipe = recipe_for(model)
    if given.get("optimizer", recipe.get("optimizer", "adam")) not in _FAMILIES[recipe.get("optimizer", "adam")]:
        return given
    loss = recipe.pop("loss", {})
    if recipe.get("optimizer", "adam") == "adam" and given.get("max_time") is not None:
        recipe["max_epochs"] = BUDGET_EPOCHS
    merged = {**recipe, **given}
    if loss and isinstance(given.get("loss", {}), Mapping):
        merged["loss"] = {**loss, **given.get("loss", {})}
    return merged
