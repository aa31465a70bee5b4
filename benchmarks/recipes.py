"""The sweep behind the default training recipes (nnip.training.recipes): each model, with nothing but its name set,
trained for the same wall-clock budget on several data sets under each candidate recipe; test errors side by side.

    python benchmarks/recipes.py --minutes 4 \
        --rmd17 ../shared/data/rmd17_ethanol/train.xyz ../shared/data/rmd17_ethanol/test_MD.xyz \
        --si ../shared/data/mlearn_si/training.json ../shared/data/mlearn_si/test.json \
        --3bpa ../shared/data/3bpa/train_300K.xyz

Data sets: rMD17 ethanol (950 training and 50 validation structures from the training file, the test file),
mlearn Si (the split of benchmarks/mlearn_si.py: 10 % of the training cells for validation, the test cells),
3BPA at 300 K (500 structures: 50 for validation and 50 held out for testing, seeded) and the bundled GFN2-xTB
ethanol (``--gfn2``: 300 K structures for training with 20 for validation, 1000 K structures as the test set).
Candidates (``--recipes``): "defaults" (what ``nnip train`` does with only ``model.name``), "generic" (the
settings every model got before recipes existed: Adam from 1e-3, plateau schedule, batch 16, no EMA or clipping)
and variants of the defaults named below (``energy1``: per-atom energy weight 1 with the defaults' force
weight 10, what the networks other than the equivariant model have by default; the equivariant model's
is 10). Each run prints the test force and energy MAE, the epochs, the CPU share (process CPU time / wall time /
threads) and whether the last training loss was finite.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from pathlib import Path

import torch

from nnip.data import bundled
from nnip.training.checkpoint import read_metrics_csv
from nnip.training.config import parse_config
from nnip.training.run import run_training

#: candidate recipes: training keys set on top of the model's own recipe ("generic" replaces it)
CANDIDATES = {
    "defaults": {},
    "generic": {"lr": 1e-3, "schedule": "plateau", "min_lr": 0.0, "batch_size": 16, "ema_decay": None,
                "clip_grad_norm": None, "loss": {"energy_weight": 1.0, "forces_weight": 10.0}},
    "lr2e-3": {"lr": 2e-3},
    "lr1e-2": {"lr": 1e-2},
    "batch4": {"batch_size": 4},
    "batch16": {"batch_size": 16},
    "forces100": {"loss": {"forces_weight": 100.0}},
    "energy1": {"loss": {"energy_weight": 1.0}},
    "energy10": {"loss": {"energy_weight": 10.0}},
    "energy100": {"loss": {"energy_weight": 100.0}},
}


def data_sets(args) -> dict[str, dict]:
    """Data set name -> the config's data section."""
    sets = {}
    if args.rmd17:
        sets["rMD17 ethanol"] = {"train": args.rmd17[0], "test": args.rmd17[1], "split": {"val": 50}}
    if args.si:
        sets["mlearn Si"] = {"train": args.si[0], "test": args.si[1], "split": {"val": 0.1}}
    if args.bpa:
        sets["3BPA 300 K"] = {"train": args.bpa, "split": {"val": 50, "test": 50}}
    if args.gfn2:
        sets["GFN2 ethanol"] = {"train": str(bundled("ethanol_gfn2_300K.extxyz")),
                                "test": str(bundled("ethanol_gfn2_1000K.extxyz")), "split": {"val": 20}}
    return sets


def run(data: dict, model: str, candidate: str, seconds: float, threads: int, seed: int) -> dict:
    """One training run; returns its figures."""
    training = {"max_epochs": 100000, "max_time": seconds, "progress": False, "plots": False, "eval_batch_size": 50,
                **CANDIDATES[candidate]}
    with tempfile.TemporaryDirectory() as folder:
        config = {"seed": seed, "output": folder, "data": data, "model": {"name": model}, "training": training}
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        report = run_training(parse_config(config), config, overwrite=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        last = _last_train_loss(Path(folder) / "metrics.csv")
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (wall * threads)
    test = report["test"]
    return {"model": model, "recipe": candidate, "forces_mae_mev": 1000 * test["forces_mae"],
            "energy_mae_mev_per_atom": 1000 * test["energy_mae_per_atom"], "epochs": report["epochs"],
            "cpu_share": cpu, "last_train_loss": last, "finite": math.isfinite(last)}


def _last_train_loss(path: Path) -> float:
    """The last epoch's training loss from the run's metrics.csv (NaN when there is none)."""
    rows = read_metrics_csv(path) if path.is_file() else []
    return rows[-1].get("train_loss", math.nan) if rows else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rmd17", nargs=2, metavar=("TRAIN", "TEST"))
    parser.add_argument("--si", nargs=2, metavar=("TRAIN", "TEST"))
    parser.add_argument("--3bpa", dest="bpa", metavar="TRAIN_300K")
    parser.add_argument("--gfn2", action="store_true", help="also the bundled GFN2-xTB ethanol")
    parser.add_argument("--models", nargs="+", default=["equivariant", "painn", "schnet", "behler_parrinello"])
    parser.add_argument("--recipes", nargs="+", default=["defaults", "generic"], choices=list(CANDIDATES))
    parser.add_argument("--minutes", type=float, default=4.0, help="training budget per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.minutes:g} min per run, {args.threads} threads, seed {args.seed}, allocator: glibc")
    print(f"{'data set':14s} {'model':18s} {'recipe':10s} {'F meV/Å':>8s} {'E meV/atom':>10s} {'epochs':>7s} "
          f"{'CPU share':>9s} {'last loss':>10s}")
    rows = []
    for name, data in data_sets(args).items():
        for model in args.models:
            for candidate in args.recipes:
                row = {"data": name, **run(data, model, candidate, 60 * args.minutes, args.threads, args.seed)}
                rows.append(row)
                print(f"{name:14s} {model:18s} {candidate:10s} {row['forces_mae_mev']:8.1f} "
                      f"{row['energy_mae_mev_per_atom']:10.2f} {row['epochs']:7d} {row['cpu_share']:9.2f} "
                      f"{row['last_train_loss']:10.3g}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
