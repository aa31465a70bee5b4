"""``nnip md``, ``nnip relax`` and ``nnip analyze``: thin wrappers over :mod:`nnip.md`."""

from __future__ import annotations

import argparse

from nnip.cli.options import (
    add_device, add_dtype, add_execution, add_model_or_oracle, calculator_of, last_frame, positive_int,
)

__all__ = ["add_md", "add_relax", "add_analyze"]


def _md(args: argparse.Namespace) -> int:
    from nnip.md.run import MDSettings, run_md

    settings = MDSettings(steps=args.steps, timestep=args.timestep, temperature=args.temperature,
                          thermostat=args.thermostat, friction=args.friction, tau=args.tau, pressure=args.pressure,
                          interval=args.interval, seed=args.seed, stop_uncertainty=args.stop_uncertainty)
    calculator = calculator_of(args.model, args.dtype, args.device, args.compile, args.memory)
    atoms = last_frame(args.structure)
    bias, observers = _metadynamics(args, atoms) if args.metadynamics else (None, ())
    if bias is not None:
        from nnip.md.biased import BiasedCalculator

        calculator = BiasedCalculator(calculator, [bias], sorted(set(atoms.numbers)))
    result = run_md(atoms, calculator, settings, args.output, args.log, observers=observers)
    if bias is not None:
        _write_free_energy(bias, args.output)
    why = "stopped: max force std above the limit" if result.stopped == "uncertainty" else "finished"
    print(f"{result.steps} steps, {why}; trajectory {args.output}" + (f", log {args.log}" if args.log else ""))
    return 0


def _metadynamics(args: argparse.Namespace, atoms):
    """The bias term of ``--metadynamics`` and the observer that deposits its hills."""
    from nnip.errors import ConfigError
    from nnip.md.metadynamics import MetadynamicsBias, MetadynamicsConfig

    kind, _, indices = args.metadynamics.partition(":")
    try:
        config = MetadynamicsConfig(kind, [int(i) for i in indices.split(",")], args.meta_height, args.meta_width,
                                    args.meta_pace, args.bias_factor, args.temperature)
        if max(config.indices) >= len(atoms):
            raise ValueError(f"the structure has {len(atoms)} atoms")
        bias = MetadynamicsBias(config, sorted(set(atoms.numbers)))
        return bias, [(lambda moved: bias.deposit(moved.positions), config.pace)]
    except ValueError as error:
        raise ConfigError(f"--metadynamics {args.metadynamics}: {error} "
                          "(expected distance:I,J, angle:I,J,K or dihedral:I,J,K,L)") from None


def _write_free_energy(bias, output: str) -> None:
    from pathlib import Path

    import numpy as np

    from nnip.plots import profile_plot

    grid = bias.grid()
    profile = bias.free_energy(grid)
    stem = Path(output).with_suffix("")
    unit = "Å" if bias.variable == "distance" else "degrees"
    values = grid if bias.variable == "distance" else np.degrees(grid)
    bias.save_hills(f"{stem}_hills.csv")
    np.savetxt(f"{stem}_free_energy.csv", np.column_stack([values, profile]), delimiter=",",
               header=f"{bias.variable},free_energy_eV", comments="")
    profile_plot(values, profile, f"{stem}_free_energy.png", xlabel=f"{bias.variable} ({unit})",
                 ylabel="free energy (eV)")
    print(f"free-energy profile: {stem}_free_energy.png, {stem}_free_energy.csv; hills: {stem}_hills.csv")


def _relax(args: argparse.Namespace) -> int:
    from nnip.md.run import relax

    calculator = calculator_of(args.model, args.dtype, compile_terms=args.compile, memory=args.memory)
    atoms = relax(last_frame(args.structure), calculator,
                  args.fmax, args.steps, args.optimizer, args.cell, args.output)
    print(f"relaxed: energy {atoms.get_potential_energy():.6f} eV, max force "
          f"{abs(atoms.get_forces()).max():.4f} eV/Å -> {args.output}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from nnip.data.io import read
    from nnip.md.analysis import energy_drift, radial_distribution, read_md_log, temperature_statistics
    from nnip.plots import profile_plot, rdf_plot

    frames = read(args.trajectory)
    output = Path(args.output)
    summary: dict = {"frames": len(frames)}
    if frames[0].pbc.all():
        curves = radial_distribution(frames, args.rmax, args.bins)
        rdf_plot(curves, output / "rdf.png")
        summary["rdf_first_peak"] = {k: float(r[int(g.argmax())]) for k, (r, g) in curves.items()}
    if args.log:
        log = read_md_log(args.log)
        summary["energy_drift_eV_per_atom_ps"] = energy_drift(log["time_fs"], log["total_energy"], len(frames[0]))
        summary.update(temperature_statistics(log["temperature"]))
        time_ps = log["time_fs"] / 1000
        profile_plot(time_ps, log["total_energy"] / len(frames[0]), output / "total_energy.png", xlabel="time (ps)",
                     ylabel="total energy (eV/atom)")
        profile_plot(time_ps, log["temperature"], output / "temperature.png", xlabel="time (ps)",
                     ylabel="temperature (K)")
    output.mkdir(parents=True, exist_ok=True)
    (output / "analysis.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def add_md(commands) -> None:
    md = commands.add_parser(
        "md", help="molecular dynamics with a model, an ensemble or an oracle",
        description="Run MD (ASE integrators) from the last frame of STRUCTURE; writes frames with energies, "
        "temperature and max force std to --output and one row per frame to --log.",
        epilog="example: nnip md runs/ens/model.pt start.extxyz --steps 20000 --timestep 0.5 --temperature 300 "
        "--thermostat langevin --output md.extxyz --log md.csv --stop-uncertainty 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_or_oracle(md, "model file (A.pt,B.pt,... for an ensemble of files), or an oracle name (gfn2, emt, ...)")
    md.add_argument("structure", help="starting structure (its last frame)")
    md.add_argument("--steps", type=int, default=1000, help="MD steps to run")
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--thermostat", choices=("nve", "langevin", "nose-hoover", "berendsen"), default="langevin",
                    help="integrator: nve (velocity Verlet) or a thermostat at --temperature")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--tau", type=float, default=100.0, help="thermostat time constant, fs")
    md.add_argument("--pressure", type=float, default=None, help="GPa: NPT (nose-hoover or berendsen)")
    md.add_argument("--interval", type=positive_int, default=10, help="steps between written frames")
    md.add_argument("--seed", type=int, default=0, help="seed of the initial velocities and Langevin noise")
    md.add_argument("--stop-uncertainty", type=float, default=None, metavar="X",
                    help="stop when the largest per-atom force std of an ensemble exceeds X eV/Å")
    md.add_argument("--metadynamics", default=None, metavar="KIND:I,J,...",
                    help="well-tempered metadynamics on distance:I,J, angle:I,J,K or dihedral:I,J,K,L (0-based atoms)")
    md.add_argument("--meta-height", type=float, default=0.02, help="Gaussian height, eV")
    md.add_argument("--meta-width", type=float, default=0.35, help="Gaussian width, radians (Å for a distance)")
    md.add_argument("--meta-pace", type=positive_int, default=25, help="steps between Gaussians")
    md.add_argument("--bias-factor", type=float, default=15.0, help="well-tempered bias factor (> 1)")
    md.add_argument("--output", default="md.extxyz", help="trajectory (extxyz)")
    md.add_argument("--log", default=None, help="CSV log")
    add_dtype(md)
    add_device(md)
    add_execution(md)
    md.set_defaults(run=_md)


def add_relax(commands) -> None:
    relax = commands.add_parser(
        "relax", help="geometry optimisation (BFGS or FIRE, optionally with the cell)",
        description="Relax STRUCTURE to --fmax; --cell also relaxes a periodic cell (Frechet cell filter).",
        epilog="example: nnip relax model.pt crystal.extxyz --cell --fmax 0.01 --output relaxed.extxyz")
    add_model_or_oracle(relax)
    relax.add_argument("structure", help="structure file to relax (its last frame)")
    relax.add_argument("--fmax", type=float, default=0.01, help="eV/Å")
    relax.add_argument("--steps", type=int, default=1000, help="optimizer steps at most")
    relax.add_argument("--optimizer", choices=("BFGS", "FIRE"), default="BFGS", help="ASE optimizer")
    relax.add_argument("--cell", action="store_true", help="relax the cell too (periodic structures)")
    relax.add_argument("--output", default="relaxed.extxyz", help="extxyz file of the relaxed structure")
    add_dtype(relax, default="float64")
    add_execution(relax)
    relax.set_defaults(run=_relax)


def add_analyze(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="radial distribution functions, energy drift and temperature of an MD run",
        description="g(r) per element pair (periodic trajectories) as rdf.png; with --log the total-energy "
        "drift (eV/atom/ps) and temperature statistics; everything also in analysis.json.",
        epilog="example: nnip analyze md.extxyz --log md.csv --rmax 6 --output analysis/")
    analyze.add_argument("trajectory", help="trajectory written by nnip md (extxyz)")
    analyze.add_argument("--log", default=None, help="the CSV log of nnip md")
    analyze.add_argument("--rmax", type=float, default=6.0, help="Å")
    analyze.add_argument("--bins", type=positive_int, default=120, help="histogram bins of g(r)")
    analyze.add_argument("--output", default="analysis", help="folder for rdf.png and analysis.json")
    analyze.set_defaults(run=_analyze)


