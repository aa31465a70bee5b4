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

    demo = commands.add_parser(
        "demo",
        help="run the main job end to end on bundled data",
        description="Run nnip's main job end to end on the data it ships and print a summary.",
        epilog="example: nnip demo --quick",
    )
    demo.add_argument("--quick", action="store_true", help="a shorter run for smoke tests")
    demo.set_defaults(run=_demo)
    return parser


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
