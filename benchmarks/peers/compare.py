"""nnip against the peer packages, side by side: ms per energy+forces call of matched models.

    bash benchmarks/peers/setup.sh            # once: the peers' virtual environments
    python benchmarks/peers/compare.py [--sizes 64 512 4096] [--dtypes float32 float64] [--allocators glibc jemalloc]
    python benchmarks/peers/compare.py --train [--batch 5] [--pairs schnet equivariant nequip_s]
    python benchmarks/peers/compare.py --compile ...   # nnip's terms compiled by torch.compile
    python benchmarks/peers/compare.py --against ../other-checkout ...  # nnip against another checkout of nnip

Each package runs in its own worker process (worker.py) inside its own virtual environment;
the driver sends the same structures to ours and to the peer in alternating rounds and
prints medians and the ratio peer/ours (> 1: nnip is faster). Every package's model runs with its
parameters frozen (requires_grad False), as nnip.Calculator runs ours. Structures: ethanol (9 atoms),
3BPA (27, bundled DFT frame) and rattled periodic fcc Cu cells. Pairs of matched models
(same cutoff 5 Å, widths, layers and radial basis; untrained, seeded):

- SchNet 128 features, 3 interactions, 50 Gaussians: nnip schnet vs SchNetPack 2.1.1;
- equivariant 64x0e+64x1o hidden features, spherical harmonics to l = 3, correlation 3,
  2 layers, 8 Bessel functions: nnip equivariant vs MACE 0.3.16;
- Behler-Parrinello networks 64x64 per element on 16 radial + angular symmetry functions
  (angular cutoff 3.5 Å) vs
  TorchANI 2.9 AEVs (16 radial, 4x8 angular, cutoffs 5 / 3.5 Å) with 64x64 networks per
  element; TorchANI builds its neighbour list (cell list) inside every call, so its times
  include it while ours do not;
- NequIP 0.19.1 preset S (2 layers, l_max 1, 128x0e+64x1o, no parity) against nnip's
  equivariant model with 64 channels, l_max 1, correlation 1 (two-body messages, as NequIP's).

The allocator setting applies to every worker of a row alike: glibc malloc; glibc-retain,
glibc told by each worker at start to keep freed memory (nnip.md.allocator.retain_freed_memory,
loaded from its file, so the peers' venvs need no nnip); or jemalloc through LD_PRELOAD with
decay off (needs libjemalloc2). Besides ms per call the table gives
atoms x calls per second (MD throughput) and each worker's peak resident memory.

``--compile`` compiles nnip's terms with torch.compile (Potential.compile_terms; the worker's
warm-up call pays for compiling); the peers run eagerly as their calculators do by default.

``--against CHECKOUT`` puts, in place of each pair's peer, the same nnip model from another
checkout of nnip (its own src/ and worker.py, nnip's venv): a before/after comparison of a change
in one run, alternated, with the same structures and peak memory per worker ("peer" is then the
other checkout, "peer/nnip" the other checkout's time over this one's).

``--train`` times full training steps instead (forward in training mode with forces through
create_graph, energy + force MSE, backward, Adam) on batches of ``--batch`` structures of the
bundled GFN2-xTB ethanol data, batches collated once by each package (see worker.py), and
prints structures per second, ours against the peer's, for the pairs that have a trainer
(SchNetPack, MACE, NequIP; TorchANI's is not wired).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ase.build import bulk, molecule
from ase.io import write

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = {"nnip": ROOT / ".venv", "mace": HERE / ".venv-mace", "schnetpack": HERE / ".venv-peers",
         "nequip": HERE / ".venv-peers", "torchani": HERE / ".venv-peers"}
PAIRS = {
    "schnet": (("nnip", {"name": "schnet", "config": {"cutoff": 5.0, "features": 128, "interactions": 3, "basis": 50}}),
               ("schnetpack", {"config": {"features": 128, "interactions": 3, "basis": 50}})),
    "equivariant": (("nnip", {"name": "equivariant", "config": {"cutoff": 5.0, "channels": 64, "l_max": 3,
                                                                 "hidden_l": 1, "correlation": 3, "layers": 2,
                                                                 "basis": 8, "avg_neighbors": 10.0}}),
                    ("mace", {"config": {"num_bessel": 8, "max_ell": 3, "num_interactions": 2,
                                         "hidden_irreps": "64x0e+64x1o", "correlation": 3}})),
    "nequip_s": (("nnip", {"name": "equivariant", "config": {"cutoff": 5.0, "channels": 64, "l_max": 1,
                                                              "hidden_l": 1, "correlation": 1, "layers": 2,
                                                              "basis": 8, "avg_neighbors": 10.0}}),
                 ("nequip", {"config": {"preset": "S"}})),
    "bp": (("nnip", {"name": "behler_parrinello", "config": {"cutoff": 5.0, "radial": 16, "angular_cutoff": 3.5,
                                                            "angular_etas": [0.005, 0.02, 0.08, 0.3],
                                                            "angular_zetas": [1.0, 2.0, 4.0], "hidden": [64, 64],
                                                            "activation": "tanh"}}),
           ("torchani", {"config": {"radial": 16, "angular_shifts": 4, "sections": 8, "angular_cutoff": 3.5,
                                    "hidden": [64, 64]}})),
}
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
ALLOCATORS = ("glibc", "glibc-retain", "jemalloc")


def structures(folder: Path, sizes: list[int], molecules: bool = True) -> dict[str, Path]:
    """name -> extxyz file of one structure: ethanol and 3BPA (unless ``molecules`` is False), then the Cu cells."""
    out = {}
    from nnip.data import bundled, read

    cases = {}
    if molecules:
        tbpa = read(bundled("3bpa_train_300K.extxyz"), index="0")[0]
        cases = {"ethanol (9)": molecule("CH3CH2OH"), f"3BPA ({len(tbpa)})": tbpa}
    for n in sizes:
        repeat = max(2, round(n ** (1 / 3)))  # the 1-atom primitive cell: 64, 512, 4096 atoms exactly
        cell = bulk("Cu", "fcc", a=3.61).repeat(repeat)
        cell.rattle(0.05, seed=1)
        cases[f"Cu ({len(cell)})"] = cell
    for name, atoms in cases.items():
        path = folder / f"{len(out)}.xyz"
        atoms.calc = None
        write(path, atoms, format="extxyz")
        out[name] = path
    return out


TRAINABLE = ("schnet", "equivariant", "nequip_s")


class Worker:
    """A worker process of one package and model, answering timing requests."""

    def __init__(self, package: str, model: dict, allocator: str, checkout: Path | None = None):
        env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONWARNINGS": "ignore"}
        here, root = HERE, ROOT
        if checkout is not None:  # nnip from another checkout: its source first on the path, its worker
            here, root = checkout / "benchmarks" / "peers", checkout
            env["PYTHONPATH"] = str(checkout / "src")
        if allocator == "jemalloc":
            env.update(LD_PRELOAD=JEMALLOC, MALLOC_CONF="dirty_decay_ms:-1,muzzy_decay_ms:-1")
        elif allocator == "glibc-retain":
            env.update(NNIP_PEERS_RETAIN_MEMORY="1")
        python = VENVS[package] / "bin" / "python"
        self.process = subprocess.Popen([str(python), str(here / "worker.py"), package, json.dumps(model)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        text=True, env=env, cwd=root)

    def time(self, xyz: Path, dtype: str, calls: int, threads: int, train: dict | None = None) -> dict:
        request = {"xyz": str(xyz), "dtype": dtype, "calls": calls, "threads": threads}
        if train:
            request["train"] = train
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.process.args[2]} died (run it by hand to see why)")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


@contextlib.contextmanager
def pair_workers(pair: str, allocator: str, compile_nnip: bool = False, against: Path | None = None):
    """The two workers (nnip, peer) of a pair under one allocator setting, closed afterwards; with ``against``,
    the peer is the same nnip model from that checkout."""
    ours, peer = PAIRS[pair]
    if compile_nnip:
        ours = ("nnip", {**ours[1], "compile": True})
    workers = [Worker(*ours, allocator), Worker(*ours, allocator, against) if against else Worker(*peer, allocator)]
    try:
        yield workers
    finally:
        for worker in workers:
            worker.close()


def compare_inference(args, cases: dict[str, Path]) -> None:
    print(f"ms per energy+forces call (median of {args.rounds} interleaved rounds), {args.threads} threads"
          + (", nnip compiled" if args.compile else "") + (f"; peer: nnip at {args.against}" if args.against else ""))
    print(f"{'pair':<12}{'allocator':<10}{'dtype':<9}{'structure':<14}{'nnip':>10}{'peer':>10}{'peer/nnip':>10}"
          f"{'nnip at/s':>11}{'peer at/s':>11}{'nnip MB':>9}{'peer MB':>9}")
    for pair in args.pairs:
        for allocator in args.allocators:
            with pair_workers(pair, allocator, args.compile, args.against) as workers:
                for dtype in args.dtypes:
                    for name, xyz in cases.items():
                        n = int(name.split("(")[1].rstrip(")"))
                        calls = max(1, min(20, 4000 // n))
                        times = [[], []]
                        for _ in range(args.rounds):
                            for k, worker in enumerate(workers):
                                times[k].append(worker.time(xyz, dtype, calls, args.threads))
                        ours, peer = (statistics.median(t["ms"] for t in ts) for ts in times)
                        print(f"{pair:<12}{allocator:<10}{dtype:<9}{name:<14}{ours:>10.2f}{peer:>10.2f}"
                              f"{peer / ours:>10.2f}{1000 * n / ours:>11.0f}{1000 * n / peer:>11.0f}"
                              f"{times[0][-1]['peak_mb']:>9.0f}{times[1][-1]['peak_mb']:>9.0f}", flush=True)


def compare_training(args) -> None:
    from nnip.data import bundled

    data = bundled("ethanol_gfn2_300K.extxyz")
    train = {"batch": args.batch, "batches": 10}
    print(f"training steps on {data.name}, batch {args.batch}, structures per second (median of {args.rounds} "
          f"interleaved rounds of {args.steps} steps), {args.threads} threads")
    print(f"{'pair':<12}{'allocator':<10}{'dtype':<9}{'nnip':>10}{'peer':>10}{'nnip/peer':>10}")
    for pair in [p for p in args.pairs if p in TRAINABLE]:
        for allocator in args.allocators:
            with pair_workers(pair, allocator, against=args.against) as workers:
                for dtype in args.dtypes:
                    times = [[], []]
                    for _ in range(args.rounds):
                        for k, worker in enumerate(workers):
                            times[k].append(worker.time(data, dtype, args.steps, args.threads, train)["ms"])
                    ours, peer = (1000 * args.batch / statistics.median(t) for t in times)
                    print(f"{pair:<12}{allocator:<10}{dtype:<9}{ours:>10.1f}{peer:>10.1f}{ours / peer:>10.2f}",
                          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 512, 4096])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=("float32", "float64"))
    parser.add_argument("--allocators", nargs="+", default=["glibc"], choices=ALLOCATORS)
    parser.add_argument("--molecules", action=argparse.BooleanOptionalAction, default=True,
                        help="include ethanol and 3BPA (--no-molecules: the Cu cells only)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="time training steps instead of inference")
    parser.add_argument("--compile", action="store_true", help="compile nnip's terms (inference only)")
    parser.add_argument("--batch", type=int, default=5, help="structures per training step (--train)")
    parser.add_argument("--steps", type=int, default=20, help="training steps per round (--train)")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout of nnip to compare with, in place of the peers")
    args = parser.parse_args()
    if args.compile and args.train:
        parser.error("--compile applies to inference only (training runs eagerly)")
    packages = {"nnip"} if args.against else {p for pair in args.pairs for p, _ in PAIRS[pair]}
    missing = [str(VENVS[p]) for p in sorted(packages) if not (VENVS[p] / "bin/python").exists()]
    if missing:
        sys.exit(f"missing virtual environments {missing}: run bash benchmarks/peers/setup.sh")
    if "jemalloc" in args.allocators and not Path(JEMALLOC).exists():
        sys.exit(f"{JEMALLOC} not found: apt install libjemalloc2, or leave jemalloc out of --allocators")
    if args.train:
        compare_training(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        compare_inference(args, structures(Path(folder), args.sizes, args.molecules))


if __name__ == "__main__":
    main()
