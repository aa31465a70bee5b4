"""MACE's accuracy at fixed wall time: mace_run_train for M minutes, test errors at each mark.

    bash benchmarks/peers/setup.sh     # once: .venv-mace
    python benchmarks/peers/mace_accuracy.py --train ../shared/data/rmd17_ethanol/train.xyz \
        --test ../shared/data/rmd17_ethanol/test_MD.xyz --minutes 30 120

The settings are the issue's reference run, matched to ``benchmarks/rmd17.py``'s budget:
mace_run_train 0.3.16, 64 channels, max_L 1 (64x0e+64x1o), correlation 3, 2 interactions,
r_max 5 Å, float32, batch 5, EMA 0.99, E0s averaged over the training set, 5 % of the
training file held out for validation (50 of rMD17's 1000; ``--valid-fraction``), plateau schedule and loss weights
left at MACE's defaults, ``--threads`` torch threads (2).

mace_run_train has no wall-clock limit, so this script starts it with ``--keep_checkpoints``
(MACE saves one, with the EMA weights, each time the validation loss improves), copies the
newest complete checkpoint aside at every mark of ``--minutes`` (with the run paused
meanwhile) and stops the run at the last mark.
For each copy it runs mace_run_train once more with ``--restart_latest`` and an epoch limit
already reached, so MACE itself only rebuilds the model, loads the checkpoint and writes
``<name>.model``; mace_eval_configs then predicts the test file, and the errors are computed
here with the same definitions as nnip's (energy MAE per structure in meV, force MAE per
component in meV/Å). It also prints the share of the CPU the run had: other work on the
machine slows MACE down and makes the comparison unfair to it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
from ase.io import read

HERE = Path(__file__).resolve().parent
MACE_BIN = HERE / ".venv-mace" / "bin"
NAME = "mace_ethanol"


def mace_arguments(train: Path, test: Path, workdir: Path, seed: int, checkpoints: Path,
                   valid_fraction: float = 0.05) -> list[str]:
    """The mace_run_train command line of the reference run (see the module docstring)."""
    return [
        str(MACE_BIN / "mace_run_train"), f"--name={NAME}", f"--seed={seed}",
        f"--train_file={train}", f"--valid_fraction={valid_fraction}", f"--test_file={test}",
        "--energy_key=energy", "--forces_key=forces", "--E0s=average",
        "--model=MACE", "--num_channels=64", "--max_L=1", "--correlation=3", "--num_interactions=2",
        "--r_max=5.0", "--default_dtype=float32", "--batch_size=5", "--valid_batch_size=10",
        "--ema", "--ema_decay=0.99", "--device=cpu", "--keep_checkpoints", "--save_cpu",
        f"--work_dir={workdir}", f"--checkpoints_dir={checkpoints}",
        f"--model_dir={workdir}", f"--log_dir={workdir / 'logs'}", f"--results_dir={workdir / 'results'}",
    ]


def epoch_of(checkpoint: Path) -> int:
    return int(checkpoint.stem.rsplit("epoch-", 1)[1].split("_")[0])


def newest_checkpoint(directory: Path) -> Path | None:
    """The complete checkpoint of the highest epoch in ``directory`` (None before MACE saved one).

    torch.save writes a zip archive whose directory comes last, so a file MACE is still writing
    fails the zip check and the one before it is taken.
    """
    for path in sorted(directory.glob(f"{NAME}_run-*_epoch-*.pt"), key=epoch_of, reverse=True):
        try:
            with zipfile.ZipFile(path) as archive:
                if archive.testzip() is None:
                    return path
        except (zipfile.BadZipFile, OSError):
            continue
    return None


def epochs_trained(workdir: Path) -> int:
    """Epochs MACE completed in ``workdir``: the epoch index of its last optimisation step (counted from 0)."""
    last = 0
    for path in (workdir / "results").glob(f"{NAME}_run-*_train.txt"):
        for line in path.read_text().splitlines():
            if '"mode": "opt"' in line:
                last = max(last, int(line.rsplit('"epoch":', 1)[1].strip(" }")))
    return last


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def train(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> list[tuple[float, Path, float]]:
    """Run mace_run_train, copy the newest checkpoint at each mark, stop at the last one.

    Returns (minutes, snapshot folder, CPU share) per mark; the CPU share is the run's CPU seconds over
    wall seconds times ``args.threads``.
    """
    command = mace_arguments(args.train, args.test, workdir, args.seed, workdir / "checkpoints", args.valid_fraction)
    command.append("--max_num_epochs=100000")
    log = open(workdir / "train.log", "w")
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    snapshots, cpu = [], 0.0
    try:
        for minutes in sorted(args.minutes):
            while time.monotonic() - start < 60.0 * minutes:
                if process.poll() is not None:
                    raise SystemExit(f"mace_run_train stopped early (rc {process.returncode}): see {log.name}")
                cpu = cpu_seconds(process.pid)
                time.sleep(min(5.0, max(0.0, 60.0 * minutes - (time.monotonic() - start))))
            process.send_signal(signal.SIGSTOP)  # paused: the checkpoint found complete stays so while copied
            try:
                wall = time.monotonic() - start
                newest = newest_checkpoint(workdir / "checkpoints")
                if newest is None:
                    raise SystemExit(f"no checkpoint after {minutes} minutes: see {log.name}")
                target = workdir / f"after_{minutes:g}min"
                target.mkdir(exist_ok=True)
                shutil.copy2(newest, target / newest.name)
            finally:
                process.send_signal(signal.SIGCONT)
            share = cpu / (wall * args.threads)
            print(f"{minutes:g} min: {newest.name} (CPU {cpu:.0f} s of {wall:.0f} s wall x {args.threads} threads "
                  f"= {share:.0%})", flush=True)
            snapshots.append((minutes, target, share))
    finally:
        process.terminate()
        process.wait()
        log.close()
    return snapshots


def require_mace() -> None:
    """Exit with a one-line message when .venv-mace is missing."""
    if not (MACE_BIN / "mace_run_train").exists():
        sys.exit(f"{MACE_BIN / 'mace_run_train'} not found: run `bash benchmarks/peers/setup.sh` first")


def threads_env(threads: int) -> dict[str, str]:
    """The environment of a MACE subprocess limited to ``threads`` threads."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def fresh_folder(folder: Path) -> None:
    """An empty ``folder`` for a new MACE run (its old contents removed), once MACE is known to be installed."""
    require_mace()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def train_for(train_file: Path, test: Path, folder: Path, minutes: float, seed: int, threads: int,
              valid_fraction: float) -> tuple[argparse.Namespace, Path, float]:
    """mace_run_train in a fresh ``folder`` for ``minutes``: (its options, the snapshot folder, CPU share)."""
    fresh_folder(folder)
    options = argparse.Namespace(train=train_file, test=test, minutes=[minutes], seed=seed, threads=threads,
                                 valid_fraction=valid_fraction)
    [(_, snapshot, share)] = train(options, folder, threads_env(threads))
    return options, snapshot, share


def train_epochs(train_file: Path, test: Path, folder: Path, epochs: int, seed: int, threads: int,
                 valid_fraction: float) -> Path:
    """mace_run_train in a fresh ``folder`` for ``epochs`` epochs (its speed does not matter: for runs that share
    the cores); returns MACE's model file."""
    fresh_folder(folder)
    command = mace_arguments(train_file, test, folder, seed, folder / "checkpoints", valid_fraction)
    with open(folder / "train.log", "w") as log:
        subprocess.run(command + [f"--max_num_epochs={epochs}"], stdout=log, stderr=subprocess.STDOUT,
                       env=threads_env(threads), check=True)
    return folder / (NAME + ".model")


def rebuild(args: argparse.Namespace, snapshot: Path, env: dict[str, str]) -> Path:
    """MACE's own model file, built by mace_run_train from the checkpoint in ``snapshot`` (module docstring)."""
    epoch = epoch_of(newest_checkpoint(snapshot))
    model_dir = snapshot / "model"
    command = mace_arguments(args.train, args.test, snapshot, args.seed, snapshot, args.valid_fraction)
    command = [c for c in command if not c.startswith(("--test_file", "--model_dir"))]
    command += [f"--model_dir={model_dir}", "--restart_latest", f"--max_num_epochs={epoch}"]
    with open(snapshot / "rebuild.log", "w") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=True)
    return model_dir / (NAME + ".model")


def predict(model: Path, configs: Path, output: Path, env: dict[str, str]) -> list:
    """mace_eval_configs on ``configs``: the structures with info ``MACE_energy`` (eV), arrays ``MACE_forces``."""
    subprocess.run([str(MACE_BIN / "mace_eval_configs"), f"--configs={configs}", f"--model={model}",
                    f"--output={output}", "--default_dtype=float32", "--device=cpu"],
                   stdout=subprocess.DEVNULL, check=True, env=env)
    return read(output, ":")


def evaluate(args: argparse.Namespace, snapshot: Path, env: dict[str, str]) -> dict[str, float]:
    """Test errors of the checkpoint in ``snapshot``: energy MAE per structure (meV) and per atom (meV/atom),
    force MAE per component (meV/Å), and the checkpoint's epoch."""
    prediction = predict(rebuild(args, snapshot, env), args.test, snapshot / "test_predicted.xyz", env)
    reference = read(args.test, ":")
    energy = np.array([r.get_potential_energy() - p.info["MACE_energy"] for r, p in zip(reference, prediction)])
    atoms = np.array([len(r) for r in reference])
    forces = [(r.get_forces() - p.arrays["MACE_forces"]).ravel() for r, p in zip(reference, prediction)]
    return {"energy_mae_mev": 1000 * float(np.mean(np.abs(energy))),
            "energy_mae_mev_per_atom": 1000 * float(np.mean(np.abs(energy / atoms))),
            "forces_mae_mev": 1000 * float(np.mean(np.abs(np.concatenate(forces)))),
            "epoch": epoch_of(newest_checkpoint(snapshot))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, required=True, help="training file (extxyz, energy and forces)")
    parser.add_argument("--test", type=Path, required=True, help="test file (extxyz, energy and forces)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[30.0], help="wall-clock marks (min)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/mace_accuracy"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--valid-fraction", type=float, default=0.05, help="share of --train held out by MACE")
    args = parser.parse_args()
    require_mace()
    for path in (args.train, args.test):
        if not path.is_file():
            sys.exit(f"{path}: no such file")
    args.train, args.test = args.train.resolve(), args.test.resolve()
    workdir = args.workdir.resolve()
    if workdir.exists():
        sys.exit(f"{workdir} exists: choose another --workdir or remove it")
    workdir.mkdir(parents=True)
    env = threads_env(args.threads)
    for minutes, snapshot, _ in train(args, workdir, env):
        try:
            errors = evaluate(args, snapshot, env)
        except subprocess.CalledProcessError as error:
            print(f"MACE after {minutes:g} min: evaluation failed ({error}); see {snapshot}/rebuild.log")
            continue
        print(f"MACE after {minutes:g} min ({newest_checkpoint(snapshot).name}): "
              f"test force MAE {errors['forces_mae_mev']:.2f} meV/Å, energy MAE {errors['energy_mae_mev']:.2f} meV",
              flush=True)


if __name__ == "__main__":
    main()
