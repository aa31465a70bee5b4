"""Scaling with system size and the fraction of this machine's matmul peak that each model reaches.

    python benchmarks/scaling.py [--models lj schnet painn equivariant] [--sizes 100 1000 10000 100000]
                                 [--dtype float32|float64] [--compile] [--memory auto|keep|recompute|stream]
                                 [--allocator glibc|glibc-retain|jemalloc|all] [--timeout SECONDS]

For periodic fcc Cu cells of about each size: ms per energy+forces call (neighbour list built
once, as between rebuilds in MD), the FLOPs of one call counted with torch.utils.flop_counter's
formulas (matrix products and convolutions; element-wise work is not counted, so the fraction
is a lower bound), and the achieved GFLOP/s as a fraction of the dense matmul peak in the
model's dtype, measured in the same run. The scaling exponent is the least-squares slope of
log time against log atoms over the sizes given. Each row runs in a fresh process, so its
peak RSS (MiB, of the timed calls) is that row's own. ``--memory`` sets the potential's memory
setting (nnip.nn.execution.Memory; default "auto": on the CPU SchNet, PaiNN and the equivariant
model stream their messages over chunks of edges above 32 MiB per per-edge tensor, and the FLOPs
then include the recomputation of the backward pass).
``--allocator`` reruns the script under each allocator setting (benchmarks/_allocator.py);
without it the process keeps its own (glibc unless started under jemalloc). ``--compile``
times the terms compiled (Potential.compile_terms; the warm-up call pays for compiling, and
FLOPs are then counted on the eager model keeping its activations, as compiled terms do).
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from ase.build import bulk
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

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


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MatmulFlops(TorchDispatchMode):
    """Counts the FLOPs of the ops torch.utils.flop_counter has formulas for (matrix products, convolutions).

    FlopCounterMode itself also decomposes every op it has no formula for, which here about
    doubled the peak memory of a call; this mode runs each op as it is and only adds up.
    """

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def flops_of(potential, graph) -> int:
    counter = MatmulFlops()
    with counter:
        potential(graph, compute_forces=True)
    return counter.total


ROW = "row: "  # marks a child's result line


def measure(model: str, n: int, dtype: torch.dtype, compile: bool, memory: str) -> dict:
    """One row: seconds per call, FLOPs per call and peak RSS of the timed calls for ``model`` at ``n`` atoms."""
    potential = build_potential({"elements": [29], "terms": [MODELS[model]]})
    # frozen, as nnip.Calculator runs a model: forces need gradients by the positions only
    potential = (potential if model == "lj" else potential.to(dtype)).eval().requires_grad_(False)
    potential.memory = memory
    timed = copy.deepcopy(potential).compile_terms() if compile else potential
    atoms = copper(n)
    graph = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                    potential.neighbor_request(), dtype=potential.dtype)
    seconds = time_call(timed, graph)
    rss = peak_rss_mb()  # before the eager FLOP-counting call, which may need more with --compile
    if compile:  # compiled terms neither recompute nor stream: count the eager model's FLOPs the same way
        potential.memory = "keep"
    flops = flops_of(potential, graph)
    return {"atoms": len(atoms), "seconds": seconds, "flops": flops, "rss_mb": rss}


def measure_in_child(model: str, n: int, args) -> dict | None:
    """:func:`measure` in a fresh process, so each row's peak memory is its own; None (and why) if it failed."""
    command = [sys.executable, __file__, "--one", model, str(n), "--dtype", args.dtype, "--threads", str(args.threads)]
    command += ["--compile"] * args.compile + ["--memory", args.memory]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        print(f"{model} at {n} atoms: no result within {args.timeout} s", file=sys.stderr)
        return None
    rows = [line[len(ROW):] for line in done.stdout.splitlines() if line.startswith(ROW)]
    if done.returncode != 0 or not rows:
        why = (f"killed by signal {-done.returncode} (SIGKILL: out of memory?)" if done.returncode < 0
               else f"exit status {done.returncode}")
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        print(f"{model} at {n} atoms: {why}\n{tail}", file=sys.stderr)
        return None
    return json.loads(rows[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10000, 100000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                        help="dtype of the learned models (LJ always runs in float64)")
    parser.add_argument("--compile", action="store_true", help="time the terms compiled (torch.compile)")
    parser.add_argument("--allocator", default=None, choices=CHOICES,
                        help="rerun under these allocator settings (default: as the process was started)")
    parser.add_argument("--memory", default="auto", choices=["auto", "keep", "recompute", "stream"],
                        help="the potential's memory setting (nnip.nn.execution.Memory)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per row")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "ATOMS"), help=argparse.SUPPRESS)  # a child's row
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    if args.one:
        current_allocator()  # applies glibc-retain in the process that measures
        print(ROW + json.dumps(measure(args.one[0], int(args.one[1]), dtype, args.compile, args.memory)))
        return
    if args.allocator is not None and rerun_under_each_allocator(args.allocator):
        return
    peak = matmul_peak(dtype)
    print(f"{args.dtype} matmul peak {peak:.1f} GFLOP/s on {args.threads} threads, torch {torch.__version__}, "
          f"allocator: {current_allocator()}{', compiled' if args.compile else ''}"
          f", memory {args.memory}"
          "; one process per row")
    print(f"{'model':<13}{'atoms':>8}{'ms/call':>11}{'atoms/s':>11}{'GFLOP/call':>12}{'GFLOP/s':>9}{'of peak':>9}"
          f"{'peak RSS MB':>13}")
    for model in args.models:
        sizes, seconds = [], []
        for n in sorted(args.sizes):
            row = measure_in_child(model, n, args)
            if row is None:
                print(f"{model:<13}{n:>8}  failed (see above)", flush=True)
                continue
            t, flops = row["seconds"], row["flops"]
            sizes.append(row["atoms"])
            seconds.append(t)
            print(f"{model:<13}{row['atoms']:>8}{1000 * t:>11.2f}{row['atoms'] / t:>11.0f}{flops / 1e9:>12.3f}"
                  f"{flops / t / 1e9:>9.2f}{flops / t / 1e9 / peak:>9.1%}{row['rss_mb']:>13.0f}", flush=True)
        if len(sizes) > 1:
            slope = np.polyfit(np.log(sizes), np.log(seconds), 1)[0]
            print(f"{model:<13} scaling exponent {slope:.2f} over {sizes[0]}..{sizes[-1]} atoms", flush=True)


if __name__ == "__main__":
    main()
