"""nnip against another checkout of nnip, in one run: ms per energy+forces call and peak memory of each row.

    python benchmarks/before_after.py --before ../nnip-before [--rounds 9] [--seconds 0.5] [--rows inference scaling] [--models schnet ...]
    python benchmarks/before_after.py --before ../nnip-before --ops

Two worker processes, one per checkout (its own src/ first on the path), answer the same requests
in alternating rounds, so that the machine's drift (its timings vary by up to 40 % from run to run)
hits both alike; each row gets two fresh workers, so that their peak memory is that row's own.
Rows: the models and structures of benchmarks/inference.py (ethanol and rattled
diamond Si cells, float32) and of benchmarks/scaling.py (fcc Cu, about 10^3 and 10^4 atoms, float32),
every model frozen as nnip.Calculator runs it, the neighbour list built once per row. For each row
the table gives the median and range of the per-round times, the ratio before/after (> 1: this
checkout is faster) and each worker's peak resident memory (VmHWM: building the model and graph,
the warm-up and the timed calls; Linux). Threads: 2; allocator: as started (glibc
unless LD_PRELOAD says otherwise). ``--ops`` compares instead, per row, the operations of one call
(torch.profiler, with their input shapes): those on tensors of 100 rows or more must match in
kind, shape and count (the arithmetic is the same); the table gives how many operations each
checkout runs in all. The workers build their graphs through whichever neighbour-list
API their checkout has, so checkouts from before ``Potential.neighbor_request`` work too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CUTOFF = 5.0
#: the models of benchmarks/inference.py and benchmarks/scaling.py (build_potential term specs)
INFERENCE = {
    "lj": [{"name": "lj", "config": {"cutoff": CUTOFF}}],
    "schnet": [{"name": "schnet", "config": {"cutoff": CUTOFF, "features": 64, "interactions": 3, "basis": 50}}],
    "behler_parrinello": [{"name": "behler_parrinello", "config": {"cutoff": CUTOFF, "radial": 16,
                                                                   "angular_zetas": [1.0, 2.0, 4.0],
                                                                   "hidden": [64, 64]}}],
    "schnet+electrostatics": [{"name": "schnet", "config": {"cutoff": CUTOFF}},
                              {"name": "electrostatics", "config": {"cutoff": CUTOFF}}],
    "painn": [{"name": "painn", "config": {"cutoff": CUTOFF, "features": 64, "interactions": 3, "basis": 20}}],
    "equivariant": [{"name": "equivariant", "config": {"cutoff": CUTOFF, "channels": 32, "l_max": 2,
                                                       "hidden_l": 1, "correlation": 3, "layers": 2, "basis": 8}}],
}
SCALING = {
    "lj": [{"name": "lj", "config": {"cutoff": 5.0, "sigma": 2.3, "epsilon": 0.4}}],
    "schnet": INFERENCE["schnet"], "painn": INFERENCE["painn"], "equivariant": INFERENCE["equivariant"],
}
EWALD_MAX_ATOMS = 600  # as benchmarks/inference.py: Ewald without a mesh costs O(N K)


def rows(kinds: list[str]) -> list[tuple[str, list, str, dict]]:
    """(model name, term specs, structure name, structure request) of every row."""
    out = []
    if "inference" in kinds:
        structures = [("ethanol (9)", {"kind": "ethanol"})] + [
            (f"Si ({n})", {"kind": "si", "repeat": round((n / 8) ** (1 / 3))}) for n in (64, 512, 4096)]
        for name, structure in structures:
            for model, terms in INFERENCE.items():
                if "electrostatics" in model and structure.get("repeat", 0) ** 3 * 8 > EWALD_MAX_ATOMS:
                    continue
                out.append((model, terms, name, structure))
    if "scaling" in kinds:
        for n in (1000, 10000):
            for model, terms in SCALING.items():
                out.append((model, terms, f"Cu (~{n})", {"kind": "cu", "atoms": n}))
    return out


# -- worker (runs inside one checkout) --------------------------------------------------------------
def _structure(request: dict):
    from ase.build import bulk, molecule

    if request["kind"] == "ethanol":
        return molecule("CH3CH2OH")
    if request["kind"] == "si":
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(request["repeat"])
        atoms.rattle(0.05, seed=1)
        return atoms
    repeat = max(2, round(request["atoms"] ** (1 / 3)))  # as benchmarks/scaling.py's copper(): k^3 atoms
    atoms = bulk("Cu", "fcc", a=3.61).repeat(repeat)
    atoms.rattle(0.05, seed=1)
    return atoms


def _graph(potential, atoms, dtype):
    from nnip.data.graph import AtomicGraph

    arrays = (atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc)
    if hasattr(potential, "neighbor_request"):
        return AtomicGraph.from_arrays(*arrays, potential.neighbor_request(), dtype=dtype)
    return AtomicGraph.from_arrays(*arrays, potential.cutoff, half_list=potential.half_list, dtype=dtype)


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def worker() -> None:
    """Answer one JSON request a line about one row: build its model and graph at the first, time ``calls`` calls."""
    import torch

    from nnip.potentials import build_potential

    torch.set_num_threads(2)
    potential = graph = None
    for line in sys.stdin:
        request = json.loads(line)
        if potential is None:  # one row per worker: its peak memory is that row's own
            atoms = _structure(request["structure"])
            elements = sorted(set(atoms.numbers.tolist()))
            potential = build_potential({"elements": elements, "terms": request["terms"]})
            potential = (potential if request["terms"][0]["name"] == "lj" else potential.float())
            potential = potential.eval().requires_grad_(False)
            graph = _graph(potential, atoms, potential.dtype)
            potential(graph, compute_forces=True)  # warm-up
        if request.get("ops"):
            print(json.dumps(_operations(potential, graph)), flush=True)
            continue
        started = time.perf_counter()
        for _ in range(request["calls"]):
            potential(graph, compute_forces=True)
        ms = 1000 * (time.perf_counter() - started) / request["calls"]
        print(json.dumps({"ms": ms, "peak_mb": _peak_mb()}), flush=True)


def _operations(potential, graph) -> dict:
    """The operations of one energy+forces call: all of them counted, and those on tensors of 100 rows or more
    as sorted (name, count, input shapes)."""
    from torch.profiler import profile

    with profile(record_shapes=True) as prof:
        potential(graph, compute_forces=True)
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.key.startswith(("aten::", "autograd"))]
    large = sorted([e.key, e.count, str(e.input_shapes)] for e in events
                   if any(isinstance(s, list) and s and s[0] >= 100 for s in e.input_shapes))
    return {"total": sum(e.count for e in events), "large": large}


# -- driver -----------------------------------------------------------------------------------------
class Worker:
    def __init__(self, checkout: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(checkout / "src"), "PYTHONWARNINGS": "ignore"}
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker"], cwd=checkout,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("a worker died (run the row by hand to see why)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="the other checkout (its src/ is used)")
    parser.add_argument("--after", type=Path, default=ROOT, help="this checkout by default")
    parser.add_argument("--rows", nargs="+", default=["inference", "scaling"], choices=["inference", "scaling"])
    parser.add_argument("--models", nargs="+", default=None, help="only these models (default: all)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=0.5, help="about this long per measurement (at least a call)")
    parser.add_argument("--ops", action="store_true", help="compare the operations of a call instead of timing it")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    if args.before is None:
        parser.error("--before is required")
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    if args.ops:
        compare_operations(checkouts, args)
        return
    print(f"ms per energy+forces call, float32 (LJ float64), frozen, 2 threads, allocator: "
          f"{os.environ.get('LD_PRELOAD') or 'glibc malloc'}; medians (min-max) of {args.rounds} alternated rounds; "
          f"before: {args.before}, after: {args.after}")
    print(f"{'model':<23}{'structure':<13}{'before ms':>22}{'after ms':>22}{'before/after':>13}"
          f"{'before MB':>10}{'after MB':>10}")
    for model, terms, name, structure in rows(args.rows):
        if args.models and model not in args.models:
            continue
        times, peaks = measure_row(checkouts, {"terms": terms, "structure": structure}, args.rounds, args.seconds)
        cells = {w: f"{statistics.median(t):9.2f} ({min(t):.2f}-{max(t):.2f})" for w, t in times.items()}
        ratio = statistics.median(times["before"]) / statistics.median(times["after"])
        print(f"{model:<23}{name:<13}{cells['before']:>22}{cells['after']:>22}{ratio:>13.2f}"
              f"{peaks['before']:>10.0f}{peaks['after']:>10.0f}", flush=True)


def compare_operations(checkouts: dict[str, Path], args) -> None:
    """Per row: do the large operations match, and how many operations does each checkout run in a call."""
    print(f"operations of one energy+forces call, before: {args.before}, after: {args.after}")
    print(f"{'model':<23}{'structure':<13}{'large ops equal':>16}{'large ops':>10}{'before ops':>11}{'after ops':>10}")
    for model, terms, name, structure in rows(args.rows):
        if args.models and model not in args.models:
            continue
        found = {}
        for which, checkout in checkouts.items():
            worker_ = Worker(checkout)
            try:
                found[which] = worker_.ask({"terms": terms, "structure": structure, "ops": True})
            finally:
                worker_.close()
        same = found["before"]["large"] == found["after"]["large"]
        print(f"{model:<23}{name:<13}{'yes' if same else 'NO':>16}{sum(c for _, c, _ in found['after']['large']):>10}"
              f"{found['before']['total']:>11}{found['after']['total']:>10}", flush=True)


def measure_row(checkouts: dict[str, Path], row: dict, rounds: int,
                seconds: float) -> tuple[dict[str, list[float]], dict[str, float]]:
    """ms per call of each round and the peak MB of each checkout's fresh worker, the two alternated."""
    workers = {which: Worker(checkout) for which, checkout in checkouts.items()}
    times: dict[str, list[float]] = {which: [] for which in workers}
    peak = {}
    try:
        first = workers["before"].ask({**row, "calls": 1})["ms"]
        workers["after"].ask({**row, "calls": 1})  # both built and warm
        calls = max(1, min(100, round(1000 * seconds / max(first, 1e-3))))  # about ``seconds`` a measurement
        for round_ in range(rounds):
            for which in (("before", "after") if round_ % 2 == 0 else ("after", "before")):
                answer = workers[which].ask({**row, "calls": calls})
                times[which].append(answer["ms"])
                peak[which] = answer["peak_mb"]
    finally:
        for worker_ in workers.values():
            worker_.close()
    return times, peak


if __name__ == "__main__":
    main()
