"""Command-line interface: thin wrappers over the Python API.

Every command exits 0 on success and 2 with one clear line on a user error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnip.errors import NnipError
from nnip.version import __version__

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    from nnip.data.io import inspect
    from nnip.data.summary import format_summary, summarize

    require = tuple(r for r in args.require.split(",") if r) if args.require else ()
    status = 0
    for path in args.data:
        inspection = inspect(path, require=require, energy_unit=args.energy_unit)
        print(format_summary(path, summarize(inspection.frames), inspection.n_frames_in_file))
        if inspection.problems:
            status = 1
            print(f"problems:      {len(inspection.problems)}")
            for problem in inspection.problems:
                print(f"  - {problem}")
        else:
            print("problems:      none")
        print()
    return status


def _train(args: argparse.Namespace) -> int:
    from nnip.training.config import load_config
    from nnip.training.evaluate import format_metrics
    from nnip.training.run import run_training

    config, resolved = load_config(args.config, args.set)
    report = run_training(config, resolved, resume=args.resume, overwrite=args.overwrite)
    if not report:  # a non-zero rank of a distributed run
        return 0
    print(f"\nrun folder: {config.output}  (model.pt, report.json, metrics.csv, plots)")
    for split in ("val", "test"):
        if isinstance(report.get(split), dict):
            print(f"\n{split} set\n{format_metrics(report[split])}")
    if "test_mean" in report:
        print(f"\n{report['kfold']}-fold cross-validation, test mean\n{format_metrics(report['test_mean'])}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from nnip.potentials.serialization import load
    from nnip.training.evaluate import evaluate, format_metrics, to_json, write_parity_plots
    from nnip.data.io import read

    model = load(args.model, device=args.device)
    if args.dtype:
        import torch

        model.to(getattr(torch, args.dtype))
    frames = read(args.data, energy_unit=args.energy_unit, energy_key=args.energy_key, forces_key=args.forces_key)
    metrics, predictions = evaluate(model, frames, args.batch_size, args.device, source=str(args.data))
    if args.plots:
        from pathlib import Path

        write_parity_plots(predictions, Path(args.plots), title=str(args.data))
    if args.json:
        print(json.dumps(to_json(metrics), indent=2))
    else:
        print(f"{args.model} on {args.data}\n{format_metrics(metrics)}")
    return 0


def _label(args: argparse.Namespace) -> int:
    from nnip.oracles import label_file

    count = label_file(args.data, args.oracle, args.output, workers=args.workers, resume=args.resume)
    print(f"labelled {count} structures with {args.oracle} -> {args.output}")
    return 0


def _calculator(model_or_oracle: str, dtype: str | None, device: str = "cpu"):
    """nnip.Calculator of a model file, or the ASE calculator of an oracle name."""
    from pathlib import Path

    if Path(model_or_oracle).is_file():
        from nnip.calculator import Calculator
        from nnip.potentials.serialization import load

        return Calculator(load(model_or_oracle), dtype=dtype, device=device)
    from nnip.oracles import get_oracle

    return get_oracle(model_or_oracle).factory()


def _structure(path: str):
    from nnip.data.io import read

    return read(path, index=-1)[0]


def _md(args: argparse.Namespace) -> int:
    from nnip.md.run import MDSettings, run_md

    settings = MDSettings(steps=args.steps, timestep=args.timestep, temperature=args.temperature,
                          thermostat=args.thermostat, friction=args.friction, tau=args.tau, pressure=args.pressure,
                          interval=args.interval, seed=args.seed, stop_uncertainty=args.stop_uncertainty)
    calculator = _calculator(args.model, args.dtype, args.device)
    bias = _metadynamics(args) if args.metadynamics else None
    if bias is not None:
        from ase.calculators.mixing import SumCalculator

        calculator = SumCalculator([calculator, bias])
    result = run_md(_structure(args.structure), calculator, settings, args.output, args.log)
    if bias is not None:
        _write_free_energy(bias, args.output)
    why = "stopped: max force std above the limit" if result.stopped == "uncertainty" else "finished"
    print(f"{result.steps} steps, {why}; trajectory {args.output}" + (f", log {args.log}" if args.log else ""))
    return 0


def _metadynamics(args: argparse.Namespace):
    from nnip.errors import ConfigError
    from nnip.md.metadynamics import DihedralMetadynamics

    try:
        indices = [int(i) for i in args.metadynamics.split(",")]
        return DihedralMetadynamics(indices, args.meta_height, args.meta_width, args.meta_pace, args.bias_factor,
                                    args.temperature)
    except ValueError as error:
        raise ConfigError(f"--metadynamics {args.metadynamics}: {error} (expected four atom indices I,J,K,L)") from None


def _write_free_energy(bias, output: str) -> None:
    from pathlib import Path

    import numpy as np

    from nnip.plots import profile_plot

    grid = np.linspace(-np.pi, np.pi, 361)
    profile = bias.free_energy(grid)
    stem = Path(output).with_suffix("")
    np.savetxt(f"{stem}_free_energy.csv", np.column_stack([np.degrees(grid), profile]), delimiter=",",
               header="dihedral_deg,free_energy_eV", comments="")
    profile_plot(np.degrees(grid), profile, f"{stem}_free_energy.png", xlabel="dihedral (degrees)",
                 ylabel="free energy (eV)")
    print(f"free-energy profile: {stem}_free_energy.png, {stem}_free_energy.csv")


def _relax(args: argparse.Namespace) -> int:
    from nnip.md.run import relax

    atoms = relax(_structure(args.structure), _calculator(args.model, args.dtype), args.fmax, args.steps,
                  args.optimizer, args.cell, args.output)
    print(f"relaxed: energy {atoms.get_potential_energy():.6f} eV, max force "
          f"{abs(atoms.get_forces()).max():.4f} eV/Å -> {args.output}")
    return 0


def _analyze(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from nnip.data.io import read
    from nnip.md.analysis import energy_drift, radial_distribution, read_md_log, temperature_statistics
    from nnip.plots import rdf_plot

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
    output.mkdir(parents=True, exist_ok=True)
    (output / "analysis.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nnip.demo import run_demo

    return run_demo(quick=args.quick)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnip",
        description="Interatomic potentials enabled by machine learning.",
        epilog="Run `nnip COMMAND --help` for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"nnip {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    _add_info(commands)
    _add_train(commands)
    _add_evaluate(commands)
    _add_label(commands)
    _add_md(commands)
    _add_relax(commands)
    _add_analyze(commands)
    _add_demo(commands)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _add_info(commands) -> None:
    info = commands.add_parser(
        "info",
        help="summarise a dataset and list every problem in it",
        description="Summarise datasets (frames, elements, composition, energy and force ranges, "
        "periodicity) and list every problem found. Exit status 1 when a file has problems.",
        epilog="example: nnip info train.extxyz --require energy,forces",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("data", nargs="+", help="data files (extxyz, xyz, traj, ASE db, MD17 .npz)")
    info.add_argument("--require", default="", help="labels every frame must have, e.g. energy,forces")
    info.add_argument("--energy-unit", default=None,
                      help="energy unit in the file: eV (default), kcal/mol (default for .npz), kJ/mol, Hartree, meV")
    info.set_defaults(run=_info)


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a potential (or an ensemble, or k folds) from a YAML config",
        description="Train as CONFIG says; writes config.yaml, model.pt, checkpoint.pt, metrics.csv, "
        "report.json and plots to the run folder (config key 'output'). Data-parallel with "
        "`torchrun --nproc_per_node N -m nnip train CONFIG`.",
        epilog="examples:\n  nnip train configs/morse_si.yaml\n"
        "  nnip train config.yaml --set training.lr=0.005 --set output=runs/lr5e-3\n"
        "  nnip train config.yaml --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", help="YAML configuration file")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. training.max_epochs=50 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an earlier run in the output folder")
    train.set_defaults(run=_train)


def _add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="errors of a model (or ensemble) on labelled data",
        description="Energy, force and stress errors of MODEL on DATA (eV, eV/atom, eV/Å); "
        "ensembles add the mean force std and the rank correlation of uncertainty with error.",
        epilog="example: nnip evaluate runs/ethanol/model.pt test.extxyz --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument("model", help="model file written by nnip train or nnip.save")
    evaluate.add_argument("data", help="labelled structures (extxyz, MD17 .npz, ...)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (keys as in DESIGN.md)")
    evaluate.add_argument("--plots", default=None, metavar="DIR", help="write parity plots (PNG) to DIR")
    evaluate.add_argument("--batch-size", type=_positive_int, default=64, help="structures per evaluation batch")
    evaluate.add_argument("--dtype", choices=("float32", "float64"), default=None, help="evaluate in this dtype")
    evaluate.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    evaluate.add_argument("--energy-unit", default=None, help="energy unit in DATA (default eV; kcal/mol for .npz)")
    evaluate.add_argument("--energy-key", default="energy", help="name of the energy label in DATA")
    evaluate.add_argument("--forces-key", default="forces", help="name of the forces label in DATA")
    evaluate.set_defaults(run=_evaluate)


def _add_label(commands) -> None:
    label = commands.add_parser(
        "label",
        help="compute reference energies and forces with an oracle (GFN2-xTB, EMT, ...)",
        description="Label every structure of DATA with a reference method and write them to OUTPUT "
        "(extxyz) as each finishes; a killed run keeps what it finished and --resume labels the rest. "
        "Oracles: emt, gfn2, gfn1 (tblite), double_well, model:PATH, module:Class.",
        epilog="example: nnip label candidates.extxyz --oracle gfn2 --output labelled.extxyz --workers 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    label.add_argument("data", help="structures to label (any format nnip reads)")
    label.add_argument("--oracle", required=True, help="reference method (see above)")
    label.add_argument("--output", required=True, help="extxyz file to write")
    label.add_argument("--workers", type=_positive_int, default=1, help="parallel processes")
    label.add_argument("--resume", action="store_true", help="continue into an existing OUTPUT")
    label.set_defaults(run=_label)


def _add_md(commands) -> None:
    md = commands.add_parser(
        "md", help="molecular dynamics with a model, an ensemble or an oracle",
        description="Run MD (ASE integrators) from the last frame of STRUCTURE; writes frames with energies, "
        "temperature and max force std to --output and one row per frame to --log.",
        epilog="example: nnip md runs/ens/model.pt start.extxyz --steps 20000 --timestep 0.5 --temperature 300 "
        "--thermostat langevin --output md.extxyz --log md.csv --stop-uncertainty 0.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    md.add_argument("model", metavar="MODEL_OR_ORACLE", help="model file, or an oracle name (gfn2, emt, ...)")
    md.add_argument("structure", help="starting structure (its last frame)")
    md.add_argument("--steps", type=int, default=1000)
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--thermostat", choices=("nve", "langevin", "nose-hoover", "berendsen"), default="langevin")
    md.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    md.add_argument("--tau", type=float, default=100.0, help="thermostat time constant, fs")
    md.add_argument("--pressure", type=float, default=None, help="GPa: NPT (nose-hoover or berendsen)")
    md.add_argument("--interval", type=_positive_int, default=10, help="steps between written frames")
    md.add_argument("--seed", type=int, default=0, help="seed of the initial velocities and Langevin noise")
    md.add_argument("--stop-uncertainty", type=float, default=None, metavar="X",
                    help="stop when the largest per-atom force std of an ensemble exceeds X eV/Å")
    md.add_argument("--metadynamics", default=None, metavar="I,J,K,L",
                    help="well-tempered metadynamics on the dihedral of these four atoms (0-based)")
    md.add_argument("--meta-height", type=float, default=0.02, help="Gaussian height, eV")
    md.add_argument("--meta-width", type=float, default=0.35, help="Gaussian width, radians")
    md.add_argument("--meta-pace", type=_positive_int, default=25, help="steps between Gaussians")
    md.add_argument("--bias-factor", type=float, default=15.0, help="well-tempered bias factor (> 1)")
    md.add_argument("--output", default="md.extxyz", help="trajectory (extxyz)")
    md.add_argument("--log", default=None, help="CSV log")
    md.add_argument("--dtype", choices=("float32", "float64"), default=None)
    md.add_argument("--device", default="cpu")
    md.set_defaults(run=_md)


def _add_relax(commands) -> None:
    relax = commands.add_parser(
        "relax", help="geometry optimisation (BFGS or FIRE, optionally with the cell)",
        description="Relax STRUCTURE to --fmax; --cell also relaxes a periodic cell (Frechet cell filter).",
        epilog="example: nnip relax model.pt crystal.extxyz --cell --fmax 0.01 --output relaxed.extxyz")
    relax.add_argument("model", metavar="MODEL_OR_ORACLE")
    relax.add_argument("structure")
    relax.add_argument("--fmax", type=float, default=0.01, help="eV/Å")
    relax.add_argument("--steps", type=int, default=1000)
    relax.add_argument("--optimizer", choices=("BFGS", "FIRE"), default="BFGS")
    relax.add_argument("--cell", action="store_true", help="relax the cell too (periodic structures)")
    relax.add_argument("--output", default="relaxed.extxyz")
    relax.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    relax.set_defaults(run=_relax)


def _add_analyze(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="radial distribution functions, energy drift and temperature of an MD run",
        description="g(r) per element pair (periodic trajectories) as rdf.png; with --log the total-energy "
        "drift (eV/atom/ps) and temperature statistics; everything also in analysis.json.",
        epilog="example: nnip analyze md.extxyz --log md.csv --rmax 6 --output analysis/")
    analyze.add_argument("trajectory")
    analyze.add_argument("--log", default=None, help="the CSV log of nnip md")
    analyze.add_argument("--rmax", type=float, default=6.0, help="Å")
    analyze.add_argument("--bins", type=_positive_int, default=120)
    analyze.add_argument("--output", default="analysis", help="folder for rdf.png and analysis.json")
    analyze.set_defaults(run=_analyze)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the main job end to end on bundled data",
        description="Run nnip's main job end to end on the data it ships and print a summary.",
        epilog="example: nnip demo --quick",
    )
    demo.add_argument("--quick", action="store_true", help="a shorter run for smoke tests")
    demo.set_defaults(run=_demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nnip`` console script."""
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except NnipError as error:
        print(f"nnip {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnip {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
