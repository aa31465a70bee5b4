"""Does training on forces help the energy? SchNet on energies only vs energies + forces, equal budget.

    python benchmarks/energy_vs_forces.py --minutes 20 \
        --train ../shared/data/rmd17_ethanol/train.xyz --test ../shared/data/rmd17_ethanol/test_MD.xyz

The lecture's claim (Schutt et al.'s C7O2H10 table): adding forces to the loss lowers both
the energy and the force errors, because each structure then gives 3N + 1 labels instead of
one. Both runs get the same wall-clock budget, data split, model and seed; prints the test
energy and force MAE of each.
"""

from __future__ import annotations

import argparse
import json

import torch

import rmd17
from nnip.data import bundled
from nnip.training.config import parse_config
from nnip.training.run import run_training


def run(train: str, test: str, minutes: float, forces_weight: float, output: str, seed: int) -> dict:
    """Train rmd17.py's SchNet (cosine schedule over the budget) with this force weight; test errors."""
    data = rmd17.config("schnet", train, test, minutes, output, seed, "cosine", forces_weight)
    report = run_training(parse_config(data), data, overwrite=True)
    return {"epochs": report["epochs"], "n_train": report["train"]["n_structures"],
            "energy_mae_meV": 1000 * report["test"]["energy_mae"],
            "forces_mae_meV_per_A": 1000 * report["test"]["forces_mae"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time of each run")
    parser.add_argument("--train", default=str(bundled("ethanol_train.extxyz")))
    parser.add_argument("--test", default=str(bundled("ethanol_test.extxyz")))
    parser.add_argument("--output", default="runs/energy_vs_forces")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        "energies only": run(args.train, args.test, args.minutes, 0.0, f"{args.output}/energy", args.seed),
        "energies + forces": run(args.train, args.test, args.minutes, 10.0, f"{args.output}/forces", args.seed),
    }
    print(json.dumps(results, indent=2))
    both, alone = results["energies + forces"], results["energies only"]
    verdict = "holds" if both["energy_mae_meV"] < alone["energy_mae_meV"] else "does not hold"
    print(f"adding forces lowers the energy error: {verdict} here "
          f"({alone['energy_mae_meV']:.1f} -> {both['energy_mae_meV']:.1f} meV, {args.minutes} min each)")


if __name__ == "__main__":
    main()
