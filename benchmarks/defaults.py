"""nnip's defaults against MACE: the same data, the same wall-clock budget, one package after the other.

    bash benchmarks/peers/setup.sh     # once: .venv-mace
    python benchmarks/defaults.py --minutes 30 \
        --rmd17 ../shared/data/rmd17_ethanol/train.xyz ../shared/data/rmd17_ethanol/test_MD.xyz \
        --3bpa ../shared/data/3bpa/train_300K.xyz ../shared/data/3bpa/train_mixedT.xyz \
        --si ../shared/data/mlearn_si/si_train.extxyz ../shared/data/mlearn_si/si_test.extxyz

nnip trains ``--model`` (the equivariant model) from a config that names only the model, the data, the seed and
``training.max_time``, so everything else is its default recipe (nnip.training.recipes). MACE runs as
``benchmarks/peers/mace_accuracy.py`` does (mace_run_train 0.3.16, 64x0e+64x1o, correlation 3, 2
interactions, r_max 5 Å, batch 5, EMA; its plateau schedule and loss weights) and is stopped at the budget.
Both hold out the same share of the training file for validation (50 structures of rMD17's 1000 and of 3BPA's
500, 10 % of the Si cells) and use ``--threads`` threads. The test sets: rMD17's test file, the mlearn Si test
cells, and for 3BPA every structure of the mixed-temperature set (300, 600 and 1200 K) that is not in the 300 K
training file (written to WORKDIR/3bpa/test.extxyz, so both packages read the same file).

Each run's figures are kept in WORKDIR/<data set>/<package>.json and a later call with the same budget and seed
reuses them, so the six runs can be spread over several calls (``--packages``, one data set at a time);
``--redo`` repeats them. The table: test force MAE (meV/Å) and energy MAE (meV/atom) per package, the ratio of
the force errors (nnip / MACE), the epochs trained (MACE keeps the checkpoint of its best validation loss,
an earlier epoch), the CPU share of each run (CPU seconds / wall seconds / threads:
below about 0.9 the machine was shared) and whether nnip's last training loss was finite. For a sweep of the
defaults, ``--set KEY=VALUE`` changes one of nnip's (recorded with its figures); give each variant its own
``--workdir``, with MACE's ``mace.json`` copied in to see the ratio.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from pathlib import Path

import torch

import nnip
from extrapolation import unseen
from nnip.training.checkpoint import read_metrics_csv
from nnip.training.run import train as nnip_train
from peers import mace_accuracy

PACKAGES = ("nnip", "mace")


def data_sets(args) -> dict[str, dict]:
    """Data set key -> its label, training file, test file and validation share."""
    sets = {}
    if args.rmd17:
        sets["rmd17"] = {"label": "rMD17 ethanol", "train": args.rmd17[0], "test": args.rmd17[1], "val": 0.05}
    if args.bpa:
        sets["3bpa"] = {"label": "3BPA 300 K -> mixed T", "train": args.bpa[0], "mixed": args.bpa[1], "val": 0.1}
    if args.si:
        sets["si"] = {"label": "mlearn Si", "train": args.si[0], "test": args.si[1], "val": 0.1}
    for entry in sets.values():
        for key in ("train", "test", "mixed"):
            if key in entry:
                entry[key] = Path(entry[key]).resolve()
                if not entry[key].is_file():
                    sys.exit(f"{entry[key]}: no such file")
    return sets


def test_file(entry: dict, folder: Path) -> Path:
    """The test file of a data set; for 3BPA, the mixed set's structures not in the training file (written once)."""
    if "test" in entry:
        return entry["test"]
    path = folder / "test.extxyz"
    if not path.is_file():
        nnip.write(path, unseen(nnip.read(entry["mixed"]), nnip.read(entry["train"])))
    return path


def run_nnip(entry: dict, test: Path, folder: Path, args) -> dict:
    """Train nnip's ``args.model`` with its defaults for ``args.minutes``; its test figures."""
    config = {"seed": args.seed, "output": str(folder / "nnip_run"), "model": {"name": args.model},
              "data": {"train": str(entry["train"]), "test": str(test), "split": {"val": entry["val"]}},
              "training": {"max_time": 60 * args.minutes, "progress": False}}
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    report = nnip_train(config, args.set, overwrite=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    rows = read_metrics_csv(folder / "nnip_run" / "metrics.csv")
    last = rows[-1].get("train_loss", math.nan) if rows else math.nan
    return {"forces_mae_mev": 1000 * report["test"]["forces_mae"],
            "energy_mae_mev_per_atom": 1000 * report["test"]["energy_mae_per_atom"], "epochs": report["epochs"],
            "cpu_share": (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (wall * args.threads),
            "last_train_loss": last, "finite": math.isfinite(last)}


def run_mace(entry: dict, test: Path, folder: Path, args) -> dict:
    """mace_run_train at its reference settings for ``args.minutes``; its test figures."""
    workdir = folder / "mace_run"
    options, snapshot, share = mace_accuracy.train_for(entry["train"], test, workdir, args.minutes, args.seed,
                                                       args.threads, entry["val"])
    errors = mace_accuracy.evaluate(options, snapshot, mace_accuracy.threads_env(args.threads))
    return {"forces_mae_mev": errors["forces_mae_mev"], "energy_mae_mev_per_atom": errors["energy_mae_mev_per_atom"],
            "epochs": mace_accuracy.epochs_trained(workdir), "kept_epoch": errors["epoch"], "cpu_share": share}


def run_key(package: str, args) -> dict:
    """What a recorded run must share with this call to be reused."""
    key = {"minutes": args.minutes, "seed": args.seed, "threads": args.threads,
           "model": args.model if package == "nnip" else "MACE"}
    return {**key, "set": list(args.set)} if package == "nnip" else key


def recorded(name: str, package: str, args) -> dict | None:
    """The figures of a recorded run of this budget, seed, threads, model and ``--set`` changes; None when there
    is none."""
    path = args.workdir / name / f"{package}.json"
    if not path.is_file():
        return None
    figures, key = json.loads(path.read_text()), run_key(package, args)
    return figures if {k: figures.get(k, [] if k == "set" else None) for k in key} == key else None


def result(name: str, package: str, entry: dict, args) -> dict:
    """The figures of one run: recorded ones unless ``--redo``, else run now (and recorded)."""
    if not args.redo and (figures := recorded(name, package, args)) is not None:
        return figures
    folder = args.workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    test = test_file(entry, folder)
    print(f"{entry['label']}: training {package} for {args.minutes:g} min ...", flush=True)
    figures = (run_nnip if package == "nnip" else run_mace)(entry, test, folder, args)
    figures = {**run_key(package, args), **figures}
    (folder / f"{package}.json").write_text(json.dumps(figures, indent=2))
    return figures


def table(rows: dict[str, dict[str, dict]], sets: dict[str, dict]) -> None:
    """Print one line per data set: both packages' figures and the force-error ratio."""
    print(f"{'data set':22s} {'nnip F':>7s} {'MACE F':>7s} {'ratio':>6s} {'nnip E':>7s} {'MACE E':>7s} "
          f"{'epochs':>11s} {'CPU share':>11s} {'finite':>6s}")
    for name, runs in rows.items():
        ours, theirs = runs.get("nnip", {}), runs.get("mace", {})
        get = lambda run, key, form: format(run[key], form) if key in run else "-"  # noqa: E731
        ratio = ours["forces_mae_mev"] / theirs["forces_mae_mev"] if ours and theirs else math.nan
        print(f"{sets[name]['label']:22s} {get(ours, 'forces_mae_mev', '7.2f')} {get(theirs, 'forces_mae_mev', '7.2f')}"
              f" {ratio:6.2f} {get(ours, 'energy_mae_mev_per_atom', '7.3f')} "
              f"{get(theirs, 'energy_mae_mev_per_atom', '7.3f')} "
              f"{get(ours, 'epochs', 'd'):>5s}/{get(theirs, 'epochs', 'd'):<5s} "
              f"{get(ours, 'cpu_share', '.2f'):>5s}/{get(theirs, 'cpu_share', '.2f'):<5s} "
              f"{str(ours.get('finite', '-')):>6s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rmd17", nargs=2, metavar=("TRAIN", "TEST"))
    parser.add_argument("--3bpa", dest="bpa", nargs=2, metavar=("TRAIN_300K", "MIXED_T"))
    parser.add_argument("--si", nargs=2, metavar=("TRAIN", "TEST"), help="extxyz files (MACE reads no JSON)")
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES), choices=PACKAGES)
    parser.add_argument("--model", default="equivariant", help="nnip's model (only its name is set)")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of each run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("runs/defaults"))
    parser.add_argument("--redo", action="store_true", help="run again even where figures are recorded")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="for a sweep: change one of nnip's defaults (as `nnip train --set`), e.g. "
                             "training.loss.energy_weight=1; repeatable; give each variant its own --workdir")
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    sets = data_sets(args)
    if not sets:
        parser.error("give at least one of --rmd17, --3bpa, --si")
    torch.set_num_threads(args.threads)
    changes = "".join(", " + item for item in args.set)
    print(f"nnip {args.model} (defaults{changes}) against MACE (reference settings), {args.minutes:g} min each, "
          f"{args.threads} threads, seed {args.seed}, allocator: glibc", flush=True)
    rows = {name: {package: result(name, package, entry, args) for package in args.packages}
            for name, entry in sets.items()}
    for name in rows:  # the other package's figures, where recorded earlier
        for package in set(PACKAGES) - set(args.packages):
            if (figures := recorded(name, package, args)) is not None:
                rows[name][package] = figures
    table(rows, sets)
    print("F: test force MAE (meV/Å); E: test energy MAE (meV/atom); ratio: nnip F / MACE F; epochs and CPU share: "
          "nnip/MACE; finite: nnip's last training loss", flush=True)


if __name__ == "__main__":
    main()
