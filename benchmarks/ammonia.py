"""Ammonia inversion: does adversarial sampling reach the barrier that MD at 300 K does not visit?

    python benchmarks/ammonia.py --data ../shared/data/ammonia_adversarial/ammonia_gen3_dft.extxyz

The molecule of the adversarial-attack paper (Schwalbe-Koda, Tan, Gomez-Bombarelli, Nat.
Commun. 12, 5104 (2021)), with GFN2-xTB as the oracle instead of their DFT. Every sampler
starts from the ``--initial`` lowest-energy geometries of the paper's DFT set (relabelled with
GFN2; all near the pyramidal minimum) and runs ``--generations`` rounds of the active loop
with the same labels per round. The test set is the GFN2 inversion path: C3v geometries at
umbrella heights h (N above the plane of the three H, Å) from the minimum to the planar
transition state, the N-H length relaxed at each h.

Prints per generation and sampler: oracle calls, the smallest |h| labelled so far, the
highest labelled energy above the GFN2 minimum, and the ensemble's inversion barrier against
GFN2's. Writes ``ammonia.png`` (energy along the path per generation; labelled points
coloured by generation) and ``summary.json`` to ``--output``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from scipy.optimize import minimize_scalar

import nnip
from nnip.active.loop import run_active
from nnip.active.samplers import ActiveSettings
from nnip.active.store import Store
from nnip.calculator import Calculator
from nnip.oracles.registry import get_oracle
from nnip.strict import from_dict
from nnip.training.config import parse_config

SAMPLER_OPTIONS = {
    "adversarial": {"attack": {"steps": 60, "lr": 0.01}},
    "md": {"temperature": 300.0, "md_steps": 400, "md_interval": 40},
    "random": {"amplitude": 0.08, "samples_per_seed": 2},
}


def umbrella_height(atoms: Atoms) -> float:
    """|h|, Å: distance of N from the plane through the three H atoms."""
    nitrogen = atoms.positions[atoms.numbers == 7][0]
    hydrogens = atoms.positions[atoms.numbers == 1]
    normal = np.cross(hydrogens[1] - hydrogens[0], hydrogens[2] - hydrogens[0])
    return float(abs(np.dot(nitrogen - hydrogens.mean(axis=0), normal / np.linalg.norm(normal))))


def c3v_ammonia(height: float, bond: float) -> Atoms:
    """NH3 with N at ``height`` Å above the plane of the H atoms and N-H length ``bond`` Å."""
    radius = np.sqrt(bond**2 - height**2)
    angles = 2 * np.pi * np.arange(3) / 3
    hydrogens = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(3)], axis=1)
    return Atoms("NH3", positions=np.vstack([[0.0, 0.0, height], hydrogens]))


def inversion_path(oracle, heights: np.ndarray) -> list[Atoms]:
    """GFN2 minimum-energy C3v geometries at each height (N-H length relaxed), labelled."""
    path = []
    for height in heights:
        def energy(bond: float) -> float:
            return oracle.label([c3v_ammonia(height, bond)])[0].get_potential_energy()

        bond = minimize_scalar(energy, bounds=(max(0.9, height + 0.05), 1.3), method="bounded",
                               options={"xatol": 1e-5}).x
        atoms = oracle.label([c3v_ammonia(height, bond)])[0]
        atoms.info["height"] = float(height)
        path.append(atoms)
    return path


def path_energies(model, path: list[Atoms]) -> np.ndarray:
    """Ensemble-mean energies (eV) along the path, relative to the path's minimum."""
    calculator = Calculator(model)
    energies = np.array([calculator.get_potential_energy(atoms.copy()) for atoms in path])
    return energies - energies.min()


def run(sampler: str, args, folder: Path, path: list[Atoms]) -> list[dict]:
    resolved = {
        "seed": args.seed, "output": str(folder / sampler), "ensemble": args.members,
        "data": {"train": str(folder / "initial.extxyz"), "test": str(folder / "inversion_path.extxyz"),
                 "split": {"val": 0.0}},
        "model": {"name": "schnet", "cutoff": 4.0, "features": 32, "interactions": 2},
        "training": {"max_epochs": args.epochs, "batch_size": 4, "lr": 2e-3, "schedule": "cosine", "min_lr": 1e-5,
                     "loss": {"energy_weight": 1.0, "forces_weight": 10.0}},
        "active": {"generations": args.generations, "oracle": "gfn2", "sampler": sampler, "seeds": args.labels,
                   "warm_start": True, "select": {"percentile": 50, "rmsd": 0.02, "max_new": args.labels},
                   **SAMPLER_OPTIONS[sampler]},
    }
    config = parse_config({k: v for k, v in resolved.items() if k != "active"})
    settings = from_dict(ActiveSettings, resolved["active"], "active")
    rows = run_active(config, settings, resolved, resume=args.resume and (folder / sampler).is_dir(), overwrite=True)
    reference = np.array([a.get_potential_energy() for a in path])
    minimum = reference.min()
    labelled = Store(folder / sampler / "store.db").labelled()
    for row in rows:
        g = int(row["generation"])
        model = nnip.load(folder / sampler / f"gen_{g:02d}" / "model" / "model.pt")
        predicted = path_energies(model, path)
        row["path_energies"] = predicted.tolist()
        row["barrier"] = float(predicted[0])  # path[0] is the planar transition state
        so_far = [a for a in labelled if a.info["generation"] < g]
        row["min_height"] = min(umbrella_height(a) for a in so_far)
        row["max_energy"] = max(a.get_potential_energy() for a in so_far) - minimum
        row["near_barrier"] = sum(umbrella_height(a) < args.barrier_region for a in so_far)
    return rows


def plot(table: dict, path: list[Atoms], labelled: dict, output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = np.array([a.info["height"] for a in path])
    reference = np.array([a.get_potential_energy() for a in path])
    reference -= reference.min()
    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 4), sharey=True, squeeze=False)
    for ax, (sampler, rows) in zip(axes[0], table.items()):
        colours = plt.cm.viridis(np.linspace(0, 1, len(rows)))
        ax.plot(heights, reference, "k-", lw=2, label="GFN2-xTB")
        for row, colour in zip(rows, colours):
            ax.plot(heights, row["path_energies"], "--", color=colour, label=f"ensemble, gen {int(row['generation'])}")
        points = labelled[sampler]
        top = 4 * reference.max()
        ax.scatter([p[0] for p in points], [p[1] for p in points], c=[p[2] for p in points], cmap="viridis",
                   vmin=-1, vmax=len(rows) - 1, s=14, edgecolors="k", linewidths=0.3, label="labelled")
        above = sum(p[1] > top for p in points)
        ax.set(title=f"{sampler} ({above} labelled points above {top:.1f} eV not shown)",
               xlabel="umbrella height |h| (Å)", ylim=(-0.05, top), xlim=(-0.02, 0.8))
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("energy above the minimum (eV)")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="ammonia_gen3_dft.extxyz of the paper (geometries used)")
    parser.add_argument("--samplers", nargs="+", default=["adversarial", "md"], choices=SAMPLER_OPTIONS)
    parser.add_argument("--initial", type=int, default=10, help="lowest-energy geometries to start from")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--labels", type=int, default=10, help="oracle calls per generation (at most)")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=400, help="per member and generation (warm start)")
    parser.add_argument("--barrier-region", type=float, default=0.15, help="|h| (Å) counted as the barrier region")
    parser.add_argument("--output", default="runs/ammonia")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    oracle = get_oracle("gfn2")
    frames = nnip.read(args.data)
    lowest = np.argsort([a.get_potential_energy() for a in frames])[:args.initial]
    initial = oracle.label([Atoms(frames[k].numbers, frames[k].positions) for k in lowest])
    nnip.write(folder / "initial.extxyz", initial)
    path = inversion_path(oracle, np.linspace(0.0, 0.45, 19))
    nnip.write(folder / "inversion_path.extxyz", path)
    energies = np.array([a.get_potential_energy() for a in path])
    start = min(umbrella_height(a) for a in initial)
    print(f"GFN2 inversion barrier {energies[0] - energies.min():.3f} eV (planar TS, |h| = 0; minimum at "
          f"|h| = {path[int(np.argmin(energies))].info['height']:.2f} Å); initial data |h| >= {start:.3f} Å")
    table = {sampler: run(sampler, args, folder, path) for sampler in args.samplers}
    reference = energies[0] - energies.min()
    print(f"\n{'generation':>10} " + " ".join(
        f"{s + ' calls':>18} {'min |h| Å':>9} {'max E eV':>8} {'|h|<' + str(args.barrier_region):>8} {'barrier eV':>10}"
        for s in args.samplers) + f"   (GFN2 barrier {reference:.3f} eV)")
    for g in range(args.generations + 1):
        cells = [f"{int(r['oracle_calls']):>18} {r['min_height']:>9.3f} {r['max_energy']:>8.3f} {r['near_barrier']:>8d} "
                 f"{r['barrier']:>10.3f}" for r in [table[s][g] for s in args.samplers]]
        print(f"{g:>10} " + " ".join(cells))
    labelled = {s: [(umbrella_height(a), a.get_potential_energy() - energies.min(), a.info["generation"])
                    for a in Store(folder / s / "store.db").labelled()] for s in args.samplers}
    plot(table, path, labelled, folder / "ammonia.png")
    (folder / "summary.json").write_text(json.dumps({"gfn2_barrier": reference, "samplers": table}, indent=2,
                                                    default=float))
    print(f"figure: {folder / 'ammonia.png'}")


if __name__ == "__main__":
    main()
