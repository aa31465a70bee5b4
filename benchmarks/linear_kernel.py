"""The lecture's three families side by side, each with uncertainty from one model: linear ACE fitted in closed
form with its Bayesian posterior, the sparse GP with its posterior (marginal-likelihood regularisation), and the
equivariant network with last-layer uncertainty (LLPR), on mlearn Si and rMD17 ethanol.

    python benchmarks/linear_kernel.py --si-train ../shared/data/mlearn_si/training.json \
        --si-test ../shared/data/mlearn_si/test.json \
        --ethanol-train ../shared/data/rmd17_ethanol/train.xyz --ethanol-test ../shared/data/rmd17_ethanol/test_MD.xyz

Per data set and model: the fit's wall time (features, design rows, normal equations, regularisation,
posterior draws and their calibration; for the network its training budget plus the last-layer posterior),
test energy MAE (meV/atom) and force MAE (meV/Å), and how honest the force uncertainty is on the test set:
the Spearman rank correlation of predicted force std with the true force error per structure, and the
miscalibration area. ``--models`` picks the families. ``--curve 50 100 200 400 950`` fits them instead on nested
ethanol training sets of those sizes (the lecture's claim that kernels need fewer data, tested): the closed
forms as in the table, the network for ``--curve-seconds`` at every size. Splits: mlearn Si as in
benchmarks/mlearn_si.py (214 training cells, 10 % of them for validation, the 25 test cells); ethanol: 950
training and 50 validation structures from train.xyz (seeded), the 1000 structures of test_MD.xyz. Published:
mlearn Si GAP 2.91 meV/atom and 70 meV/Å, MTP 2.21 and 60, NNP 5.60 and 110 (sources in
benchmarks/mlearn_si.py); rMD17 ethanol at 1000 training structures linear ACE 1.2 meV (0.13 meV/atom) and 7.3
meV/Å, GAP 3.5 meV and 18.1 meV/Å (Kovacs et al., J. Chem. Theory Comput. 17, 7696 (2021), Table 1).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

import nnip
from nnip.training.config import parse_config
from nnip.training.run import run_training

#: per data set: data split, loss weights, each family's hyperparameters, the network's training budget (s) and
#: the published rows (name -> energy meV/atom, forces meV/Å)
SETS = {
    "mlearn Si": {"data": {"split": {"val": 0.1}},
                  "loss": {"energy_weight": 100.0, "forces_weight": 1.0, "stress_weight": 10.0},
                  "linear_ace": {"cutoff": 5.5, "radial": 8, "l_max": 4, "degrees": [7, 10, 9]},
                  "sparse_gp": {"cutoff": 5.5, "radial": 8, "l_max": 4, "degrees": [7, 10, 9], "sparse_points": 1000},
                  "equivariant": {"cutoff": 5.5}, "network_seconds": 300,
                  "published": {"GAP": (2.91, 70.0), "MTP": (2.21, 60.0), "NNP": (5.60, 110.0)}},
    "rMD17 ethanol": {"data": {"split": {"val": 50}},
                      "loss": {"energy_weight": 100.0, "forces_weight": 1.0},
                      "linear_ace": {"cutoff": 5.0, "radial": 8, "l_max": 4, "degrees": [7, 10, 7]},
                      "sparse_gp": {"cutoff": 5.0, "radial": 6, "l_max": 3, "degrees": [5, 7, 5],
                                    "sparse_points": 1000},
                      "equivariant": {"cutoff": 5.0}, "network_seconds": 600,
                      "published": {"linear ACE (Kovacs 2021)": (1.2 / 9, 7.3), "GAP": (3.5 / 9, 18.1)}},
}

#: the network's training recipe (the rMD17 one of benchmarks/rmd17.py), over the set's time budget
NETWORK_TRAINING = {"max_epochs": 100000, "batch_size": 8, "lr": 5e-3, "schedule": "cosine", "min_lr": 1e-5,
                    "ema_decay": 0.99, "clip_grad_norm": 10.0}

LABELS = {"linear_ace": "linear ACE + posterior", "sparse_gp": "sparse GP + posterior",
          "equivariant": "equivariant + last layer"}


def fit(name: str, model: str, data: dict, hyperparameters: dict, samples: int, seed: int,
        network_seconds: float) -> dict:
    """Fit one family with its single-model uncertainty (``samples`` K: 2K posterior draws; 0: none) on one data
    set (``data``: the data section of the config); returns the report with the wall time."""
    loss = SETS[name]["loss"]
    if model == "equivariant":
        training = {**NETWORK_TRAINING, "max_time": float(network_seconds),
                    "loss": {**loss, "energy_weight": 1.0, "forces_weight": 10.0}}
    else:
        training = {"optimizer": "least_squares", "batch_size": 16, "loss": loss,
                    **({"ridge": "evidence"} if model == "sparse_gp" else {})}
    with tempfile.TemporaryDirectory() as folder:
        config = {"seed": seed, "output": folder, "data": data, "model": {"name": model, **hyperparameters},
                  "training": {**training, "posterior_samples": samples, "eval_batch_size": 50, "progress": False,
                               "plots": False}}
        started = time.perf_counter()
        report = run_training(parse_config(config), config, overwrite=True)
        report["wall_seconds"] = time.perf_counter() - started
    return report


def row_of(name: str, label: str, hyperparameters: dict, report: dict) -> dict:
    """One printed row: fit time, test errors, uncertainty ranking and calibration."""
    t = report["test"]
    return {"data": name, "model": label, "hyperparameters": hyperparameters,
            "fit_seconds": report["wall_seconds"], "energy_mae_mev_per_atom": 1000 * t["energy_mae_per_atom"],
            "forces_mae_mev": 1000 * t["forces_mae"], "spearman": t.get("uncertainty_spearman"),
            "miscalibration": t.get("forces_miscalibration_area"), "n_parameters": report["n_parameters"],
            "epochs": report["epochs"]}


def learning_curve(train: str, test: str, sizes: list[int], models: list[str], seconds: float, seed: int,
                   folder: Path) -> list[dict]:
    """rMD17 ethanol: nested training sets of ``sizes`` structures and one validation set of 50 from ``train``
    (seeded); each family with the table's hyperparameters, the network trained for ``seconds`` at every size,
    no posterior draws. Prints one line per size and family."""
    frames = nnip.read(train)
    order = np.random.default_rng(seed).permutation(len(frames))
    if max(sizes) > len(frames) - 50:
        raise SystemExit(f"{train}: {len(frames)} structures, too few for {max(sizes)} training and 50 validation")
    nnip.write(folder / "val.extxyz", [frames[k] for k in order[:50]])
    print(f"\nlearning curve, rMD17 ethanol (network: {seconds:.0f} s per size; closed forms: their fit time)")
    print(f"{'structures':>10s} {'model':28s} {'fit s':>7s} {'E meV/atom':>11s} {'F meV/Å':>8s} {'epochs':>7s}")
    rows = []
    for size in sizes:
        nnip.write(folder / f"train_{size}.extxyz", [frames[k] for k in order[50:50 + size]])
        data = {"train": str(folder / f"train_{size}.extxyz"), "val": str(folder / "val.extxyz"), "test": test}
        for model in models:
            hyperparameters = dict(SETS["rMD17 ethanol"][model])
            report = fit("rMD17 ethanol", model, data, hyperparameters, 0, seed, seconds)
            row = {"structures": size, **row_of("rMD17 ethanol", model.replace("_", " "), hyperparameters, report)}
            rows.append(row)
            print(f"{size:10d} {row['model']:28s} {row['fit_seconds']:7.1f} {row['energy_mae_mev_per_atom']:11.2f} "
                  f"{row['forces_mae_mev']:8.1f} {row['epochs']:7d}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--si-train"), parser.add_argument("--si-test")
    parser.add_argument("--ethanol-train"), parser.add_argument("--ethanol-test")
    parser.add_argument("--models", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--degrees", type=int, nargs="+", help="override linear ACE's degrees per correlation order")
    parser.add_argument("--posterior-samples", type=int, default=8, help="K: 2K posterior draws")
    parser.add_argument("--curve", type=int, nargs="+", default=[],
                        help="ethanol learning curve at these training-set sizes (e.g. 50 100 200 400 950)")
    parser.add_argument("--curve-seconds", type=float, default=300.0,
                        help="the network's training time at every size of the learning curve, s")
    parser.add_argument("--tables", action="store_true", help="with --curve: also print the side-by-side tables")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--allocator", default="glibc-retain", choices=CHOICES)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if rerun_under_each_allocator(args.allocator):
        return
    torch.set_num_threads(args.threads)
    paths = {"mlearn Si": (args.si_train, args.si_test), "rMD17 ethanol": (args.ethanol_train, args.ethanol_test)}
    tables = {name: files for name, files in paths.items() if all(files) and (args.tables or not args.curve)}
    print(f"{args.threads} threads, allocator: {current_allocator()}")
    if tables:
        print(f"{2 * args.posterior_samples} posterior draws per model")
        print(f"{'data set':16s} {'model':28s} {'fit s':>7s} {'E meV/atom':>11s} {'F meV/Å':>8s} "
              f"{'Spearman':>9s} {'miscal.':>8s} {'parameters':>10s}")
    rows = []
    for name, (train, test) in tables.items():
        for model in args.models:
            hyperparameters = dict(SETS[name][model])
            if model == "linear_ace" and args.degrees:
                hyperparameters["degrees"] = args.degrees
            data = {"train": train, "test": test, **SETS[name]["data"]}
            report = fit(name, model, data, hyperparameters, args.posterior_samples, args.seed,
                         SETS[name]["network_seconds"])
            row = row_of(name, LABELS[model], hyperparameters, report)
            rows.append(row)
            print(f"{name:16s} {row['model']:28s} {row['fit_seconds']:7.1f} {row['energy_mae_mev_per_atom']:11.2f} "
                  f"{row['forces_mae_mev']:8.1f} {row['spearman']:9.3f} {row['miscalibration']:8.3f} "
                  f"{row['n_parameters']:10d}", flush=True)
        for published, (energy, forces) in SETS[name]["published"].items():
            print(f"{'':16s} {published + ' (published)':28s} {'':>7s} {energy:11.2f} {forces:8.1f}")
    if args.curve and args.ethanol_train and args.ethanol_test:
        with tempfile.TemporaryDirectory() as folder:
            rows += learning_curve(args.ethanol_train, args.ethanol_test, args.curve, args.models, args.curve_seconds,
                                   args.seed, Path(folder))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
