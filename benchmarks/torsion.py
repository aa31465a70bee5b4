"""Torsional extrapolation: a model trained on 300 K GFN2-xTB MD of 3BPA, tested on relaxed scans of its three
backbone dihedrals, which reach energies far above what 300 K samples (the "dihedral slices" of the 3BPA
benchmark of Kovacs et al. 2021 and the MACE paper, here with GFN2-xTB labels).

    python benchmarks/torsion.py --workdir runs/torsion --minutes 30 --mace

Steps, each cached in ``--workdir`` and resumed where it stopped (rerun the same command after an interruption):

1. md.extxyz: Langevin MD with GFN2-xTB (tblite) at 300 K from the first structure of nnip's bundled 3BPA set,
   0.5 fs steps, 500 fs of equilibration dropped, then one frame every 10 fs (``--frames`` frames).
2. scans.extxyz: for each backbone dihedral (alpha C4-C1-O5-C13, beta C1-O5-C13-C14, gamma O5-C13-C14-C18), a
   relaxed scan in ``--step``-degree steps all the way round from the starting structure: the dihedral is set
   (the atoms on its far side rotated), fixed (ase FixInternals) and everything else relaxed with GFN2-xTB (BFGS
   to 0.05 eV/Å); each point starts from the previous one. Every point is written as soon as it is relaxed.
3. nnip trained on md.extxyz with its defaults (only ``model.name`` and the time budget; 10 % for validation;
   or, for a diagnosis, with ``--set`` changes and ``--epochs`` in place of the time budget; run folder
   ``<workdir>/<model>_<minutes>min_seed<seed>[_<changes>]`` (``<epochs>epochs`` for ``<minutes>min``), resumed by
   ``nnip train --resume`` rules),
   then per scan: the relative energies E(phi) - E(phi_0), phi_0 the reference's minimum, their MAE against
   GFN2-xTB's and both barriers (largest relative energy). The MAE is also split between the points where two
   atoms at least 4 bonds apart come more than 0.5 Å closer than in any MD frame (a contact never trained on)
   and the others.
4. With ``--mace``: mace_run_train at its reference settings (benchmarks/peers/mace_accuracy.py; 10 % for
   validation, the same budget and threads, or ``--mace-epochs`` epochs) on md.extxyz, run after nnip, its scan
   energies cached in ``<workdir>/mace_<minutes>min_seed<seed>`` (``<epochs>epochs`` for ``<minutes>min``);
   the same figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from ase.constraints import FixInternals
from ase.neighborlist import NeighborList, natural_cutoffs
from ase.optimize import BFGS
from scipy.sparse.csgraph import shortest_path

import nnip
from nnip.md.run import MDSettings, run_md
from nnip.oracles import get_oracle
from peers import mace_accuracy

#: backbone dihedrals of 3BPA by atom index in nnip's bundled 3BPA files (they reproduce the files' "dihedrals")
DIHEDRALS = {"alpha": (4, 1, 5, 13), "beta": (1, 5, 13, 14), "gamma": (5, 13, 14, 18)}
EQUILIBRATION = 1000  # steps of 0.5 fs dropped
INTERVAL = 20  # steps between kept frames
NEW_CONTACT = 0.5  # Å closer than in any MD frame: a scan point with a contact the training data never showed


def make_md(path: Path, frames: int, seed: int) -> list:
    """GFN2-xTB MD of 3BPA at 300 K (module docstring, step 1), cached in ``path``."""
    if path.is_file():
        return nnip.read(path)
    start = nnip.read(nnip.data.bundled("3bpa_train_300K.extxyz"), index=0)[0]
    start.info = {}
    settings = MDSettings(steps=EQUILIBRATION + frames * INTERVAL, timestep=0.5, temperature=300, thermostat="langevin",
                          interval=INTERVAL, seed=seed)
    trajectory = path.with_suffix(".trajectory.extxyz")
    trajectory.unlink(missing_ok=True)  # an interrupted MD starts again: it is the cheap step
    run_md(start, get_oracle("gfn2").factory(), settings, trajectory)
    kept = [a for a in nnip.read(trajectory) if a.info["step"] > EQUILIBRATION]
    for atoms in kept:
        atoms.info = {"temperature_K": 300, "step": atoms.info["step"], "method": "GFN2-xTB (tblite)"}
    nnip.write(path, kept)
    trajectory.unlink()
    return kept


def _bond_graph(atoms) -> list[set[int]]:
    """The covalent neighbours of every atom (natural covalent radii)."""
    neighbours = NeighborList(natural_cutoffs(atoms), self_interaction=False, bothways=True)
    neighbours.update(atoms)
    return [{int(n) for n in neighbours.get_neighbors(i)[0]} for i in range(len(atoms))]


def _far_side(atoms, j: int, k: int) -> list[bool]:
    """Mask of the atoms bonded to k's side of the j-k bond."""
    graph, side, todo = _bond_graph(atoms), {k}, [k]
    while todo:
        for n in graph[todo.pop()]:
            if n != j and n not in side:
                side.add(n)
                todo.append(n)
    return [i in side for i in range(len(atoms))]


def _bonds_apart(atoms) -> np.ndarray:
    """Bonds on the shortest path between every two atoms, (N, N); inf where they are not connected."""
    adjacency = np.zeros((len(atoms), len(atoms)))
    for i, neighbours in enumerate(_bond_graph(atoms)):
        adjacency[i, list(neighbours)] = 1
    return shortest_path(adjacency, unweighted=True)


def new_contacts(md, scans, bonds: int = 4) -> np.ndarray:
    """Per scan point (Å): how much closer than in any MD frame two atoms at least ``bonds`` bonds apart come;
    0 where no pair does. A contact the training data never showed."""
    i, j = np.nonzero(np.triu(_bonds_apart(md[0]) >= bonds))
    closest = np.min([a.get_all_distances()[i, j] for a in md], axis=0)
    return np.array([max(0.0, float((closest - a.get_all_distances()[i, j]).max())) for a in scans])


def _relaxed(atoms, quadruple, angle: float, calculator):
    """``atoms`` with the dihedral set to ``angle`` (degrees), relaxed with it fixed; energy and forces attached."""
    atoms = atoms.copy()
    atoms.set_constraint()
    i, j, k, l = quadruple
    atoms.set_dihedral(i, j, k, l, angle, mask=_far_side(atoms, j, k))
    atoms.set_constraint(FixInternals(dihedrals_deg=[[angle, list(quadruple)]]))
    atoms.calc = calculator
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=300)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces(apply_constraint=False)
    atoms.set_constraint()
    labelled = atoms.copy()
    labelled.info = {"method": "GFN2-xTB (tblite)"}
    labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces)
    return labelled


def make_scans(path: Path, start, step: float) -> list:
    """Relaxed scans of the three dihedrals (module docstring, step 2), appended point by point to ``path``."""
    done = nnip.read(path) if path.is_file() else []
    calculator = get_oracle("gfn2").factory()
    for name, quadruple in DIHEDRALS.items():
        mine = [a for a in done if a.info["dihedral"] == name]
        origin = start.get_dihedral(*quadruple)
        angles = [(origin + step * n) % 360 for n in range(int(round(360 / step)))]
        current = mine[-1] if mine else start
        for n, angle in enumerate(angles[len(mine):], start=len(mine)):
            point = _relaxed(current, quadruple, angle, calculator)
            point.info.update(dihedral=name, angle=angle, point=n)
            done.append(point)
            nnip.write(path, done)  # atomically, with every point so far
            current = point
            print(f"{name} {n + 1}/{len(angles)}: {angle:6.1f} deg, E = {point.get_potential_energy():.4f} eV",
                  flush=True)
    return done


def nnip_energies(model, scans) -> list[float]:
    """nnip's energy (eV) of every scan point."""
    calculator = nnip.Calculator(model)
    energies = []
    for atoms in scans:
        atoms = atoms.copy()
        atoms.calc = calculator
        energies.append(atoms.get_potential_energy())
    return energies


def budget_name(minutes: float, epochs: int | None) -> str:
    """The budget's part of a run folder's name: ``<epochs>epochs`` when an epoch count is set, else ``<minutes>min``."""
    return f"{epochs}epochs" if epochs else f"{minutes:g}min"


def mace_energies(work: Path, minutes: float, seed: int, threads: int, epochs: int | None = None) -> list[float]:
    """MACE's energy (eV) of every scan point after mace_run_train at its reference settings
    (benchmarks/peers/mace_accuracy.py) on md.extxyz for ``minutes`` (or ``epochs`` epochs); cached in
    <work>/mace_<minutes>min_seed<seed> (mace_<epochs>epochs_seed<seed>)."""
    folder = work / f"mace_{budget_name(minutes, epochs)}_seed{seed}"
    cache = folder / "scan_energies.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    train, scans = (work / "md.extxyz").resolve(), (work / "scans.extxyz").resolve()
    env = mace_accuracy.threads_env(threads)
    if epochs:
        model = mace_accuracy.train_epochs(train, scans, folder, epochs, seed, threads, valid_fraction=0.1)
        done = f"{epochs} epochs"
    else:
        options, snapshot, share = mace_accuracy.train_for(train, scans, folder, minutes, seed, threads,
                                                           valid_fraction=0.1)
        model = mace_accuracy.rebuild(options, snapshot, env)
        done = f"{minutes:g} min ({mace_accuracy.epochs_trained(folder)} epochs, CPU share {share:.2f})"
    predicted = mace_accuracy.predict(model, scans, folder / "scans_predicted.xyz", env)
    energies = [float(a.info["MACE_energy"]) for a in predicted]
    cache.write_text(json.dumps(energies))
    print(f"MACE, {done}")
    return energies


def scan_errors(scans, predicted: list[float], contacts: np.ndarray) -> list[dict]:
    """Per dihedral: relative-energy MAE (meV) and both barriers (meV) of the ``predicted`` energies (eV, one per
    scan point), relative to the reference's minimum; the MAE also over the points with a new contact
    (``contacts`` > NEW_CONTACT Å, from new_contacts) and over the others (nan where there are none)."""
    rows = []
    for name in DIHEDRALS:
        points = sorted((n for n, a in enumerate(scans) if a.info["dihedral"] == name),
                        key=lambda n: scans[n].info["point"])
        if not points:
            continue
        reference = np.array([scans[n].get_potential_energy() for n in points])
        energies = np.array([predicted[n] for n in points])
        origin = int(np.argmin(reference))
        errors = np.abs((energies - energies[origin]) - (reference - reference[origin]))
        new = contacts[points] > NEW_CONTACT
        part = lambda mask: 1000 * float(errors[mask].mean()) if mask.any() else float("nan")  # noqa: E731
        rows.append({"dihedral": name, "points": len(points), "mae_mev": 1000 * float(errors.mean()),
                     "new_contact_points": int(new.sum()), "mae_new_mev": part(new), "mae_seen_mev": part(~new),
                     "barrier_ref_mev": 1000 * float(np.ptp(reference)),
                     "barrier_pred_mev": 1000 * float((energies - energies[origin]).max())})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, help="cache of the MD and the scans")
    parser.add_argument("--model", default="equivariant")
    parser.add_argument("--minutes", type=float, default=30.0, help="nnip's training budget")
    parser.add_argument("--epochs", type=int, help="train nnip for this many epochs instead of --minutes (for a "
                        "diagnosis whose runs share the cores: the result does not depend on the speed)")
    parser.add_argument("--frames", type=int, default=500, help="MD frames for training")
    parser.add_argument("--step", type=float, default=15.0, help="scan step, degrees")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one of nnip's defaults (as `nnip train --set`), e.g. model.cutoff=4; repeatable")
    parser.add_argument("--mace", action="store_true", help="also MACE, trained the same way (mace_accuracy.py)")
    parser.add_argument("--mace-epochs", type=int, help="train MACE for this many epochs instead of --minutes")
    args = parser.parse_args()
    if args.mace_epochs and not args.mace:
        parser.error("--mace-epochs needs --mace")
    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    md = make_md(work / "md.extxyz", args.frames, args.seed)
    scans = make_scans(work / "scans.extxyz", md[0], args.step)
    md_energies = np.array([a.get_potential_energy() for a in md])
    spans = {name: np.ptp([a.get_potential_energy() for a in scans if a.info["dihedral"] == name])
             for name in DIHEDRALS}
    print(f"{len(md)} MD frames (energy std {1000 * md_energies.std():.0f} meV); {len(scans)} scan points (relaxed "
          f"energy span per dihedral: {', '.join(f'{n} {1000 * v:.0f} meV' for n, v in spans.items())})")
    variant = "".join(f"_{item.replace('=', '-')}" for item in args.set)
    budget = budget_name(args.minutes, args.epochs)
    folder = work / f"{args.model}_{budget}_seed{args.seed}{variant}"  # resumed when it exists
    limit = {"max_epochs": args.epochs} if args.epochs else {"max_time": 60 * args.minutes}
    config = {"seed": args.seed, "output": str(folder), "model": {"name": args.model},
              "data": {"train": str(work / "md.extxyz"), "split": {"val": 0.1}},
              "training": {**limit, "progress": False, "plots": False}}
    report = nnip.train(config, args.set, resume=(folder / "config.yaml").is_file())
    model = nnip.load(folder / "model.pt")
    changes = "".join(", " + item for item in args.set)
    print(f"nnip {args.model}, defaults{changes}, {budget} ({report['epochs']} epochs): "
          f"validation force MAE {1000 * report['val']['forces_mae']:.1f} meV/Å")
    predictions = {"nnip": nnip_energies(model, scans)}
    if args.mace:
        predictions["MACE"] = mace_energies(work, args.minutes, args.seed, args.threads, args.mace_epochs)
    contacts = new_contacts(md, scans)
    print(f"{'dihedral':9s} {'points':>6s} {'package':>7s} {'rel. E MAE meV':>14s} {'new contact':>16s} "
          f"{'other points':>12s} {'barrier GFN2':>12s} {'barrier':>8s}")
    for package, energies in predictions.items():
        for row in scan_errors(scans, energies, contacts):
            print(f"{row['dihedral']:9s} {row['points']:6d} {package:>7s} {row['mae_mev']:14.1f} "
                  f"{row['mae_new_mev']:10.1f} ({row['new_contact_points']:2d}) {row['mae_seen_mev']:12.1f} "
                  f"{row['barrier_ref_mev']:12.0f} {row['barrier_pred_mev']:8.0f}")
    print(f"new contact: MAE over the points where two atoms at least 4 bonds apart come more than {NEW_CONTACT} Å "
          "closer than in any MD frame (their number); other points: the rest")


if __name__ == "__main__":
    main()
