"""``nnip sample``: candidate structures for labelling by normal-mode sampling or rattling."""

from __future__ import annotations

import argparse

from nnip.cli_md import load_model, model_files, positive_int

__all__ = ["add_sample"]


def _sample(args: argparse.Namespace) -> int:
    from nnip.active.sampling import hessian, normal_mode_samples, potential_hessian, rattled
    from nnip.cli_md import _calculator, _structure
    from nnip.data.io import write
    from nnip.errors import ConfigError

    atoms = _structure(args.structure)
    if args.method == "rattle":
        samples = rattled(atoms, args.count, args.amplitude, args.seed)
    else:
        if args.calculator is None:
            raise ConfigError("normal-mode sampling needs --calculator MODEL_OR_ORACLE for the Hessian")
        calculator = _calculator(args.calculator, "float64")
        if args.relax is not None:
            from ase.optimize import BFGS

            atoms.calc = calculator
            BFGS(atoms, logfile=None).run(fmax=args.relax, steps=1000)
            atoms.calc = None
        exact = model_files(args.calculator) is not None
        matrix = potential_hessian(atoms, load_model(args.calculator)) if exact else hessian(atoms, calculator)
        try:
            samples = normal_mode_samples(atoms, matrix, args.temperature, args.count, args.seed)
        except ValueError as error:
            raise ConfigError(f"{args.structure}: {error} (--relax FMAX does that)") from None
    for sample in samples:
        sample.info = {"sampling": args.method}
    write(args.output, samples)
    print(f"{len(samples)} structures ({args.method}) -> {args.output}; label them with nnip label")
    return 0


def add_sample(commands) -> None:
    sample = commands.add_parser(
        "sample", help="candidate structures by normal-mode sampling or random rattling",
        description="Displace the last frame of STRUCTURE: along its vibrational modes with Boltzmann "
        "amplitudes at --temperature (Hessian by autograd for a model file, by finite differences of "
        "forces for an oracle; the structure should be a minimum: --relax FMAX relaxes it first), or "
        "by Gaussian noise of --amplitude Å. Writes unlabelled structures for nnip label.",
        epilog="example: nnip sample ethanol.extxyz --method normal-modes --calculator gfn2 --relax 0.001 "
        "--temperature 300 --count 200 --output candidates.extxyz")
    sample.add_argument("structure")
    sample.add_argument("--method", choices=("normal-modes", "rattle"), default="normal-modes")
    sample.add_argument("--calculator", metavar="MODEL_OR_ORACLE", default=None,
                        help="model file(s) or oracle name giving the Hessian (normal modes)")
    sample.add_argument("--temperature", type=float, default=300.0, help="K (normal modes)")
    sample.add_argument("--amplitude", type=float, default=0.05, help="Å, standard deviation (rattle)")
    sample.add_argument("--relax", type=float, default=None, metavar="FMAX",
                        help="relax to FMAX eV/Å with the calculator before the Hessian")
    sample.add_argument("--count", type=positive_int, default=100)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--output", default="samples.extxyz")
    sample.set_defaults(run=_sample)
