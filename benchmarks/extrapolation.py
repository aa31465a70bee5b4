"""Extrapolation from 300 K to hotter structures: 3BPA trained on its 300 K set, tested on the mixed-temperature set.

    python benchmarks/extrapolation.py --train ../shared/data/3bpa/train_300K.xyz \
        --mixed ../shared/data/3bpa/train_mixedT.xyz --minutes 30

The model is trained with nnip's defaults (only ``model.name`` and the time budget set; 50 of the 500 structures
for validation) and made Bayesian in its last layer (``training.posterior_samples``, calibrated on the
validation forces), or trained as an ensemble (``--ensemble M``). The test set is every structure of the mixed
set (sampled from 300, 600 and 1200 K MD) whose positions are not those of a training structure. The file
records no temperature, so the structures are grouped by their energy above the 300 K training set's mean, in
units of its standard deviation: "like 300 K" (within 3 std), "hot" (3 to 10 std) and "very hot" (above).
Per group: the number of structures, energy MAE (meV/atom), force MAE (meV/Å), the mean predicted force std and
the Spearman rank correlation of predicted force std with the true force error per structure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import nnip
from nnip.training.evaluate import evaluate
from nnip.training.run import train

#: energy above the 300 K mean, in its standard deviations: group name -> (low, high)
GROUPS = {"like 300 K": (-np.inf, 3.0), "hot": (3.0, 10.0), "very hot": (10.0, np.inf)}


def unseen(frames, known) -> list:
    """The frames whose positions (rounded to 1e-5 Å) are not those of any of ``known``."""
    seen = {np.round(f.get_positions(), 5).tobytes() for f in known}
    return [f for f in frames if np.round(f.get_positions(), 5).tobytes() not in seen]


def groups(frames, reference) -> dict[str, list]:
    """The frames by energy above the mean of ``reference`` (GROUPS)."""
    energies = np.array([f.get_potential_energy() for f in reference])
    mean, std = energies.mean(), energies.std()
    out = {name: [] for name in GROUPS}
    for frame in frames:
        z = (frame.get_potential_energy() - mean) / std
        name = next(n for n, (low, high) in GROUPS.items() if low < z <= high)
        out[name].append(frame)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="3BPA train_300K.xyz")
    parser.add_argument("--mixed", required=True, help="3BPA train_mixedT.xyz")
    parser.add_argument("--model", default="equivariant")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--posterior-samples", type=int, default=8, help="K: 2K last-layer posterior draws")
    parser.add_argument("--ensemble", type=int, default=1, help="M > 1: an ensemble of M models instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    known = nnip.read(args.train)
    test = unseen(nnip.read(args.mixed), known)
    by_group = groups(test, known)
    uncertainty = f"ensemble of {args.ensemble}" if args.ensemble > 1 else f"{2 * args.posterior_samples} last-layer draws"
    print(f"{args.model} with nnip's defaults, {args.minutes:g} min, {args.threads} threads, {uncertainty}; "
          f"{len(test)} of the mixed set's structures are not in the training file")
    with tempfile.TemporaryDirectory() as folder:
        training = {"max_time": 60 * args.minutes, "progress": False, "plots": False}
        if args.ensemble == 1:
            training["posterior_samples"] = args.posterior_samples
        config = {"seed": args.seed, "output": folder, "ensemble": args.ensemble, "model": {"name": args.model},
                  "data": {"train": args.train, "split": {"val": 50}}, "training": training}
        started = time.perf_counter()
        report = train(config, overwrite=True)
        val = report.get("val", {}).get("forces_mae", float("nan"))
        print(f"trained in {time.perf_counter() - started:.0f} s, {report.get('epochs')} epochs; validation force "
              f"MAE {1000 * val:.1f} meV/Å")
        model = nnip.load(Path(folder) / "model.pt")
        print(f"{'group':12s} {'structures':>10s} {'E meV/atom':>10s} {'F meV/Å':>8s} {'std meV/Å':>9s} {'Spearman':>8s}")
        for name, frames in by_group.items():
            if not frames:
                continue
            metrics, _ = evaluate(model, frames, 50, "cpu")
            print(f"{name:12s} {len(frames):10d} {1000 * metrics['energy_mae_per_atom']:10.2f} "
                  f"{1000 * metrics['forces_mae']:8.1f} {1000 * metrics.get('forces_std_mean', np.nan):9.1f} "
                  f"{metrics.get('uncertainty_spearman', np.nan):8.3f}")


if __name__ == "__main__":
    main()
