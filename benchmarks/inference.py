"""Inference speed: ms per energy + forces call of each model, for ethanol and periodic silicon cells.

    python benchmarks/inference.py [--sizes 64 512 4096] [--models schnet behler_parrinello ...] [--compile]

Each call builds nothing: the neighbour list is built once (as in MD between rebuilds; for each
potential's own neighbour request) and the timed call is the potential's forward with forces
by autograd, no create_graph. Calls
are interleaved across models in rounds and the median is printed (this machine's timings
vary by up to 40% from run to run). Threads: 2 by default; glibc malloc unless run under
jemalloc. ``--compile`` adds a row per model with its terms compiled by torch.compile
(Potential.compile_terms; the warm-up round pays for compiling).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from ase.build import bulk, molecule

from nnip.data.graph import AtomicGraph
from nnip.potentials import build_potential

CUTOFF = 5.0
MODELS = {
    "lj": {"name": "lj", "cutoff": CUTOFF},
    "schnet": {"name": "schnet", "cutoff": CUTOFF, "features": 64, "interactions": 3, "basis": 50},
    "behler_parrinello": {"name": "behler_parrinello", "cutoff": CUTOFF, "radial": 16,
                          "angular_zetas": [1.0, 2.0, 4.0], "hidden": [64, 64]},
    "schnet+electrostatics": [{"name": "schnet", "cutoff": CUTOFF},
                              {"name": "electrostatics", "cutoff": CUTOFF}],
    "painn": {"name": "painn", "cutoff": CUTOFF, "features": 64, "interactions": 3, "basis": 20},
    "equivariant": {"name": "equivariant", "cutoff": CUTOFF, "channels": 32, "l_max": 2, "hidden_l": 1,
                    "correlation": 3, "layers": 2, "basis": 8},
}
#: Ewald without a mesh costs O(N K) with K ~ volume: skip it above this size
EWALD_MAX_ATOMS = 600


def structures(sizes) -> dict[str, object]:
    out = {"ethanol (9)": molecule("CH3CH2OH")}
    for n in sizes:
        repeat = round((n / 8) ** (1 / 3))
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.rattle(0.05, seed=1)
        out[f"Si ({len(atoms)})"] = atoms
    return out


def potential_for(model: str, elements, dtype):
    spec = MODELS[model]
    terms = spec if isinstance(spec, list) else [spec]
    terms = [{"name": t["name"], "config": {k: v for k, v in t.items() if k != "name"}} for t in terms]
    # frozen, as nnip.Calculator runs a model: forces need gradients by the positions only
    return build_potential({"elements": elements, "terms": terms}).to(dtype).eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 512, 4096])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time each model compiled (torch.compile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    print(f"energy + forces per call, {args.dtype}, torch {torch.__version__}, {args.threads} threads, glibc malloc")
    print(f"{'structure':<14}{'model':<24}{'ms/call':>10}{'atoms/s':>12}")
    for name, atoms in structures(args.sizes).items():
        elements = sorted(set(atoms.numbers.tolist()))
        cases = {m: potential_for(m, elements, dtype) for m in args.models
                 if not ("electrostatics" in m and len(atoms) > EWALD_MAX_ATOMS)}
        if args.compile:
            cases.update({f"{m} compiled": copy.deepcopy(p).compile_terms() for m, p in list(cases.items())})
        requests = {p.neighbor_request() for p in cases.values()}  # full lists, half lists
        graphs = {r: AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc, r,
                                             dtype=dtype) for r in requests}
        calls = max(1, min(20, 20000 // len(atoms)))
        times = {m: [] for m in cases}
        for _ in range(args.rounds + 1):  # the first round warms up
            for model, potential in cases.items():
                start = time.perf_counter()
                for _ in range(calls):
                    potential(graphs[potential.neighbor_request()], compute_forces=True)
                times[model].append((time.perf_counter() - start) / calls)
        for model in cases:
            ms = 1000 * statistics.median(times[model][1:])
            print(f"{name:<14}{model:<24}{ms:>10.2f}{len(atoms) / ms * 1000:>12.0f}")


if __name__ == "__main__":
    main()
