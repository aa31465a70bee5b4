"""``nnip info`` and ``nnip label``: what a dataset holds, and reference labels for new structures."""

from __future__ import annotations

import argparse
import sys

from nnip.cli.options import add_label_names, positive_int

__all__ = ["add_info", "add_label"]


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


def add_info(commands) -> None:
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
    add_label_names(info, "energy unit in the file: eV (default), kcal/mol (default for .npz), kJ/mol, Hartree, meV",
                    "name of the energy label in the file (default energy)",
                    "name of the forces label (default forces)")
    info.add_argument("--stress-key", default="stress", help="name of the stress label (default stress)")
    info.set_defaults(run=_info)


def add_label(commands) -> None:
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
