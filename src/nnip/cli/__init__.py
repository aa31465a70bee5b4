"""Command-line interface: thin wrappers over the Python API.

Every command exits 0 on success and 2 with one clear line on a user error. One module per
group of commands (:mod:`~nnip.cli.data`, :mod:`~nnip.cli.train`, :mod:`~nnip.cli.md`,
:mod:`~nnip.cli.active`, :mod:`~nnip.cli.export`, :mod:`~nnip.cli.deploy`, :mod:`~nnip.cli.demo`); what several of
them share is in :mod:`nnip.cli.options`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nnip.cli.active import add_active, add_attack, add_sample
from nnip.cli.data import add_info, add_label
from nnip.cli.demo import add_demo
from nnip.cli.deploy import add_deploy
from nnip.cli.export import add_export
from nnip.cli.md import add_analyze, add_md, add_relax
from nnip.cli.train import add_evaluate, add_train
from nnip.errors import NnipError
from nnip.version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnip",
        description="Interatomic potentials enabled by machine learning.",
        epilog="Run `nnip COMMAND --help` for the options and an example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"nnip {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_info, add_train, add_evaluate, add_label, add_md, add_relax, add_analyze,
                add_sample, add_attack, add_active, add_export, add_deploy, add_demo):
        add(commands)
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
