"""``nnip export``: a model file as a torch.export program (.pt2), checked against the original."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnip.cli.options import add_dtype, set_dtype

#: largest accepted |difference| between a model and its export: energy eV, forces eV/Å, stress eV/Å^3
TOLERANCE = {"energy": 1e-4, "forces": 1e-4, "stress": 1e-6}


def _export(args: argparse.Namespace) -> int:
    from nnip.data.io import read
    from nnip.errors import ConfigError
    from nnip.potentials import Ensemble, load
    from nnip.potentials.files.export import compare, export_potential, graph_of, load_exported, metadata_of, save_exported

    model = load(args.model)
    if isinstance(model, Ensemble):
        if args.member is None:
            raise ConfigError(f"{args.model}: an ensemble of {len(model.members)} members; export one with --member K")
        if not 0 <= args.member < len(model.members):
            raise ConfigError(f"--member: expected 0..{len(model.members) - 1}, got {args.member}")
        model = model.members[args.member]
    set_dtype(model, args.dtype)
    frames = read(args.structures, index=":10")
    example = next((a for a in frames if len(a) >= 3), None)
    if example is None:
        raise ConfigError(f"{args.structures}: needs a structure of at least 3 atoms to trace the model on")
    output = Path(args.output or Path(args.model).with_suffix(".pt2"))
    if output.exists() and not args.overwrite:
        raise ConfigError(f"{output}: exists; use --overwrite to replace it")
    program = export_potential(model, graph_of(example, model))
    checking = output.with_name(f".{output.name}.check.pt2")
    save_exported(program, metadata_of(model), checking)
    try:
        worst = compare(model, load_exported(checking), frames)
        failed = [k for k, v in worst.items() if v > TOLERANCE[k]]
        if failed:
            raise ConfigError(f"the export differs from {args.model} by {', '.join(f'{k} {worst[k]:.2e}' for k in failed)}"
                              f" on {args.structures}; not written")
        os.replace(checking, output)
    finally:
        checking.unlink(missing_ok=True)
    print(f"wrote {output} ({model.dtype}, cutoff {model.cutoff} Å); checked on {len(frames)} structure(s) of "
          f"{args.structures}: largest |difference| energy {worst['energy']:.1e} eV, forces {worst['forces']:.1e} eV/Å"
          + (f", stress {worst['stress']:.1e} eV/Å^3" if any(a.pbc.all() for a in frames) else ""))
    return 0


def add_export(commands) -> None:
    export = commands.add_parser(
        "export",
        help="a model as a torch.export program (.pt2) for deployment, checked against the original",
        description="Export a model's energy as a torch.export program (runs with torch.export.load and no nnip "
                    "code; forces and stress by autograd, see nnip.potentials.files.export). The program is traced on the "
                    "first structure of --structures and checked on up to 10 of them: energies, forces and stress "
                    "must match the original model, or nothing is written.",
        epilog="example: nnip export runs/ethanol/model.pt --structures test.extxyz --output ethanol.pt2",
    )
    export.add_argument("model", help="model file written by nnip train (an ensemble needs --member)")
    export.add_argument("--structures", required=True, help="structures to trace on and check with (any ASE format)")
    export.add_argument("--output", default=None, help="output file (default MODEL with suffix .pt2)")
    export.add_argument("--member", type=int, default=None, help="member of an ensemble to export")
    add_dtype(export, help="arithmetic (default the model's)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    export.set_defaults(run=_export)
