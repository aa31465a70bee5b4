"""Neighbour-list build time: nnip (including conversion to torch tensors) vs raw vesin vs ASE.

Periodic fcc Cu (a = 3.61 Å) at a 5 Å cutoff. Timings are interleaved (ours and vesin in
alternating order, then ASE; repeated) and the median is reported, since this machine's timings drift by up to 40%
between runs. Target: ours within 1.3x of raw vesin at every size.

Runs under glibc malloc, glibc with nnip.md.allocator.retain_freed_memory(), and jemalloc (when
installed), and prints each.

Usage: python benchmarks/neighbors.py [--sizes 256 2048 16384 131072] [--repeats 5] [--ase-max 131072]
                                      [--allocator all|glibc|glibc-retain|jemalloc]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import vesin
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list

from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

from nnip.data import neighbor_list


def _time(fn, min_seconds: float = 0.05) -> float:
    """Mean seconds per call over enough calls to last ``min_seconds``."""
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2048, 16384, 131072])
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ase-max", type=int, default=131072, help="skip ASE above this many atoms")
    parser.add_argument("--allocator", default="all", choices=CHOICES)
    args = parser.parse_args()
    if rerun_under_each_allocator(args.allocator):
        return
    print(f"neighbour list, fcc Cu, cutoff {args.cutoff} Å, median of {args.repeats}, "
          f"allocator: {current_allocator()}")
    print(f"{'atoms':>8} {'pairs':>10} {'nnip ms':>10} {'vesin ms':>10} {'ASE ms':>10} {'nnip/vesin':>11} {'ASE/nnip':>9}")
    for n in args.sizes:
        reps = round((n / 4) ** (1 / 3))
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
        atoms.rattle(0.05, seed=0)
        positions, cell, pbc = atoms.positions, atoms.cell.array, atoms.pbc

        def ours():
            return neighbor_list(positions, cell, pbc, args.cutoff)

        def raw():
            return vesin.NeighborList(cutoff=args.cutoff, full_list=True).compute(positions, cell, True, "ijS")

        def ase():
            return ase_neighbor_list("ijS", atoms, args.cutoff)

        pairs = ours()[0].shape[1]
        raw()  # warm-up
        times = {"ours": [], "vesin": [], "ase": []}
        for repeat in range(args.repeats):
            order = [("ours", ours), ("vesin", raw)]
            for name, fn in order if repeat % 2 == 0 else order[::-1]:  # alternate who runs first
                times[name].append(_time(fn))
            if len(atoms) <= args.ase_max:
                times["ase"].append(_time(ase))
        med = {k: statistics.median(v) * 1e3 if v else float("nan") for k, v in times.items()}
        print(f"{len(atoms):>8} {pairs:>10} {med['ours']:>10.2f} {med['vesin']:>10.2f} {med['ase']:>10.1f} "
              f"{med['ours'] / med['vesin']:>11.2f} {med['ase'] / med['ours']:>9.1f}")


if __name__ == "__main__":
    main()
