"""The steps of ``nnip demo``, each a function of the output folder returning plain data for report.json.

Data: GFN2-xTB ab initio MD of ethanol shipped with nnip (300 K for training, 1000 K as a
harder test set), so the GFN2-xTB oracle of the active-learning step labels with the same
method the model was trained on. Energies eV, forces eV/Å, spreads eV/Å.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase.io import read as ase_read

from nnip.active.loop import run_active
from nnip.active.samplers import ActiveSettings, spreads
from nnip.active.store import Store
from nnip.calculator import Calculator
from nnip.data import bundled
from nnip.data.io import read, write
from nnip.data.summary import summarize
from nnip.demo.figures import attack_plot, distance_plot, md_monitor_plot
from nnip.md.analysis import pair_distances, read_md_log, temperature_statistics
from nnip.md.run import MDSettings, run_md
from nnip.plots import learning_curves
from nnip.potentials.files.serialization import load
from nnip.strict import from_dict
from nnip.training.checkpoint import read_metrics_csv
from nnip.training.config import parse_config
from nnip.training.evaluate import atom_force_std, evaluate, to_json, write_parity_plots

__all__ = ["DemoSettings", "QUICK", "FULL", "inspect_data", "active_learning", "evaluate_ensembles", "attack_summary",
           "molecular_dynamics"]

TRAIN_FILE, TEST_FILE = "ethanol_gfn2_300K.extxyz", "ethanol_gfn2_1000K.extxyz"


@dataclass(frozen=True)
class DemoSettings:
    """Budgets of the demo: ensemble of ``members`` SchNet models (``features`` x ``interactions``),
    ``epochs`` for generation 0 and ``warm_epochs`` for each warm-started retraining,
    ``generations`` rounds of adversarial sampling from ``seeds`` structures with ``attack_steps``
    steps each and at most ``labels`` GFN2-xTB labels per round, ``md_steps`` of 0.5 fs at 300 K,
    stopped when the largest per-atom force std exceeds ``stop_factor`` times its largest value
    on the training structures (the ensemble is then far less sure than anywhere in its data)."""

    members: int = 4
    features: int = 64
    interactions: int = 3
    train_frames: int = 200
    test_frames: int = 200
    epochs: int = 100
    warm_epochs: int = 40
    generations: int = 2
    seeds: int = 20
    labels: int = 20
    attack_steps: int = 60
    md_steps: int = 2000
    stop_factor: float = 3.0


FULL = DemoSettings()
QUICK = DemoSettings(features=32, interactions=2, train_frames=60, test_frames=50, epochs=30, warm_epochs=10,
                     generations=1, seeds=8, labels=6, attack_steps=20, md_steps=200)


def inspect_data(out: Path, s: DemoSettings) -> dict[str, Any]:
    """Read and validate the bundled data, keep the demo's subsets in ``out/data``; their summaries."""
    summaries = {}
    for name, file, count in (("train", TRAIN_FILE, s.train_frames), ("test", TEST_FILE, s.test_frames)):
        frames = read(bundled(file), require=("energy", "forces"))
        kept = frames[:: max(1, len(frames) // count)][:count]
        write(out / "data" / f"{name}.extxyz", kept)
        summaries[name] = {"source": f"nnip/data/bundled/{file}", "frames_in_file": len(frames), **summarize(kept)}
    return summaries


def active_config(out: Path, s: DemoSettings) -> dict[str, Any]:
    """The ``nnip active`` config the demo runs (written to ``out/active/active.yaml``)."""
    return {
        "seed": 0, "output": str(out / "active"), "ensemble": s.members,
        "data": {"train": str(out / "data" / "train.extxyz"), "test": str(out / "data" / "test.extxyz"),
                 "split": {"val": 10}},
        "model": {"name": "schnet", "cutoff": 5.0, "features": s.features, "interactions": s.interactions},
        # keep the annealed final weights: the 10 validation structures, some of them adversarial, made
        # "best validation loss" pick an early epoch with a 0.7 eV energy offset in warm-started members
        "training": {"max_epochs": s.epochs, "batch_size": 8, "lr": 2e-3, "schedule": "cosine", "ema_decay": 0.99,
                     "keep": "last", "loss": {"energy_weight": 1.0, "forces_weight": 10.0}},
        "active": {"generations": s.generations, "oracle": "gfn2", "sampler": "adversarial", "seeds": s.seeds,
                   "select": {"percentile": 80, "rmsd": 0.05, "max_new": s.labels}, "new_weight": 2.0,
                   "warm_start": True, "warm_epochs": s.warm_epochs,
                   "attack": {"kT": 0.2, "steps": s.attack_steps, "lr": 0.01}},
    }


def active_learning(out: Path, s: DemoSettings) -> list[dict[str, float]]:
    """Train the ensemble, attack it, label with GFN2-xTB, retrain; rows of active.csv as numbers."""
    resolved = active_config(out, s)
    config = parse_config({k: v for k, v in resolved.items() if k != "active"}, where="demo")
    settings = from_dict(ActiveSettings, resolved["active"], "active")
    resume = (out / "active" / "active.yaml").is_file()
    rows = run_active(config, settings, resolved, resume=resume)
    return [{k: float(v) for k, v in row.items()} for row in rows]


def generation_model(out: Path, generation: int) -> Path:
    return out / "active" / f"gen_{generation:02d}" / "model" / "model.pt"


def evaluate_ensembles(out: Path, s: DemoSettings) -> dict[str, Any]:
    """Errors and calibration of the first and the last ensemble on the test set; figures of the last."""
    test = read(out / "data" / "test.extxyz")
    first, _ = evaluate(load(generation_model(out, 0)), test)
    last, predictions = evaluate(load(generation_model(out, s.generations)), test)
    result = {"first": {"generation": 0, **first}, "last": {"generation": s.generations, **last}}
    write_parity_plots(predictions, out / "figures", prefix="parity", title=f"generation {s.generations}, 1000 K test")
    member = out / "active" / "gen_00" / "model" / "members" / "member_0" / "metrics.csv"
    learning_curves(read_metrics_csv(member), out / "figures" / "learning_curves.png")
    return to_json(result)


def attack_summary(out: Path) -> dict[str, Any]:
    """How generation 0's adversarial candidates compare with the training data, and how honest
    the ensemble's spread was on the ones GFN2-xTB labelled."""
    folder = out / "active" / "gen_00"
    ensemble = load(folder / "model" / "model.pt")
    train = read(folder / "train.extxyz")
    candidates = ase_read(folder / "candidates.extxyz", index=":")
    chosen = json.loads((folder / "selection.json").read_text())["chosen"]
    labelled = [a for a in Store(out / "active" / "store.db").labelled() if a.info.get("generation") == 0]
    train_spread, candidate_spread = spreads(ensemble, train), spreads(ensemble, candidates)
    label_spread, label_error = spreads(ensemble, labelled), np.zeros(0)
    energy_above = np.zeros(0)
    if labelled:
        _, predictions = evaluate(ensemble, labelled)
        starts = np.concatenate([[0], np.cumsum(predictions.n_atoms)[:-1]])
        squared = ((predictions.forces - predictions.forces_ref) ** 2).mean(axis=1)
        label_error = np.sqrt(np.add.reduceat(squared, starts) / predictions.n_atoms)
        lowest = min(a.get_potential_energy() for a in train)
        energy_above = np.array([a.get_potential_energy() - lowest for a in labelled])
    attack_plot(train_spread, candidate_spread, candidate_spread[chosen], label_spread, label_error,
                out / "figures" / "attack.png")
    return to_json({
        "candidates": len(candidates), "chosen": len(chosen), "labelled": len(labelled),
        "train_spread_mean": float(train_spread.mean()), "candidate_spread_mean": float(candidate_spread.mean()),
        "label_spread_mean": float(label_spread.mean()) if labelled else None,
        "label_error_mean": float(label_error.mean()) if labelled else None,
        "label_energy_above_train_min_mean": float(energy_above.mean()) if labelled else None,
    })


def molecular_dynamics(out: Path, s: DemoSettings) -> dict[str, Any]:
    """Langevin MD at 300 K with the last ensemble, its force spread monitored; structure against GFN2-xTB."""
    ensemble = load(generation_model(out, s.generations))
    train = read(out / "data" / "train.extxyz")
    _, predictions = evaluate(ensemble, train)
    per_atom = atom_force_std(predictions)
    threshold = s.stop_factor * float(per_atom.max())
    settings = MDSettings(steps=s.md_steps, timestep=0.5, temperature=300.0, thermostat="langevin", friction=0.01,
                          interval=10, seed=0, stop_uncertainty=threshold)
    folder = out / "md"
    folder.mkdir(parents=True, exist_ok=True)
    result = run_md(train[0], Calculator(ensemble, skin=1.0), settings, folder / "trajectory.extxyz", folder / "md.csv")
    log = read_md_log(folder / "md.csv")
    md_monitor_plot(log["time_fs"], log["temperature"], log["max_force_std"], 300.0, threshold,
                    out / "figures" / "md_monitor.png")
    frames = ase_read(folder / "trajectory.extxyz", index="1:")
    model = pair_distances(frames or ase_read(folder / "trajectory.extxyz", index=":"), 4.0, 80)
    reference = pair_distances(train, 4.0, 80)
    distance_plot(model, reference, out / "figures" / "distances.png")
    width = 4.0 / 80
    overlap = {k: float(np.minimum(model[k][1], reference[k][1]).sum() * width) for k in model if k in reference}
    return to_json({
        "steps": result.steps, "stopped": result.stopped, "time_fs": result.steps * settings.timestep,
        "max_force_std": result.max_force_std, "train_max_force_std": float(per_atom.max()),
        "stop_threshold": threshold, "mean_max_force_std": float(np.nanmean(log["max_force_std"])),
        **temperature_statistics(log["temperature"]), "distance_overlap": overlap,
        "distance_overlap_min": min(overlap.values()) if overlap else None,
        "settings": asdict(settings),
    })
