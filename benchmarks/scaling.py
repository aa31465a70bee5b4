"""Scaling with system size and the fraction of this machine's matmul peak that each model reaches.

    python benchmarks/scaling.py [--models lj schnet painn equivariant] [--sizes 100 1000 10000 100000]

For periodic fcc Cu cells of about each size: ms per energy+forces call (neighbour list built
once, as between rebuilds in MD), the FLOPs of one call counted by torch.utils.flop_counter
(matrix products and convolutions; element-wise work is not counted, so the fraction is a
lower bound), and the achieved GFLOP/s as a fraction of the dense float32 matmul peak
measured in the same run. The scaling exponent is the least-squares slope of log time
against log atoms over the sizes given. Allocator as the process has it (glibc unless run
under jemalloc, see README).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from ase.build import bulk
from torch.utils.flop_counter import FlopCounterMode

from nnip.data.graph import AtomicGraph
from nnip.potentials import build_potential

MODELS = {
    "lj": {"name": "lj", "config": {"cutoff": 5.0, "sigma": 2.3, "epsilon": 0.4}},
    "schnet": {"name": "schnet", "config": {"cutoff": 5.0, "features": 64, "interactions": 3, "basis": 50}},
    "painn": {"name": "painn", "config": {"cutoff": 5.0, "features": 64, "interactions": 3, "basis": 20}},
    "equivariant": {"name": "equivariant", "config": {"cutoff": 5.0, "channels": 32, "l_max": 2, "hidden_l": 1,
                                                      "correlation": 3, "layers": 2, "basis": 8}},
}


def matmul_peak(dtype=torch.float32, n: int = 2048, seconds: float = 2.0) -> float:
    """Dense matmul GFLOP/s of this process's threads (best of repeated n x n products)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best, started = 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        begun = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - begun) / 1e9)
    return best


def copper(n: int):
    repeat = max(2, round(n ** (1 / 3)))  # the 1-atom primitive cell: n = k^3 atoms exactly
    atoms = bulk("Cu", "fcc", a=3.61).repeat(repeat)
    atoms.rattle(0.05, seed=1)
    return atoms


def time_call(potential, graph, budget: float = 3.0) -> float:
    """Median seconds per energy+forces call, at least 3 calls or ``budget`` seconds."""
    potential(graph, compute_forces=True)
    times = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < budget:
        begun = time.perf_counter()
        potential(graph, compute_forces=True)
        times.append(time.perf_counter() - begun)
        if len(times) >= 50:
            break
    return statistics.median(times)


def flops_of(potential, graph) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        potential(graph, compute_forces=True)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10000, 100000])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(f"float32 matmul peak {peak:.1f} GFLOP/s on {args.threads} threads, torch {torch.__version__}")
    print(f"{'model':<13}{'atoms':>8}{'ms/call':>11}{'atoms/s':>11}{'GFLOP/call':>12}{'GFLOP/s':>9}{'of peak':>9}")
    for model in args.models:
        spec = MODELS[model]
        potential = build_potential({"elements": [29], "terms": [spec]})
        potential = (potential if model == "lj" else potential.float()).eval()
        sizes, seconds = [], []
        for n in args.sizes:
            atoms = copper(n)
            graph = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                            potential.cutoff, half_list=potential.pairwise, dtype=potential.dtype)
            t = time_call(potential, graph)
            flops = flops_of(potential, graph)
            sizes.append(len(atoms))
            seconds.append(t)
            print(f"{model:<13}{len(atoms):>8}{1000 * t:>11.2f}{len(atoms) / t:>11.0f}{flops / 1e9:>12.3f}"
                  f"{flops / t / 1e9:>9.2f}{flops / t / 1e9 / peak:>9.1%}", flush=True)
        if len(sizes) > 1:
            slope = np.polyfit(np.log(sizes), np.log(seconds), 1)[0]
            print(f"{model:<13} scaling exponent {slope:.2f} over {sizes[0]}..{sizes[-1]} atoms", flush=True)


if __name__ == "__main__":
    main()
