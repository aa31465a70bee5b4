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
miscalibration area. ``--models`` picks the families. Splits: mlearn Si as in benchmarks/mlearn_si.py (214
training cells, 10 % of them for validation, the 25 test cells); ethanol: 950 training and 50 validation
structures from train.xyz (seeded), the 1000 structures of test_MD.xyz. Published: mlearn Si GAP 2.91
meV/atom and 70 meV/Å, MTP 2.21 and 60, NNP 5.60 and 110 (sources in benchmarks/mlearn_si.py); rMD17
ethanol at 1000 training structures linear ACE 1.2 meV (0.13 meV/atom) and 7.3 meV/Å, GAP 3.5 meV and
18.1 meV/Å (Kovacs et al., J. Chem. Theory Comput. 17, 7696 (2021), Table 1).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

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


def fit(name: str, model: str, train: str, test: str, hyperparameters: dict, samples: int, seed: int) -> dict:
    """Fit one family with its single-model uncertainty on one data set; returns the report with the wall time."""
    data, loss = SETS[name]["data"], SETS[name]["loss"]
    if model == "equivariant":
        training = {**NETWORK_TRAINING, "max_time": float(SETS[name]["network_seconds"]),
                    "loss": {**loss, "energy_weight": 1.0, "forces_weight": 10.0}}
    else:
        training = {"optimizer": "least_squares", "batch_size": 16, "loss": loss,
                    **({"ridge": "evidence"} if model == "sparse_gp" else {})}
    with tempfile.TemporaryDirectory() as folder:
        config = {"seed": seed, "output": folder, "data": {"train": train, "test": test, **data},
                  "model": {"name": model, **hyperparameters},
                  "training": {**training, "posterior_samples": samples, "eval_batch_size": 50, "progress": False,
                               "plots": False}}
        started = time.perf_counter()
        report = run_training(parse_config(config), config, overwrite=True)
        report["wall_seconds"] = time.perf_counter() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--si-train"), parser.add_argument("--si-test")
    parser.add_argument("--ethanol-train"), parser.add_argument("--ethanol-test")
    parser.add_argument("--models", nargs="+", default=list(LABELS), choices=list(LABELS))
    parser.add_argument("--degrees", type=int, nargs="+", help="override linear ACE's degrees per correlation order")
    parser.add_argument("--posterior-samples", type=int, default=8, help="K: 2K posterior draws")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--allocator", default="glibc-retain", choices=CHOICES)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if rerun_under_each_allocator(args.allocator):
        return
    torch.set_num_threads(args.threads)
    paths = {"mlearn Si": (args.si_train, args.si_test), "rMD17 ethanol": (args.ethanol_train, args.ethanol_test)}
    print(f"{2 * args.posterior_samples} posterior draws per model, {args.threads} threads, "
          f"allocator: {current_allocator()}")
    print(f"{'data set':16s} {'model':28s} {'fit s':>7s} {'E meV/atom':>11s} {'F meV/Å':>8s} "
          f"{'Spearman':>9s} {'miscal.':>8s} {'parameters':>10s}")
    rows = []
    for name, (train, test) in paths.items():
        if not (train and test):
            continue
        for model in args.models:
            hyperparameters = dict(SETS[name][model])
            if model == "linear_ace" and args.degrees:
                hyperparameters["degrees"] = args.degrees
            report = fit(name, model, train, test, hyperparameters, args.posterior_samples, args.seed)
            t = report["test"]
            row = {"data": name, "model": LABELS[model], "hyperparameters": hyperparameters,
                   "fit_seconds": report["wall_seconds"], "energy_mae_mev_per_atom": 1000 * t["energy_mae_per_atom"],
                   "forces_mae_mev": 1000 * t["forces_mae"], "spearman": t.get("uncertainty_spearman"),
                   "miscalibration": t.get("forces_miscalibration_area"), "n_parameters": report["n_parameters"],
                   "epochs": report["epochs"]}
            rows.append(row)
            print(f"{name:16s} {row['model']:28s} {row['fit_seconds']:7.1f} {row['energy_mae_mev_per_atom']:11.2f} "
                  f"{row['forces_mae_mev']:8.1f} {row['spearman']:9.3f} {row['miscalibration']:8.3f} "
                  f"{row['n_parameters']:10d}", flush=True)
        for published, (energy, forces) in SETS[name]["published"].items():
            print(f"{'':16s} {published + ' (published)':28s} {'':>7s} {energy:11.2f} {forces:8.1f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)


if __name__ == "__main__":
    main()
