"""``nnip demo``: the main job end to end on bundled data."""

from __future__ import annotations

import argparse

__all__ = ["add_demo"]


def _demo(args: argparse.Namespace) -> int:
    from nnip.demo import run_demo

    run_demo(args.output, quick=args.quick, resume=args.resume, overwrite=args.overwrite)
    return 0


def add_demo(commands) -> None:
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
