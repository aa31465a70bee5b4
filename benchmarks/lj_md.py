"""Energy + forces per MD step for Lennard-Jones argon, nnip vs ASE's LennardJones calculator.

fcc argon (a = 5.26 Å, eps = 0.0104 eV, sigma = 3.40 Å, cutoff 8.5 Å, energy shifted),
velocity-Verlet steps from 100 K through each ASE calculator; nnip uses a Verlet skin,
so the cost of its (occasional) neighbour-list rebuilds is included. Reports ms per step,
atoms*steps/s, the ratio, and the fitted scaling exponent of nnip over 1e3..1e5 atoms.
Targets: exponent <= 1.1; nnip >= 10x faster than ASE at 1e4 atoms.

Runs under glibc malloc, glibc with nnip.md.allocator.retain_freed_memory(), and jemalloc (when
installed), and prints each.

Usage: python benchmarks/lj_md.py [--sizes 108 1372 10976 109744] [--steps 10] [--ase-max 10976]
                                  [--dtype float64] [--skin 0.5] [--allocator all|glibc|glibc-retain|jemalloc]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones as AseLennardJones
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

from nnip import Calculator
from nnip.md import maxwell_boltzmann
from nnip.demo import argon_potential



def _ms_per_step(atoms, calculator, steps: int) -> float:
    atoms = atoms.copy()
    atoms.calc = calculator
    maxwell_boltzmann(atoms, 100.0, seed=0)
    dynamics = VelocityVerlet(atoms, timestep=5 * fs)
    dynamics.run(1)  # warm-up: first neighbour list, allocations
    start = time.perf_counter()
    dynamics.run(steps)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[108, 1372, 10976, 109744])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--ase-max", type=int, default=10976, help="skip ASE above this many atoms")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skin", type=float, default=0.5, help="Verlet skin of nnip's neighbour list, Å")
    parser.add_argument("--allocator", default="all", choices=CHOICES)
    args = parser.parse_args()
    if rerun_under_each_allocator(args.allocator):
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"LJ argon MD step (energy+forces), {args.dtype}, skin {args.skin} Å, torch threads "
          f"{torch.get_num_threads()}, allocator: {current_allocator()}")
    print(f"{'atoms':>8} {'nnip ms':>10} {'ASE ms':>10} {'ASE/nnip':>9} {'nnip atom-steps/s':>18}")
    potential = argon_potential()  # eps 0.0104 eV, sigma 3.40 Å, cutoff 8.5 Å, shifted
    sizes, ours_ms = [], []
    for n in args.sizes:
        reps = round((n / 4) ** (1 / 3))
        atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(reps)
        ours = _ms_per_step(atoms, Calculator(potential, dtype=args.dtype, skin=args.skin), args.steps)
        ase = float("nan")
        if len(atoms) <= args.ase_max:
            ase = _ms_per_step(atoms, AseLennardJones(epsilon=0.0104, sigma=3.40, rc=potential.cutoff), max(1, args.steps // 2))
        sizes.append(len(atoms))
        ours_ms.append(ours)
        print(f"{len(atoms):>8} {ours:>10.2f} {ase:>10.1f} {ase / ours:>9.1f} {len(atoms) / ours * 1e3:>18.3g}")
    fit = [(s, t) for s, t in zip(sizes, ours_ms) if 1e3 <= s <= 1.2e5]
    if len(fit) >= 2:
        slope = np.polyfit(np.log([s for s, _ in fit]), np.log([t for _, t in fit]), 1)[0]
        print(f"scaling exponent of nnip over {fit[0][0]}..{fit[-1][0]} atoms: {slope:.3f}")


if __name__ == "__main__":
    main()
