"""Candidate samplers of the active-learning loop and its settings (the ``active`` config section).

Every sampler starts from ``seeds`` structures drawn from the current training set and
returns unlabelled candidates whose ``info`` holds ``sampler``, ``seed_index`` (position in
the training set), ``objective`` (the sampler's own figure: log A for attacks, the largest
per-atom force std for MD, the force spread otherwise) and ``displacement`` (RMSD from the
seed, Å):

- ``adversarial``: :class:`~nnip.active.adversarial.Attack` on all seeds as one batch;
- ``md``: Langevin MD with the ensemble at ``temperature`` for ``md_steps``; every
  ``md_interval``-th frame is a candidate;
- ``normal_modes``: relax the seed with the ensemble mean, Hessian by autograd, then
  ``samples_per_seed`` Boltzmann-amplitude displacements at ``temperature``;
- ``random``: ``samples_per_seed`` Gaussian rattles of ``amplitude`` Å.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read as ase_read

from nnip.active.adversarial import Attack, AttackSettings
from nnip.active.sampling import normal_mode_samples, potential_hessian, rattled
from nnip.active.selection import rmsd
from nnip.calculator import Calculator
from nnip.errors import ConfigError
from nnip.progress import stage_bar
from nnip.training.evaluate import evaluate
from nnip.strict import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Bounds

__all__ = ["SAMPLERS", "SelectionConfig", "ActiveSettings", "sample_candidates", "spreads"]

SAMPLERS = ("adversarial", "md", "normal_modes", "random")


@dataclass
class SelectionConfig:
    """percentile: of the training set's force spread a candidate must exceed. rmsd: Å,
    least distance from training data and from each other. max_new: labels per generation.
    min_distance: least interatomic distance as a fraction of the sum of covalent radii."""

    percentile: Annotated[float, Bounds(0, 100)] = 80.0
    rmsd: Annotated[float, NON_NEGATIVE] = 0.05
    max_new: Annotated[int, AT_LEAST_ONE] = 10
    min_distance: Annotated[float, NON_NEGATIVE] = 0.5


@dataclass
class ActiveSettings:
    """The ``active`` section of an ``nnip active`` config.

    Args:
        generations: rounds of sample -> select -> label -> retrain.
        oracle: reference method, as ``nnip label --oracle`` takes it (gfn2, gfn1, emt, model:FILE, ...).
        sampler: "adversarial", "md", "normal_modes" or "random".
        seeds: training structures the sampler starts from per generation.
        samples_per_seed: candidates per seed (normal_modes, random).
        select: which candidates are labelled (section below).
        warm_start: start each generation's members from the previous generation's.
        warm_epochs: epochs of a warm-started retraining; default the training's max_epochs.
        new_weight: loss weight of labelled structures relative to the initial data.
        rigid_invariant: project rigid motions out of attacks and align before RMSD; false
            for models that are not invariant (the coordinate MLP).
        workers: oracle processes run in parallel.
        temperature: K, for the md and normal_modes samplers.
        md_steps: steps of each md run. md_interval: steps between md candidates.
        md_timestep: fs. amplitude: Å, rattle of the random sampler.
        attack: the adversarial attack (section below).
    """

    generations: Annotated[int, AT_LEAST_ONE] = 3
    oracle: str = "gfn2"
    sampler: str = "adversarial"
    seeds: Annotated[int, AT_LEAST_ONE] = 10
    samples_per_seed: Annotated[int, AT_LEAST_ONE] = 1
    select: SelectionConfig = field(default_factory=SelectionConfig)
    warm_start: bool = False
    warm_epochs: Annotated[int | None, AT_LEAST_ONE] = None
    new_weight: Annotated[float, POSITIVE] = 1.0
    rigid_invariant: bool = True
    workers: Annotated[int, AT_LEAST_ONE] = 1
    temperature: Annotated[float, NON_NEGATIVE] = 300.0
    md_steps: Annotated[int, AT_LEAST_ONE] = 200
    md_interval: Annotated[int, AT_LEAST_ONE] = 10
    md_timestep: Annotated[float, POSITIVE] = 0.5
    amplitude: Annotated[float, Bounds(0, 10)] = 0.05
    attack: AttackSettings = field(default_factory=AttackSettings)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler: expected one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.warm_epochs is not None and self.warm_epochs < 1:
            raise ConfigError(f"warm_epochs: expected at least 1, got {self.warm_epochs}")
        if min(self.generations, self.seeds, self.samples_per_seed, self.workers, self.md_interval) < 1:
            raise ConfigError("generations, seeds, samples_per_seed, workers and md_interval must be >= 1")
        if self.select.max_new < 1 or not 0 <= self.select.percentile <= 100 or self.new_weight <= 0:
            raise ConfigError("select.max_new >= 1, 0 <= select.percentile <= 100 and new_weight > 0 are needed")
        self.attack.project_rigid = self.rigid_invariant


def spreads(ensemble, frames: Sequence[Atoms]) -> np.ndarray:
    """Per-structure force spread sigma_F (eV/Å): root of the mean force-component variance."""
    if not frames:
        return np.zeros(0)
    _, predictions = evaluate(ensemble, frames, 64)
    variance = np.clip(predictions.extra["forces_var"], 0, None).mean(axis=1)
    starts = np.concatenate([[0], np.cumsum(predictions.n_atoms)[:-1]])
    return np.sqrt(np.add.reduceat(variance, starts) / predictions.n_atoms)


def sample_candidates(ensemble, train: Sequence[Atoms], settings: ActiveSettings, seed: int,
                      label: str | None = None) -> list[Atoms]:
    """Candidates from ``settings.seeds`` training structures drawn with ``seed`` (see the module
    docstring); with ``label``, a progress bar (attack steps or seeds) on a terminal."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(train), size=min(settings.seeds, len(train)), replace=False)
    seeds = []
    for k in picks:
        atoms = train[int(k)].copy()
        atoms.calc = None
        atoms.info = {"seed_index": int(k), **{key: atoms.info[key] for key in ("charge",) if key in atoms.info}}
        seeds.append(atoms)
    method = settings.sampler
    if method == "adversarial":
        candidates = _attacked(ensemble, train, seeds, settings, seed, label)
    elif method == "md":
        candidates = _md_frames(ensemble, seeds, settings, seed, label)
    elif method == "normal_modes":
        candidates = _normal_modes(ensemble, seeds, settings, seed, label)
    else:
        candidates = [c for k, s in enumerate(seeds) for c in rattled(s, settings.samples_per_seed,
                                                                      settings.amplitude, seed + k)]
    for candidate in candidates:
        origin = seeds[[s.info["seed_index"] for s in seeds].index(candidate.info["seed_index"])]
        candidate.info.update(sampler=method, displacement=rmsd(candidate, origin, settings.rigid_invariant))
    if method in ("normal_modes", "random") and candidates:
        for candidate, sigma in zip(candidates, spreads(ensemble, candidates)):
            candidate.info["objective"] = float(sigma)
    return candidates


def _attacked(ensemble, train, seeds, settings: ActiveSettings, seed: int, label: str | None) -> list[Atoms]:
    energies = [a.get_potential_energy() for a in train]
    attack_settings = AttackSettings(**{**settings.attack.__dict__, "seed": settings.attack.seed + seed})
    results = Attack(ensemble, energies, [len(a) for a in train], attack_settings).run(seeds, label)
    out = []
    for result in results:
        atoms = result.atoms
        atoms.info["objective"] = result.log_objective
        out.append(atoms)
    return out


def _md_frames(ensemble, seeds, settings: ActiveSettings, seed: int, label: str | None) -> list[Atoms]:
    from nnip.md.run import MDSettings, run_md

    out, calculator = [], Calculator(ensemble)
    with tempfile.TemporaryDirectory() as folder, stage_bar(len(seeds), label, "seed") as bar:
        for k, atoms in enumerate(seeds):
            md = MDSettings(steps=settings.md_steps, timestep=settings.md_timestep, temperature=settings.temperature,
                            thermostat="langevin", interval=settings.md_interval, seed=seed + k)
            path = Path(folder) / f"md_{k}.extxyz"
            run_md(atoms, calculator, md, path, progress=False)
            for frame in ase_read(path, index=":")[1:]:  # frame 0 is the seed; unchecked: select() rejects collapses
                candidate = frame.copy()
                candidate.calc = None
                candidate.info = {"seed_index": atoms.info["seed_index"],
                                  "objective": float(frame.info.get("max_force_std", np.nan))}
                out.append(candidate)
            bar.update(1)
    return out


def _normal_modes(ensemble, seeds, settings: ActiveSettings, seed: int, label: str | None) -> list[Atoms]:
    out = []
    with stage_bar(len(seeds), label, "seed") as bar:
        for k, atoms in enumerate(seeds):
            out.extend(_seed_modes(ensemble, atoms, settings, seed + k))
            bar.update(1)
    return out


def _seed_modes(ensemble, atoms: Atoms, settings: ActiveSettings, seed: int) -> list[Atoms]:
    """Normal-mode samples around ``atoms`` relaxed with the ensemble; none when it is not a minimum."""
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = Calculator(ensemble, dtype="float64")
    BFGS(relaxed, logfile=None).run(fmax=0.01, steps=200)
    relaxed.calc = None
    try:
        samples = normal_mode_samples(relaxed, potential_hessian(relaxed, ensemble), settings.temperature,
                                      settings.samples_per_seed, seed)
    except ValueError:  # not a minimum of the ensemble: no modes to sample from this seed
        return []
    for sample in samples:
        sample.info = {"seed_index": atoms.info["seed_index"]}
    return samples
