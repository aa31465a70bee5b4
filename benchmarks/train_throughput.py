"""Training throughput: structures per second for one full optimizer step on rMD17 ethanol.

One step is what ``Trainer._step`` does in ``nnip train``: collate the batch, forward with
forces by autograd (``create_graph=True``), energy + forces loss, backward, Adam step. Each
model x dtype x batch size gets its own Trainer; after a warm-up, every configuration runs
``--steps`` steps per round, the configurations in a new (seeded) random order each round,
and the median ms/step over ``--rounds`` rounds is reported, since this machine's timings
drift by up to 40% between runs. The min..max over rounds shows the spread, and the last
line says how busy other processes kept the cores meanwhile: with --threads 2 on two cores,
one busy core can make steps with torch.exp (Morse, Buckingham) several times slower. Even
when nothing else runs, this host switches between a fast and a ~1.6x slower state every few
seconds, which the median then reflects (the min column is closer to the fast state).

Models are the entries of MODELS: name -> builder(atomic numbers) -> Potential. A later
model is one more entry. The classical parameters below are plausible magnitudes for
C/H/O, not fits: only the cost of a step is measured. Every cutoff is 5 Å, which covers
all 36 pairs of ethanol, so all models see the same edges. The potential's shift (mean
energy per atom) and scale (force RMS) are set from the data so that the loss has sane
magnitudes; they do not change the cost of a step.

Data: the bundled 250-frame rMD17 ethanol subset by default, or ``--data`` (any file
``nnip.read`` takes; ``.npz`` is read as kcal/mol unless ``--energy-unit`` says otherwise),
e.g. /work/shared/data/rmd17_ethanol/train.xyz (1000 frames).

Usage: python benchmarks/train_throughput.py [--data PATH] [--models lj morse buckingham+coulomb]
           [--dtypes float32 float64] [--batch-sizes 1 16 64] [--steps 20] [--rounds 15]
           [--warmup 5] [--threads 2] [--allocator glibc|glibc-retain|jemalloc|all]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from _allocator import CHOICES, current_allocator, rerun_under_each_allocator

import nnip
from nnip.data.dataset import AtomicDataset
from nnip.potentials import build_potential
from nnip.potentials.contract.base import Potential
from nnip.training.config import TrainingConfig
from nnip.training.trainer import Trainer

CUTOFF = 5.0  # Å; ethanol's largest interatomic distance in rMD17 is under 4.5 Å


def _lj(elements: Sequence[int]) -> Potential:
    config = {"epsilon": {"H": 0.002, "C": 0.004, "O": 0.006}, "sigma": {"H": 1.0, "C": 1.5, "O": 1.4},
              "cutoff": CUTOFF}
    return build_potential({"elements": list(elements), "terms": [{"name": "lj", "config": config}]})


def _morse(elements: Sequence[int]) -> Potential:
    config = {"D": {"H": 0.2, "C": 0.3, "O": 0.3}, "a": 1.5, "r0": {"H": 1.0, "C": 1.4, "O": 1.3},
              "cutoff": CUTOFF, "switch_on": 4.0}
    return build_potential({"elements": list(elements), "terms": [{"name": "morse", "config": config}]})


def _buckingham_coulomb(elements: Sequence[int]) -> Potential:
    buckingham = {"A": 1000.0, "B": 3.0, "C": 10.0, "cutoff": CUTOFF}
    coulomb = {"charges": {"H": 0.1, "C": -0.1, "O": -0.4}, "cutoff": CUTOFF}  # neutral for C2H6O
    return build_potential({"elements": list(elements), "terms": [
        {"name": "buckingham", "config": buckingham}, {"name": "coulomb", "config": coulomb}]})


def _schnet(elements: Sequence[int]) -> Potential:
    config = {"cutoff": CUTOFF, "features": 64, "interactions": 3, "basis": 50}
    return build_potential({"elements": list(elements), "terms": [{"name": "schnet", "config": config}]})


def _behler_parrinello(elements: Sequence[int]) -> Potential:
    config = {"cutoff": CUTOFF, "radial": 16, "angular_zetas": [1.0, 2.0, 4.0], "hidden": [64, 64]}
    return build_potential({"elements": list(elements), "terms": [{"name": "behler_parrinello", "config": config}]})


#: name -> builder(sorted atomic numbers) -> Potential (float64; the Trainer casts it to the dtype).
MODELS: dict[str, Callable[[Sequence[int]], Potential]] = {
    "lj": _lj,
    "morse": _morse,
    "buckingham+coulomb": _buckingham_coulomb,
    "schnet": _schnet,
    "behler_parrinello": _behler_parrinello,
}


class Case:
    """One model x dtype x batch size: its Trainer and a cycle of batches over the data."""

    def __init__(self, model: str, dtype: str, batch_size: int, potential: Potential, dataset: AtomicDataset,
                 seed: int):
        self.model, self.dtype, self.batch_size = model, dtype, batch_size
        self.trainer = Trainer(potential, dataset, None,
                               TrainingConfig(batch_size=batch_size, progress=False, dtype=dtype), seed=seed)
        order = np.random.default_rng(seed).permutation(len(dataset)).tolist()
        self.order, self.next = order, 0
        self.times: list[float] = []
        self.loss = math.nan

    def _indices(self) -> list[int]:
        """The next batch_size indices of the shuffled data, wrapping around (repeats when B > frames)."""
        n = len(self.order)
        indices = [self.order[(self.next + k) % n] for k in range(self.batch_size)]
        self.next = (self.next + self.batch_size) % n
        return indices

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        batches = [self._indices() for _ in range(steps)]  # index bookkeeping kept out of the timing
        start = time.perf_counter()
        for indices in batches:
            self.loss = self.trainer._step(indices)
        return (time.perf_counter() - start) / steps


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, of this process) so far; None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system = (int(v) for v in stat.readline().split()[1:4])
    except (OSError, ValueError):
        return None
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (user + nice + system) / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime


def _datasets(potentials: dict[str, Potential], frames) -> dict[str, AtomicDataset]:
    """One dataset per distinct neighbour request, shared by the models that need it."""
    built: dict = {}
    for potential in potentials.values():
        request = potential.neighbor_request()
        if request not in built:
            built[request] = AtomicDataset(frames, request)
    return {name: built[p.neighbor_request()] for name, p in potentials.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="training data file (default: bundled ethanol_train.extxyz)")
    parser.add_argument("--energy-unit", default=None, help="energy unit of --data (default: eV; kcal/mol for .npz)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--steps", type=int, default=20, help="steps per configuration per round")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per configuration first")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0, help="seed of batch order and round order")
    parser.add_argument("--allocator", default="glibc", choices=CHOICES)
    args = parser.parse_args()
    if rerun_under_each_allocator(args.allocator):
        return
    torch.set_num_threads(args.threads)

    path = args.data or nnip.data.bundled("ethanol_train.extxyz")
    frames = nnip.read(path, energy_unit=args.energy_unit)
    elements = sorted({int(z) for atoms in frames for z in atoms.numbers})
    energies = np.array([atoms.get_potential_energy() for atoms in frames])
    n_atoms = np.array([len(atoms) for atoms in frames])
    forces = np.concatenate([atoms.get_forces() for atoms in frames])
    shift, scale = float((energies / n_atoms).mean()), float(np.sqrt((forces**2).mean()))

    def build(model: str) -> Potential:
        potential = MODELS[model](elements)
        potential.set_reference(scale=scale, shift=shift)
        return potential

    datasets = _datasets({model: build(model) for model in args.models}, frames)
    cases = [Case(model, dtype, batch, build(model), datasets[model], args.seed)
             for model in args.models for dtype in args.dtypes for batch in args.batch_sizes]

    print(f"training step (forward + autograd forces with create_graph, E+F loss, backward, Adam), "
          f"median of {args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up steps")
    print(f"data: {path} ({len(frames)} frames, {n_atoms.mean():.3g} atoms/structure)")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, allocator: {current_allocator()}")
    if args.warmup:
        for case in cases:
            case.run(args.warmup)
    rounds = random.Random(args.seed)
    cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
    for _ in range(args.rounds):
        order = list(cases)
        rounds.shuffle(order)
        for case in order:
            case.times.append(case.run(args.steps))
    cpu_after, wall = _cpu_seconds(), time.perf_counter() - wall_before

    print(f"{'model':<20} {'dtype':<8} {'batch':>5} {'ms/step':>9} {'structures/s':>13} {'min..max ms':>15}")
    for case in cases:
        ms = statistics.median(case.times) * 1e3
        spread = f"{min(case.times) * 1e3:.2f}..{max(case.times) * 1e3:.2f}"
        note = "" if math.isfinite(case.loss) else "  (loss not finite!)"
        print(f"{case.model:<20} {case.dtype:<8} {case.batch_size:>5} {ms:>9.2f} "
              f"{case.batch_size / ms * 1e3:>13.0f} {spread:>15}{note}")
    if cpu_before and cpu_after:
        others = ((cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])) / wall
        print(f"other processes used {max(others, 0.0):.2f} of {os.cpu_count()} cores on average during the "
              f"{wall:.1f} s of timed rounds (more than ~0.1 makes these figures pessimistic)")


if __name__ == "__main__":
    main()
