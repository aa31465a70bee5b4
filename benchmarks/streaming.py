"""Streamed against kept messages (nnip.nn.execution, memory "stream" and "keep"), alternated in one process.

    python benchmarks/streaming.py --model schnet|painn|equivariant --atoms 10648 --rounds 3 [--chunks 1 4 16]
                                   [--dtype float32|float64]
    LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 python benchmarks/streaming.py ...

One model of benchmarks/scaling.py (frozen, as nnip.Calculator runs it; float32 by default) on one
periodic fcc Cu cell, timed per energy+forces call with streaming off and forced on with
each chunk size (MiB), the settings alternated in every round so that the machine's drift
hits them alike; prints medians and all times, and the process's peak RSS (of both
settings together: the scaling rows give each its own). Forces are checked to agree.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import torch

from scaling import MODELS, copper

from nnip.data.graph import AtomicGraph
from nnip.nn.execution import CHUNK_BYTES, Memory
from nnip.potentials import build_potential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["schnet", "painn", "equivariant"], default="schnet")
    parser.add_argument("--atoms", type=int, default=10648)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chunks", type=float, nargs="+", default=[CHUNK_BYTES / 2**20],
                        help="chunk sizes to time, MiB of the widest per-edge tensor")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    potential = build_potential({"elements": [29], "terms": [MODELS[args.model]]}).to(dtype).eval()
    potential.requires_grad_(False)
    atoms = copper(args.atoms)
    request = potential.neighbor_request()
    graph = AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc, request, dtype=dtype)
    preloaded = os.environ.get("LD_PRELOAD", "") or "none (glibc malloc)"
    print(f"{args.model} ({args.dtype}) on {len(atoms)} Cu atoms, {graph.edge_index.shape[1]} "
          f"{'edges' if request.full else 'pairs'}; LD_PRELOAD: {preloaded}")
    settings = {"not streamed": Memory("keep"),
                **{f"streamed, {c:g} MiB chunks": Memory("stream", chunk_mib=c) for c in args.chunks}}
    times: dict[str, list[float]] = {name: [] for name in settings}
    reference = None
    for round_ in range(args.rounds):
        for name, memory in settings.items():
            potential.memory = memory
            if round_ == 0:
                potential(graph, compute_forces=True)  # warm-up
            started = time.perf_counter()
            forces = potential(graph, compute_forces=True)["forces"]
            times[name].append(time.perf_counter() - started)
            if reference is None:
                reference = forces
            elif not torch.allclose(forces, reference, atol=1e-4):
                raise SystemExit(f"{name}: forces differ from the unstreamed ones")
    for name, seconds in times.items():
        print(f"  {name:<28} median {1000 * statistics.median(seconds):9.1f} ms   all "
              + ", ".join(f"{1000 * t:.1f}" for t in seconds))
    print(f"  peak RSS of the process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
