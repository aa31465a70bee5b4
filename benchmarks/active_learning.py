"""Active learning on ethanol with GFN2-xTB as the oracle: samplers (adversarial, MD, random) at equal oracle calls
per generation, and the uncertainty that drives them: a network ensemble against one model's own posterior.

    python benchmarks/active_learning.py --generations 4 --labels 20 --members 3 --epochs 800 --warm-start
    python benchmarks/active_learning.py --samplers adversarial --uncertainties ensemble last_layer linear_ace \
        sparse_gp --generations 4 --labels 20 --epochs 400

Every run starts from the same ``--initial`` structures of the bundled 300 K GFN2 AIMD (the rest of that run is the
300 K test set) and labels at most ``--labels`` structures per generation. Uncertainties: ``ensemble`` (SchNet,
``--members`` members, ``--minutes`` or ``--epochs`` each), ``last_layer`` (one such SchNet with its last-layer
posterior), ``linear_ace`` and ``sparse_gp`` (closed-form fits on one descriptor, radial 6, l_max 3, degrees
[5, 7, 5], with their Bayesian posteriors); the single models' posteriors as 2 x ``--posterior-samples`` draws.
Prints, per generation and run, the oracle calls so far and the force MAE (meV/Å) on the 1000 K GFN2 AIMD
(geometries the initial data never visits) and on the held-out 300 K frames, then the oracle calls each run needed
to reach a 1000 K force error (``--target``; default: the largest final error of the runs, which every run reaches).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

import nnip
from nnip.active.loop import run_active
from nnip.active.samplers import ActiveSettings
from nnip.data import bundled
from nnip.strict import from_dict
from nnip.training.config import parse_config
from nnip.training.evaluate import evaluate

SAMPLER_OPTIONS = {
    # kT 0.2 eV per structure: the paper's 0.867 eV (20 kcal/mol) sends ethanol attacks 1.5-3.7 eV above the
    # training data and measured worse here (see --kT)
    "adversarial": {"attack": {"kT": 0.2, "steps": 60, "lr": 0.01}},
    "md": {"temperature": 600.0, "md_steps": 200, "md_interval": 20},
    "random": {"amplitude": 0.08, "samples_per_seed": 2},
    "normal_modes": {"temperature": 600.0, "samples_per_seed": 2},
}


#: the model and uncertainty of each choice of --uncertainties: model section, ensemble members (None: --members),
#: training keys over the network recipe (closed forms replace it)
SCHNET = {"name": "schnet", "cutoff": 5.0, "features": 64, "interactions": 3}
DESCRIPTOR = {"cutoff": 5.0, "radial": 6, "l_max": 3, "degrees": [5, 7, 5]}
UNCERTAINTIES = {
    "ensemble": (SCHNET, None, {}),
    "last_layer": (SCHNET, 1, {}),
    "linear_ace": ({"name": "linear_ace", **DESCRIPTOR}, 1, {"optimizer": "least_squares"}),
    "sparse_gp": ({"name": "sparse_gp", **DESCRIPTOR, "sparse_points": 1000}, 1, {"optimizer": "least_squares"}),
}


def training_of(uncertainty: str, args) -> dict:
    """The training section: SchNet's recipe over --epochs or --minutes, or a closed-form fit."""
    extra = {**UNCERTAINTIES[uncertainty][2], **({} if uncertainty == "ensemble" else
                                                 {"posterior_samples": args.posterior_samples})}
    if extra.get("optimizer") == "least_squares":
        return {**extra, "batch_size": 16, "loss": {"energy_weight": 100.0, "forces_weight": 1.0}}
    return {"max_epochs": args.epochs or 100000, "max_time": None if args.epochs else 60 * args.minutes,
            "batch_size": 8, "lr": 1e-3, "schedule": "cosine", "min_lr": 1e-5, "ema_decay": 0.99,
            "loss": {"energy_weight": 1.0, "forces_weight": 10.0}, **extra}


def run(sampler: str, uncertainty: str, args, folder: Path) -> list[dict]:
    model, members, _ = UNCERTAINTIES[uncertainty]
    output = folder / (sampler if uncertainty == "ensemble" else f"{sampler}_{uncertainty}")
    resolved = {
        "seed": args.seed, "output": str(output), "ensemble": members or args.members,
        "data": {"train": str(folder / "initial.extxyz"), "test": str(bundled("ethanol_gfn2_1000K.extxyz")),
                 "split": {"val": 0.1}},
        "model": dict(model), "training": training_of(uncertainty, args),
        "active": {"generations": args.generations, "oracle": "gfn2", "sampler": sampler, "seeds": args.labels,
                   "warm_start": args.warm_start,
                   "select": {"percentile": 50, "rmsd": 0.02, "max_new": args.labels},
                   **copy.deepcopy(SAMPLER_OPTIONS[sampler])},
    }
    if sampler == "adversarial" and args.kT:
        resolved["active"]["attack"]["kT"] = args.kT
    config = parse_config({k: v for k, v in resolved.items() if k != "active"})
    settings = from_dict(ActiveSettings, resolved["active"], "active")
    rows = run_active(config, settings, resolved, resume=args.resume and output.is_dir(), overwrite=True)
    cool = nnip.read(folder / "test_300K.extxyz")
    for row in rows:
        model = nnip.load(output / f"gen_{int(row['generation']):02d}" / "model" / "model.pt")
        row["test_300K_forces_mae"] = evaluate(model, cool)[0]["forces_mae"]
    return rows


def calls_to_reach(rows: list[dict], target: float) -> int | None:
    """Oracle calls of the first generation whose 1000 K force MAE (eV/Å) is at most ``target``; None if none."""
    return next((int(r["oracle_calls"]) for r in rows if float(r["test_forces_mae"]) <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samplers", nargs="+", default=["adversarial", "md", "random"], choices=SAMPLER_OPTIONS)
    parser.add_argument("--uncertainties", nargs="+", default=["ensemble"], choices=UNCERTAINTIES,
                        help="what drives the sampling and selection: a SchNet ensemble, one SchNet's last layer, "
                             "or a closed-form model's posterior")
    parser.add_argument("--posterior-samples", type=int, default=4,
                        help="K: the single models' posteriors as 2K draws (each attack step differentiates the "
                             "forces of every draw)")
    parser.add_argument("--target", type=float, default=None,
                        help="1000 K force MAE, meV/Å, to count oracle calls to (default: the worst final error)")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--labels", type=int, default=20, help="oracle calls per generation (at most)")
    parser.add_argument("--initial", type=int, default=30, help="initial 300 K structures")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=2.0, help="training wall time per member")
    parser.add_argument("--epochs", type=int, default=0,
                        help="train each member this many epochs instead of --minutes (immune to machine load)")
    parser.add_argument("--warm-start", action="store_true", help="generation g starts from g-1's members")
    parser.add_argument("--kT", type=float, default=None,
                        help="attack temperature, eV per structure (default 0.2; the paper's 20 kcal/mol is 0.8673)")
    parser.add_argument("--output", default="runs/active_learning")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    frames = nnip.read(bundled("ethanol_gfn2_300K.extxyz"))
    order = np.random.default_rng(args.seed).permutation(len(frames))
    nnip.write(folder / "initial.extxyz", [frames[k] for k in order[:args.initial]])
    nnip.write(folder / "test_300K.extxyz", [frames[k] for k in order[args.initial:]])
    runs = [(sampler, uncertainty) for uncertainty in args.uncertainties for sampler in args.samplers]
    table = {f"{sampler} {uncertainty}": run(sampler, uncertainty, args, folder) for sampler, uncertainty in runs}
    print(f"{'generation':>10} " + " ".join(f"{name + ' calls':>28} {'F MAE 1000K':>11} {'F MAE 300K':>10}"
                                           for name in table))
    for g in range(args.generations + 1):
        cells = []
        for rows in table.values():
            row = rows[g]
            cells.append(f"{int(row['oracle_calls']):>28} {1000 * float(row['test_forces_mae']):>11.1f} "
                         f"{1000 * row['test_300K_forces_mae']:>10.1f}")
        print(f"{g:>10} " + " ".join(cells))
    target = args.target / 1000 if args.target else max(float(rows[-1]["test_forces_mae"]) for rows in table.values())
    print(f"oracle calls to a 1000 K force MAE of {1000 * target:.1f} meV/Å:")
    for name, rows in table.items():
        calls = calls_to_reach(rows, target)
        first, last = (1000 * float(rows[g]["test_forces_mae"]) for g in (0, -1))
        print(f"  {name:30s} {calls if calls is not None else 'not reached':>11}   (from {first:.1f} to {last:.1f} "
              f"meV/Å, {100 * (last / first - 1):+.0f} %, in {int(rows[-1]['oracle_calls'])} calls)")
    (folder / "summary.json").write_text(json.dumps(table, indent=2, default=float))


if __name__ == "__main__":
    main()
