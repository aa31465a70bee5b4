"""Cost of labelling every structure from a fresh GFN2-xTB start (what nnip's oracle does) against reusing the
previous structure's wavefunction (tblite's default, which makes a label depend on what came before).

Rattled ethanol (0.05 Å), one thread; rounds alternate the two ways. Prints the median (min-max) ms per
structure of each.

Usage: OMP_NUM_THREADS=1 python benchmarks/oracle_reset.py [--structures 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time


def label_all(frames, fresh: bool) -> float:
    """Seconds to label ``frames`` with one calculator, reset before each (fresh) or not."""
    from tblite.ase import TBLite

    calculator = TBLite(method="GFN2-xTB", verbosity=0, cache_api=not fresh)
    started = time.perf_counter()
    for atoms in frames:
        atoms = atoms.copy()
        if fresh:
            calculator.reset()
        atoms.calc = calculator
        atoms.get_forces()
    return time.perf_counter() - started


def main() -> None:
    from ase.build import molecule

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--structures", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frames = []
    for k in range(args.structures):
        atoms = molecule("CH3CH2OH")
        atoms.rattle(0.05, seed=k)
        frames.append(atoms)
    times = {"reused": [], "fresh": []}
    for _ in range(args.rounds):
        for way in times:
            times[way].append(1e3 * label_all(frames, way == "fresh") / len(frames))
    for way, values in times.items():
        print(f"{way:7s} {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) ms per structure")


if __name__ == "__main__":
    main()
