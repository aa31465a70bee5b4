"""Command-line interface: thin wrappers over the Python API.

Every command exits 0 on success and 2 with one clear line on a user error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnip.cli_export import add_export
from nnip.cli_md import add_analyze, add_md, add_relax, positive_int
from nnip.cli_sample import add_active, add_attack, add_sample
from nnip.errors import NnipError
from nnip.version import __version__

__all__ = ["main"]


def _info(args: argparse.Namespace) -> int:
    from nnip.data.io import inspect
    from nnip.data.summary import format_summary, summarize
    from nnip.data.validation import unit_problem

    require = tuple(r for r in args.require.split(",") if r) if args.require else ()
    status = 0
    for path in args.data:
        inspection = inspect(path, require=require, energy_unit=args.energy_unit, energy_key=args.energy_key,
                             forces_key=args.forces_key, stress_key=args.stress_key)
        print(format_summary(path, summarize(inspection.frames), inspection.n_frames_in_file))
        suspect = unit_problem(inspection.frames) if args.energy_unit is None else None
        if suspect:
            print(f"units:         {suspect}; give --energy-unit if so")
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

    from nnip.cli_md import load_model
    from nnip.data.io import read
    from nnip.training.evaluate import evaluate, format_metrics, to_json, write_parity_plots

    model = load_model(args.model, device=args.device)
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

    from pathlib import Path

    failures = Path(args.output + ".failures.txt")
    count = label_file(args.data, args.oracle, args.output, workers=args.workers, resume=args.resume)
    print(f"labelled {count} structures with {args.oracle} -> {args.output}")
    if failures.is_file():
        n = len(failures.read_text().splitlines())
        print(f"{n} structure(s) failed; reasons in {failures} (--resume retries them)", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from nnip.demo import run_demo

    run_demo(args.output, quick=args.quick, resume=args.resume, overwrite=args.overwrite)
    return 0


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
    add_md(commands)
    add_relax(commands)
    add_analyze(commands)
    add_sample(commands)
    add_attack(commands)
    add_active(commands)
    add_export(commands)
    _add_demo(commands)
    return parser


def _add_info(commands) -> None:
    info = commands.add_parser(
        "info",
        help="summarise a dataset and list every problem in it",
        description="Summarise datasets (frames, elements, composition, energy and force ranges, "
        "periodicity) and list every problem found. Exit status 1 when a file has problems.",
        epilog="example: nnip info train.extxyz --require energy,forces\n"
               "         nnip info dft.extxyz --energy-key REF_energy --forces-key REF_forces --energy-unit kcal/mol",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("data", nargs="+", help="data files (extxyz, xyz, traj, ASE db, MD17 .npz)")
    info.add_argument("--require", default="", help="labels every frame must have, e.g. energy,forces")
    info.add_argument("--energy-unit", default=None,
                      help="energy unit in the file: eV (default), kcal/mol (default for .npz), kJ/mol, Hartree, meV")
    info.add_argument("--energy-key", default="energy", help="name of the energy label in the file (default energy)")
    info.add_argument("--forces-key", default="forces", help="name of the forces label (default forces)")
    info.add_argument("--stress-key", default="stress", help="name of the stress label (default stress)")
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
    evaluate.add_argument("model", help="model file written by nnip train or nnip.save; A.pt,B.pt,... "
                          "evaluates the ensemble of those files")
    evaluate.add_argument("data", help="labelled structures (extxyz, MD17 .npz, ...)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object (keys as in DESIGN.md)")
    evaluate.add_argument("--plots", default=None, metavar="DIR", help="write parity plots (PNG) to DIR")
    evaluate.add_argument("--batch-size", type=positive_int, default=64, help="structures per evaluation batch")
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
    label.add_argument("--workers", type=positive_int, default=1, help="parallel processes")
    label.add_argument("--resume", action="store_true", help="continue into an existing OUTPUT")
    label.set_defaults(run=_label)


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job end to end on bundled data: train, evaluate, active learning, MD, report",
        description="On the GFN2-xTB ethanol data nnip ships: train a SchNet ensemble, run adversarial active "
                    "learning with GFN2-xTB as the oracle, evaluate errors and uncertainty calibration, run MD at "
                    "300 K with uncertainty monitoring, and write report.html and report.json to the output "
                    "folder. About 6 minutes on 2 CPU cores; --quick about a minute.",
        epilog="example: nnip demo --output runs/demo   (then open runs/demo/report.html)",
    )
    demo.add_argument("--output", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test of every step")
    demo.add_argument("--resume", action="store_true", help="continue an interrupted demo in --output")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --output")
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
