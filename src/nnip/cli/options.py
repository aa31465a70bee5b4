"""What several commands share: argument types, repeated options, and loading models and structures."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = [
    "COMPILE_HELP", "positive_int", "model_files", "load_model", "set_dtype", "calculator_of", "last_frame",
    "add_model_or_oracle", "add_dtype", "add_device", "add_execution", "add_label_names", "add_run_control",
]

COMPILE_HELP = ("compile the model with torch.compile: the first step takes up to a few minutes, later ones run "
                "faster (worth it for long runs; not for oracles)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def model_files(text: str) -> list[str] | None:
    """The model file, or comma-separated files (an ensemble), named by a MODEL argument; None if none exists."""
    if Path(text).is_file():
        return [text]
    paths = [p for p in text.split(",") if p]
    return paths if len(paths) > 1 and all(Path(p).is_file() for p in paths) else None


def load_model(text: str, device: str = "cpu"):
    """The potential of a MODEL argument: one file, or an ensemble of comma-separated files."""
    from nnip.potentials.files.serialization import load

    paths = model_files(text) or [text]  # a missing file: load() names it
    return load(paths[0] if len(paths) == 1 else paths, device=device)


def set_dtype(model, dtype: str | None) -> None:
    """Cast ``model`` to the torch dtype named by a --dtype argument; None keeps the model's."""
    if dtype:
        import torch

        model.to(getattr(torch, dtype))


def calculator_of(model_or_oracle: str, dtype: str | None, device: str = "cpu", compile_terms: bool = False,
                  memory: str | None = None):
    """nnip.Calculator of a model file (or comma-separated files), or the ASE calculator of an oracle name."""
    if model_files(model_or_oracle):
        from nnip.calculator import Calculator

        if compile_terms:
            print("compiling the model with torch.compile: the first step takes up to a few minutes", flush=True)
        return Calculator(load_model(model_or_oracle), dtype=dtype, device=device, compile=compile_terms,
                          memory=memory)
    from nnip.errors import ConfigError

    if ":" not in model_or_oracle and any(mark in model_or_oracle for mark in ("/", ",", ".pt")):
        missing = [p for p in model_or_oracle.split(",") if p and not Path(p).is_file()]
        raise ConfigError(f"{', '.join(missing) or model_or_oracle}: no such model file")
    if compile_terms:
        raise ConfigError(f"--compile: {model_or_oracle} is an oracle, not a model file; only models compile")
    from nnip.oracles import get_oracle

    return get_oracle(model_or_oracle).factory()


def last_frame(path: str):
    """The last structure of a file: where md, relax and sample start."""
    from nnip.data.io import read

    return read(path, index=-1)[0]


def add_model_or_oracle(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """The positional MODEL_OR_ORACLE of commands that run a calculator."""
    parser.add_argument("model", metavar="MODEL_OR_ORACLE", help=help or (
        "a model file (A.pt,B.pt,... for an ensemble of files) or an oracle: emt, gfn2, gfn1, model:PATH, "
        "module:Class"))


def add_dtype(parser: argparse.ArgumentParser, default: str | None = None, help: str | None = None) -> None:
    """--dtype: float32 or float64."""
    parser.add_argument("--dtype", choices=("float32", "float64"), default=default,
                        help=help or "arithmetic of the model (default: the model's own)")


def add_device(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """--device: a torch device, cpu by default."""
    parser.add_argument("--device", default="cpu", help=help or "torch device: cpu, cuda or cuda:N")


def add_execution(parser: argparse.ArgumentParser) -> None:
    """--compile (torch.compile the model's terms) and --memory (how it runs its per-edge work,
    nnip.nn.execution.Memory)."""
    parser.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    parser.add_argument("--memory", choices=["auto", "keep", "recompute", "stream"], default="auto",
                        help="how message-passing models run their per-edge work: auto (default: streamed over "
                             "chunks of edges on the CPU above 32 MiB per per-edge tensor), keep (fastest where "
                             "memory allows), recompute, or stream (least memory)")


def add_label_names(parser: argparse.ArgumentParser, unit_help: str, energy_help: str, forces_help: str) -> None:
    """--energy-unit, --energy-key and --forces-key: how to read the labels of a data file."""
    parser.add_argument("--energy-unit", default=None, help=unit_help)
    parser.add_argument("--energy-key", default="energy", help=energy_help)
    parser.add_argument("--forces-key", default="forces", help=forces_help)


def add_run_control(parser: argparse.ArgumentParser, config_help: str | None, set_help: str, resume_help: str) -> None:
    """CONFIG, --set KEY=VALUE, --resume and --overwrite of the commands that run a YAML config."""
    parser.add_argument("config", help=config_help or "the run's YAML config (keys: docs/configuration.md)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    parser.add_argument("--resume", action="store_true", help=resume_help)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in the output folder")
