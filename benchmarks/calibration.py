"""Are the ensemble's error bars honest? A 4-member SchNet ensemble on rMD17 ethanol.

    python benchmarks/calibration.py --minutes 6 \
        --train ../shared/data/rmd17_ethanol/train.xyz --test ../shared/data/rmd17_ethanol/test_MD.xyz

Members differ by seed (initial weights and batch order), are trained ``--minutes`` each
on the same 950 structures (50 validation, from the training file) with rmd17.py's SchNet
and a cosine schedule over the budget, and the variance
scale is fitted on the validation set. On the test file it prints the force MAE, the
Spearman rank correlation between predicted and true per-structure force errors, the
Gaussian negative log-likelihood and the miscalibration area of the force components,
each with the fitted variance scale and without it (scale 1).
"""

from __future__ import annotations

import argparse
import json

import torch

import rmd17
from nnip.data import bundled
from nnip.data.io import read
from nnip.potentials.files.serialization import load
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate
from nnip.training.run import run_training

KEYS = ("forces_mae", "forces_std_mean", "uncertainty_spearman", "forces_nll", "forces_miscalibration_area")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=6.0, help="training wall time of each member")
    parser.add_argument("--train", default=str(bundled("ethanol_train.extxyz")))
    parser.add_argument("--test", default=str(bundled("ethanol_test.extxyz")))
    parser.add_argument("--output", default="runs/calibration")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = rmd17.config("schnet", args.train, args.test, args.minutes, args.output, args.seed, "cosine")
    data["ensemble"] = args.members
    report = run_training(parse_config(data), data, overwrite=True)
    ensemble = load(f"{args.output}/model.pt")
    scale = float(ensemble.variance_scale)
    results = {"members": args.members, "minutes_per_member": args.minutes, "variance_scale": scale,
               "scaled": {k: report["test"].get(k) for k in KEYS}}
    ensemble.variance_scale.fill_(1.0)
    unscaled, _ = evaluate(ensemble, read(args.test), 100)
    results["unscaled"] = {k: unscaled.get(k) for k in KEYS}
    print(json.dumps(results, indent=2))
    print("forces in eV/Å; NLL per force component (nats); miscalibration area 0 = perfectly calibrated, "
          "0.5 = worst")


if __name__ == "__main__":
    main()
