"""``nnip sample``, ``nnip attack`` and ``nnip active``: new structures to label, and the active-learning loop."""

from __future__ import annotations

import argparse

from nnip.cli.options import (
    add_dtype, add_run_control, calculator_of, last_frame, load_model, model_files, positive_int, set_dtype,
)

__all__ = ["add_sample", "add_attack", "add_active"]


def _sample(args: argparse.Namespace) -> int:
    from nnip.active.sampling import hessian, normal_mode_samples, potential_hessian, rattled
    from nnip.data.io import write
    from nnip.errors import ConfigError

    atoms = last_frame(args.structure)
    if args.method == "rattle":
        samples = rattled(atoms, args.count, args.amplitude, args.seed)
    else:
        if args.calculator is None:
            raise ConfigError("normal-mode sampling needs --calculator MODEL_OR_ORACLE for the Hessian")
        calculator = calculator_of(args.calculator, "float64")
        if args.relax is not None:
            from ase.optimize import BFGS

            atoms.calc = calculator
            BFGS(atoms, logfile=None).run(fmax=args.relax, steps=1000)
            atoms.calc = None
        exact = model_files(args.calculator) is not None
        matrix = potential_hessian(atoms, load_model(args.calculator)) if exact else hessian(atoms, calculator)
        try:
            samples = normal_mode_samples(atoms, matrix, args.temperature, args.count, args.seed)
        except ValueError as error:
            raise ConfigError(f"{args.structure}: {error} (--relax FMAX does that)") from None
    for sample in samples:
        sample.info = {"sampling": args.method}
    write(args.output, samples)
    print(f"{len(samples)} structures ({args.method}) -> {args.output}; label them with nnip label")
    return 0


def add_sample(commands) -> None:
    sample = commands.add_parser(
        "sample", help="candidate structures by normal-mode sampling or random rattling",
        description="Displace the last frame of STRUCTURE: along its vibrational modes with Boltzmann "
        "amplitudes at --temperature (Hessian by autograd for a model file, by finite differences of "
        "forces for an oracle; the structure should be a minimum: --relax FMAX relaxes it first), or "
        "by Gaussian noise of --amplitude Å. Writes unlabelled structures for nnip label.",
        epilog="example: nnip sample ethanol.extxyz --method normal-modes --calculator gfn2 --relax 0.001 "
        "--temperature 300 --count 200 --output candidates.extxyz")
    sample.add_argument("structure", help="structure file to sample around (its last frame)")
    sample.add_argument("--method", choices=("normal-modes", "rattle"), default="normal-modes",
                        help="displacements along the normal modes at --temperature, or random ones")
    sample.add_argument("--calculator", metavar="MODEL_OR_ORACLE", default=None,
                        help="model file(s) or oracle name giving the Hessian (normal modes)")
    sample.add_argument("--temperature", type=float, default=300.0, help="K (normal modes)")
    sample.add_argument("--amplitude", type=float, default=0.05, help="Å, standard deviation (rattle)")
    sample.add_argument("--relax", type=float, default=None, metavar="FMAX",
                        help="relax to FMAX eV/Å with the calculator before the Hessian")
    sample.add_argument("--count", type=positive_int, default=100, help="structures to write")
    sample.add_argument("--seed", type=int, default=0, help="random seed")
    sample.add_argument("--output", default="samples.extxyz", help="extxyz file to write")
    sample.set_defaults(run=_sample)


def _training_energies(args: argparse.Namespace, seeds, ensemble) -> tuple[list[float], list[int], str]:
    """Energies (eV) and sizes for the Boltzmann normalisation: --train, else the seeds' labels or predictions."""
    from nnip.data.io import read

    frames = read(args.train) if args.train else seeds
    energies = [a.calc.results.get("energy") if a.calc is not None else None for a in frames]
    if all(e is not None for e in energies):
        return energies, [len(a) for a in frames], args.train or f"{args.seeds} (labels)"
    if args.train:
        from nnip.errors import DataError

        missing = next(k for k, e in enumerate(energies) if e is None)
        raise DataError(f"{args.train}: frame {missing}: no energy (the Boltzmann weight needs training energies)")
    from nnip.calculator import Calculator

    predicted = []
    for atoms in seeds:
        probe = atoms.copy()
        probe.calc = Calculator(ensemble)
        predicted.append(probe.get_potential_energy())
    return predicted, [len(a) for a in seeds], f"{args.seeds} (ensemble predictions)"


def _attack(args: argparse.Namespace) -> int:
    from ase import units

    from nnip.active.adversarial import KT_PAPER, Attack, AttackSettings
    from nnip.data.io import read, write
    from nnip.errors import ConfigError
    from nnip.potentials.contract.ensemble import Ensemble

    ensemble = load_model(args.ensemble)
    if not isinstance(ensemble, Ensemble) or len(ensemble) < 2:
        raise ConfigError(f"{args.ensemble}: an attack needs an ensemble (train with ensemble: M or "
                          "training.posterior_samples: K; or give A.pt,B.pt)")
    set_dtype(ensemble, args.dtype)
    seeds = read(args.seeds)
    kT = KT_PAPER if args.kT is None else args.kT
    if args.kT_kcal_mol is not None:
        kT = args.kT_kcal_mol * units.kcal / units.mol
    try:
        settings = AttackSettings(kT=kT, steps=args.steps, lr=args.lr, init_noise=args.init_noise, clamp=args.clamp,
                                  uncertainty=args.uncertainty, normalisation=args.normalisation,
                                  min_distance=args.min_distance, seed=args.seed,
                                  keep_trajectory=args.trajectory is not None, strain=args.strain,
                                  strain_lr=args.strain_lr, max_strain=args.max_strain)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    energies, sizes, source = _training_energies(args, seeds, ensemble)
    results = Attack(ensemble, energies, sizes, settings).run(seeds)
    write(args.output, [r.atoms for r in results])
    if args.trajectory:
        _write_trajectories(args.trajectory, results)
    stopped = sum(r.stopped == "distance" for r in results)
    diverged = sum(r.stopped == "not finite" for r in results)
    sigma = [r.sigma for r in results]
    print(f"{len(results)} attacked structures -> {args.output} (Boltzmann weight from {source}; kT {kT:.4f} eV); "
          f"sigma_{args.uncertainty[0].upper()} {min(sigma):.4g}..{max(sigma):.4g}; "
          f"{stopped} stopped by the distance guard" + (f", {diverged} at a step that gave NaN or inf" if diverged else ""))
    return 0


def _write_trajectories(path: str, results) -> None:
    """Every step of every seed, as frames with info 'seed' and 'step'."""
    from nnip.data.io import write

    frames = []
    for k, result in enumerate(results):
        for step, positions in enumerate(result.trajectory):
            atoms = result.atoms.copy()
            atoms.info = {"seed": k, "step": step}
            atoms.positions = positions
            frames.append(atoms)
    write(path, frames)


def add_attack(commands) -> None:
    attack = commands.add_parser(
        "attack", help="adversarial attack: move atoms to where the ensemble disagrees, weighted by Boltzmann",
        description="Maximise p(X) sigma^2(X) from every frame of SEEDS by Adam on the displacements "
        "(Schwalbe-Koda et al., Nat. Commun. 2021), with p normalised over training energies (--train; "
        "by default the seeds' own). Writes the final geometries with attack_sigma, attack_log_p and "
        "attack_log_objective in their info, ready for nnip label.",
        epilog="example: nnip attack runs/ens/model.pt seeds.extxyz --train train.extxyz --kT-kcal-mol 20 "
        "--steps 60 --output attacked.extxyz")
    attack.add_argument("ensemble", help="ensemble model file (or A.pt,B.pt,...)")
    attack.add_argument("seeds", help="starting structures (every frame is attacked)")
    attack.add_argument("--output", default="attacked.extxyz", help="extxyz file of the attacked structures")
    attack.add_argument("--train", default=None, help="labelled training data for the Boltzmann normalisation")
    temperature = attack.add_mutually_exclusive_group()
    temperature.add_argument("--kT", type=float, default=None, help="eV (default 20 kcal/mol = 0.867 eV)")
    temperature.add_argument("--kT-kcal-mol", type=float, default=None, help="kcal/mol")
    attack.add_argument("--normalisation", choices=("auto", "structure", "atom"), default="auto",
                        help="energies per structure or per atom (auto: per structure if all sizes agree)")
    attack.add_argument("--uncertainty", choices=("forces", "energy"), default="forces",
                        help="the ensemble variance the attack maximises")
    attack.add_argument("--steps", type=int, default=60, help="gradient steps of the attack")
    attack.add_argument("--lr", type=float, default=0.01, help="Adam learning rate, Å")
    attack.add_argument("--init-noise", type=float, default=0.01, help="Å")
    attack.add_argument("--clamp", type=float, default=3.0, help="largest displacement per component, Å")
    attack.add_argument("--min-distance", type=float, default=0.5,
                        help="refuse geometries with atoms closer than this fraction of their covalent radii")
    attack.add_argument("--strain", action="store_true", help="also deform the cell of periodic seeds")
    attack.add_argument("--strain-lr", type=float, default=0.001, help="Adam learning rate of the strain")
    attack.add_argument("--max-strain", type=float, default=0.05, help="largest strain component")
    attack.add_argument("--seed", type=int, default=0, help="seed of the initial random displacement")
    attack.add_argument("--trajectory", default=None, help="also write every step of every seed here")
    add_dtype(attack)
    attack.set_defaults(run=_attack)


def _active(args: argparse.Namespace) -> int:
    from nnip.active.loop import load_active_config, run_active

    config, settings, resolved = load_active_config(args.config, args.set)
    rows = run_active(config, settings, resolved, resume=args.resume, overwrite=args.overwrite)
    print(f"{len(rows)} generations in {config.output}: active.csv, active.png, store.db (every labelled structure)")
    return 0


def add_active(commands) -> None:
    active = commands.add_parser(
        "active", help="active learning: train an ensemble, sample, select, label with an oracle, repeat",
        description="Run the loop of the config's 'active' section on top of a training config "
        "(data, model, training, ensemble >= 2). Every label is committed to OUTPUT/store.db when it "
        "returns; --resume continues a killed run without repeating an oracle call.",
        epilog="example: nnip active configs/active/ethanol_gfn2.yaml --set active.generations=2 "
        "(then, after a crash: nnip active configs/active/ethanol_gfn2.yaml --resume)")
    add_run_control(active, None, "override a config value", "continue an interrupted run")
    active.set_defaults(run=_active)
