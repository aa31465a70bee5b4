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
    for command in _subcommands(parser):
        command.formatter_class = type("ShowDefaults", (_ShowDefaults, command.formatter_class), {})
    return parser


class _ShowDefaults(argparse.HelpFormatter):
    """Mixed into each command's formatter: every option's help ends with its default, unless it has none
    (None, off, empty) or names it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _subcommands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every command's parser, nested ones (``deploy lammps``) included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                found += [command, *_subcommands(command)]
    return found


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
