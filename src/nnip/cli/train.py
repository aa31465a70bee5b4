"""``nnip train`` and ``nnip evaluate``: fit a potential from a YAML config, and measure its errors."""

from __future__ import annotations

import argparse

from nnip.cli.options import (
    add_device, add_dtype, add_label_names, add_run_control, load_model, positive_int, set_dtype,
)

__all__ = ["add_train", "add_evaluate"]


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

    from nnip.data.io import read
    from nnip.errors import DataError
    from nnip.training.evaluate import evaluate, format_metrics, to_json, write_parity_plots

    model = load_model(args.model, device=args.device)
    set_dtype(model, args.dtype)
    frames = read(args.data, energy_unit=args.energy_unit, energy_key=args.energy_key, forces_key=args.forces_key)
    if not any(a.calc is not None and ("energy" in a.calc.results or "forces" in a.calc.results) for a in frames):
        raise DataError(f"{args.data}: no structure has an energy ({args.energy_key!r}) or forces "
                        f"({args.forces_key!r}) to compare with; name them with --energy-key / --forces-key")
    metrics, predictions = evaluate(model, frames, args.batch_size, args.device, source=str(args.data))
    if args.plots:
        from pathlib import Path

        write_parity_plots(predictions, Path(args.plots), title=str(args.data))
    if args.json:
        print(json.dumps(to_json(metrics), indent=2))
    else:
        print(f"{args.model} on {args.data}\n{format_metrics(metrics)}")
    return 0


def add_train(commands) -> None:
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
    add_run_control(train, "YAML configuration file (every key, its type, bounds and default: docs/configuration.md)",
                    "override a config key, e.g. training.max_epochs=50 (repeatable)",
                    "continue an interrupted run from its checkpoint")
    train.set_defaults(run=_train)


def add_evaluate(commands) -> None:
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
    add_dtype(evaluate, help="evaluate in this dtype")
    add_device(evaluate, help="torch device, e.g. cpu or cuda")
    add_label_names(evaluate, "energy unit in DATA (default eV; kcal/mol for .npz)",
                    "name of the energy label in DATA", "name of the forces label in DATA")
    evaluate.set_defaults(run=_evaluate)
