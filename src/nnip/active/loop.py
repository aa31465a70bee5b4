"""The active-learning loop: train an ensemble, sample candidates, select, label, repeat.

Generation g (folder ``gen_<g>`` under the run's output):

1. train: the ensemble of the config on the initial data plus every structure labelled in
   earlier generations (new ones weighted ``new_weight``), from scratch or, with
   ``warm_start``, from generation g-1's members;
2. evaluate: errors and ensemble spread on the fixed test set (``data.test``), one row of
   ``active.csv``;
3. sample: candidates from ``seeds`` training structures with the ``sampler``
   (:mod:`nnip.active.samplers`);
4. select: :func:`nnip.active.selection.select`;
5. label: the oracle labels each chosen candidate; every label (or failure, with its reason)
   is committed to ``store.db`` (:class:`~nnip.active.store.Store`) as soon as it returns.

After ``generations`` rounds a last ensemble is trained and evaluated. Every phase writes
its result atomically and ``state.json`` records the generation and whether its ensemble
is trained, so a killed run resumed with ``--resume`` continues in the same generation: a
trained ensemble is not trained again, an interrupted training resumes from its
checkpoint, and labels already in the store are never requested again. The generation's
training file holds eV and the standard label names; a separate ``data.val`` file is not
used (validation is split from the growing training set).
"""

from __future__ import annotations

import copy
import csv
import json
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read as ase_read

from nnip.active.samplers import ActiveSettings, sample_candidates, spreads
from nnip.active.selection import select
from nnip.active.store import Store
from nnip.data.io import read, write
from nnip.errors import ConfigError, OracleError
from nnip.oracles import get_oracle
from nnip.oracles.base import CalculatorOracle
from nnip.plots import active_learning_plot
from nnip.progress import stage_bar
from nnip.potentials.files.serialization import load
from nnip.runlock import contents, remove, run_lock
from nnip.strict import from_dict, load_yaml
from nnip.training.config import RunConfig, parse_config, read_config_data
from nnip.training.evaluate import atom_force_std, evaluate
from nnip.training.run import run_training
from nnip.training.splits import read_frames

__all__ = ["run_active", "load_active_config", "LOG_COLUMNS"]

LOG_COLUMNS = ("generation", "n_train", "labels", "oracle_calls", "failed", "test_energy_mae", "test_forces_mae",
               "test_forces_std_mean", "test_forces_std_max", "candidates", "chosen", "threshold",
               "rejected_contact", "rejected_uncertainty", "rejected_known", "rejected_duplicate", "rejected_limit", "sample_spread")


class _Run:
    """One active-learning run folder: config, store, state and the per-generation phases."""

    def __init__(self, config: RunConfig, settings: ActiveSettings, resolved: dict[str, Any],
                 oracle: CalculatorOracle | None = None):
        self.config, self.settings, self.resolved = config, settings, resolved
        self.directory = Path(config.output)
        self.store = Store(self.directory / "store.db")
        self.oracle = oracle if oracle is not None else get_oracle(settings.oracle)
        self._frames: dict[int, list[Atoms]] = {}
        self._test = read_frames(config.data.test, config.data) if config.data.test else None

    # -- bookkeeping ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        path = self.directory / "state.json"
        return json.loads(path.read_text()) if path.is_file() else {"generation": 0, "phase": None}

    def finish(self, generation: int, phase: str) -> None:
        path = self.directory / "state.json"
        path.with_suffix(".tmp").write_text(json.dumps({"generation": generation, "phase": phase}))
        path.with_suffix(".tmp").replace(path)

    def folder(self, generation: int) -> Path:
        path = self.directory / f"gen_{generation:02d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add_initial_data(self) -> None:
        """The initial training structures enter the store once (generation -1, in one transaction)."""
        if self.store.count(sampler="initial") > 0:
            return
        frames = read_frames(self.config.data.train, self.config.data)
        with self.store.db:
            for k, atoms in enumerate(frames):
                self.store.add(atoms, -1, "initial", seed_index=k)

    def training_frames(self, generation: int) -> list[Atoms]:
        """Initial data plus the labels of earlier generations (read from the store once per generation)."""
        if generation not in self._frames:
            frames = self.store.labelled(before_generation=generation)
            for atoms in frames:
                if atoms.info["sampler"] != "initial":
                    atoms.info[self.config.data.weight_key] = self.settings.new_weight
            self._frames = {generation: frames}
        return self._frames[generation]

    # -- phases --------------------------------------------------------------------------------
    def train(self, generation: int):
        folder = self.folder(generation)
        write(folder / "train.extxyz", self.training_frames(generation))
        resolved = copy.deepcopy({k: v for k, v in self.resolved.items() if k != "active"})
        data = resolved["data"]  # the generation's file holds eV and the standard label names
        data.update(train=str(folder / "train.extxyz"), val=None, test=None, energy_unit="eV", energy_key="energy",
                    forces_key="forces", stress_key="stress")  # test: evaluated once by evaluate()
        resolved["output"] = str(folder / "model")
        training = resolved.setdefault("training", {})
        training.update(progress=False, plots=False)  # active.png summarises the generations
        training.setdefault("checkpoint_seconds", 30.0)
        if self.settings.warm_start and generation > 0:
            resolved["model"]["init"] = str(self.directory / f"gen_{generation - 1:02d}" / "model" / "model.pt")
            if self.settings.warm_epochs is not None:
                training["max_epochs"] = self.settings.warm_epochs
        config = parse_config(resolved)
        resume = (folder / "model" / "config.yaml").is_file()
        run_training(config, resolved, resume=resume, overwrite=not resume,
                     label=f"generation {generation}/{self.settings.generations}")
        return load(folder / "model" / "model.pt")

    def evaluate(self, generation: int, ensemble, row: dict[str, Any]) -> None:
        earlier = [r for r in self.store.rows() if 0 <= r.generation < generation]
        row.update(generation=generation, n_train=len(self.training_frames(generation)),
                   labels=sum(r.status == "labelled" for r in earlier), failed=sum(r.status == "failed" for r in earlier))
        row["oracle_calls"] = row["labels"] + row["failed"]
        if self._test is not None:
            metrics, predictions = evaluate(ensemble, self._test, self.config.training.eval_batch_size)
            std = atom_force_std(predictions)
            row.update(test_energy_mae=metrics["energy_mae"], test_forces_mae=metrics["forces_mae"],
                       test_forces_std_mean=float(std.mean()), test_forces_std_max=float(std.max()))

    def sample(self, generation: int, ensemble) -> list[Atoms]:
        folder = self.folder(generation)
        path = folder / "candidates.extxyz"
        if not path.is_file():
            frames = self.training_frames(generation)
            write(path, sample_candidates(ensemble, frames, self.settings, self.config.seed + generation,
                                          label=f"generation {generation}/{self.settings.generations} sampling"))
        # unchecked read: a collapsed candidate is select()'s to reject, not an error; empty file: none this time
        return ase_read(path, index=":") if path.stat().st_size else []

    def select(self, generation: int, ensemble, candidates: list[Atoms], row: dict[str, Any]) -> list[int]:
        path = self.folder(generation) / "selection.json"
        if not path.is_file():
            train = self.training_frames(generation)
            chosen = select(candidates, spreads(ensemble, candidates), train, spreads(ensemble, train),
                            self.settings.select.percentile, self.settings.select.rmsd, self.settings.select.max_new,
                            align=self.settings.rigid_invariant, min_distance=self.settings.select.min_distance)
            result = {"chosen": chosen.chosen, "threshold": chosen.threshold, "rejected": chosen.rejected}
            path.with_suffix(".tmp").write_text(json.dumps(result))
            path.with_suffix(".tmp").replace(path)
        result = json.loads(path.read_text())
        row.update(candidates=len(candidates), chosen=len(result["chosen"]), threshold=result["threshold"],
                   sample_spread=float(np.mean([a.info.get("displacement", np.nan) for a in candidates])),
                   **{f"rejected_{k}": v / max(len(candidates), 1) for k, v in result["rejected"].items()})
        return result["chosen"]

    def label(self, generation: int, candidates: list[Atoms], chosen: list[int], executor: Executor | None) -> None:
        todo = [k for k in chosen if not self.store.has(generation, k)]
        for k in todo:  # an oracle failure then names the frame of candidates.extxyz
            candidates[k].info["source_index"] = k
        label = f"generation {generation}/{self.settings.generations} labelling ({self.oracle.name})"
        with stage_bar(len(todo), label, "frame") as bar:
            crashed = self._label_all(generation, candidates, todo, executor, bar)
        if crashed is not None:
            raise OracleError(f"labelling stopped ({type(crashed).__name__}: {crashed}); finished labels are "
                              "in the store, --resume requests the rest")

    def _label_all(self, generation: int, candidates: list[Atoms], todo: list[int], executor: Executor | None,
                   bar) -> Exception | None:
        """Label and store the ``todo`` candidates, each as it arrives; the first worker crash, if any."""
        if executor is None:
            for k in todo:
                self._commit(generation, k, candidates[k], *_label(self.oracle, candidates[k]))
                bar.update(1)
            return None
        futures = {executor.submit(_label, self.oracle, candidates[k]): k for k in todo}
        crashed = None
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as error:  # a worker died: keep every result that did arrive, then stop
                crashed = crashed or error
                continue
            self._commit(generation, futures[future], candidates[futures[future]], *result)
            bar.update(1)
        return crashed

    def _commit(self, generation: int, k: int, candidate: Atoms, labelled: Atoms | None, reason: str,
                seconds: float) -> None:
        info = candidate.info
        self.store.add(labelled if labelled is not None else candidate, generation, info.get("sampler", ""),
                       candidate=k, seed_index=int(info.get("seed_index", -1)),
                       objective=float(info.get("objective", np.nan)), oracle=self.oracle.name, wall_time=seconds,
                       status="labelled" if labelled is not None else "failed", reason=reason)


def _label(oracle: CalculatorOracle, atoms: Atoms) -> tuple[Atoms | None, str, float]:
    """(labelled copy or None, failure reason, seconds) for one candidate."""
    started = time.perf_counter()
    try:
        return oracle.label([atoms])[0], "", time.perf_counter() - started
    except OracleError as error:
        return None, str(error), time.perf_counter() - started


def _check_folder(directory: Path, resolved: dict[str, Any], resume: bool, overwrite: bool) -> None:
    saved = directory / "active.yaml"
    if resume:
        if not saved.is_file():
            raise ConfigError(f"{directory}: no active-learning run to resume (no active.yaml)")
        if json.loads(json.dumps(_yaml_load(saved))) != json.loads(json.dumps(resolved)):
            raise ConfigError(f"{directory}: the config differs from the run's active.yaml; resume with the same one")
    elif earlier := contents(directory):
        if not overwrite:
            raise ConfigError(f"{directory}: holds an earlier run; use --resume to continue it or --overwrite")
        remove(earlier)


def load_active_config(path: str | Path, overrides: Sequence[str] = ()
                       ) -> tuple[RunConfig, ActiveSettings, dict[str, Any]]:
    """A training config (data, model, training, ensemble, seed, output) plus its ``active`` section."""
    data = read_config_data(path, overrides)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    section = data.get("active") or {}
    config = parse_config({k: v for k, v in data.items() if k != "active"}, where=str(path))
    if config.ensemble < 2 and not config.training.posterior_samples:
        raise ConfigError(f"{path}: ensemble: active learning needs an uncertainty: an ensemble of at least 2 "
                          "members, or training.posterior_samples (a linear model's posterior, a network's last layer)")
    settings = from_dict(ActiveSettings, section, "active")
    return config, settings, data


def _yaml_load(path: Path):
    return load_yaml(path)


def run_active(config: RunConfig, settings: ActiveSettings, resolved: dict[str, Any], resume: bool = False,
               overwrite: bool = False, executor: Executor | None = None,
               oracle: CalculatorOracle | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the loop; returns the rows of ``active.csv`` (one per trained generation).

    ``oracle`` replaces the one named by ``settings.oracle`` (which then only labels the run's
    records), e.g. ``CalculatorOracle("my-dft", MyCalculator)``; with ``workers > 1`` it must pickle.
    """
    with run_lock(config.output) as directory:  # one writer per run folder
        _check_folder(directory, resolved, resume, overwrite)
        return _loop(directory, config, settings, resolved, resume, executor, oracle)


def _loop(directory: Path, config: RunConfig, settings: ActiveSettings, resolved: dict[str, Any], resume: bool,
          executor: Executor | None, oracle: CalculatorOracle | None) -> list[dict[str, Any]]:
    """The generations of :func:`run_active` in ``directory``, checked and locked."""
    import yaml

    if not resume:
        (directory / "active.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    run = _Run(config, settings, resolved, oracle)
    run.add_initial_data()
    rows = _read_log(directory / "active.csv")
    pool = None
    if executor is None and settings.workers > 1:
        executor = pool = ProcessPoolExecutor(max_workers=settings.workers)
    try:
        state = run.state()
        for generation in range(state["generation"], settings.generations + 1):
            row: dict[str, Any] = {}
            if generation == state["generation"] and state["phase"] == "trained":  # never train a model twice
                ensemble = load(run.folder(generation) / "model" / "model.pt")
            else:
                ensemble = run.train(generation)
                run.finish(generation, "trained")
            run.evaluate(generation, ensemble, row)
            if generation < settings.generations:
                candidates = run.sample(generation, ensemble)
                chosen = run.select(generation, ensemble, candidates, row)
                run.label(generation, candidates, chosen, executor)
            rows = [r for r in rows if int(r["generation"]) != generation] + [row]
            _write_log(directory / "active.csv", rows)
            active_learning_plot(rows, directory / "active.png")
            run.finish(generation + 1, None)
            print(_summary(row), flush=True)
    finally:
        if pool is not None:
            pool.shutdown()
    return rows


def _summary(row: dict[str, Any]) -> str:
    mae = row.get("test_forces_mae")
    test = f", test force MAE {1000 * mae:.1f} meV/Å" if mae is not None else ""
    picked = f", chose {row['chosen']} of {row['candidates']} candidates" if "chosen" in row else ""
    return f"generation {row['generation']}: {row['n_train']} training structures{test}{picked}"


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: v for k, v in r.items() if v != ""} for r in csv.DictReader(handle)]


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    temporary = path.with_suffix(".tmp")
    with open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in LOG_COLUMNS} for r in rows)
    temporary.replace(path)
