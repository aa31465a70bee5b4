"""Model files: ``save`` and ``load`` with a versioned format read by ``torch.load(weights_only=True)``.

A model file is a dict of plain data and tensors, never pickled code:
``{"format": "nnip-model", "format_version": 1, "nnip_version", "kind": "potential",
"dtype", "spec", "state_dict"}``. Tensors are stored on the CPU, so a model saved on any
device loads anywhere.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nnip.errors import CheckpointError
from nnip.potentials.base import Potential
from nnip.potentials.registry import build_potential
from nnip.version import __version__

__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nnip-model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def atomic_torch_save(payload: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file next to ``path``, then rename: an interrupted save never corrupts ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save(potential: Potential, path: str | os.PathLike) -> None:
    """Write ``potential`` (architecture, weights, E0, scale/shift) to ``path``."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nnip_version": __version__,
        "kind": "potential",
        "dtype": str(potential.dtype).removeprefix("torch."),
        "spec": potential.spec(),
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
    }
    atomic_torch_save(payload, path)


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check the header of an nnip file; CheckpointError says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's readers raise many types on damaged or foreign files
        with open(path, "rb") as handle:
            is_zip = handle.read(2) == b"PK"
        what = "is truncated or corrupted" if is_zip else "is not an nnip model file"
        detail = str(error).splitlines()[0][:120] if str(error).strip() else "no detail"
        raise CheckpointError(f"{path}: {what} ({type(error).__name__}: {detail})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is not an nnip model file (no '{FORMAT}' header)")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnip (format {version}, this nnip {__version__} reads up to "
            f"{FORMAT_VERSION}); upgrade nnip"
        )
    return payload


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> Potential:
    """Read a model written by :func:`save`, on ``device`` (CPU by default, whatever device saved it)."""
    payload = read_payload(path)
    if payload.get("kind") != "potential":
        raise CheckpointError(f"{path}: holds a {payload.get('kind')!r}, not a potential")
    dtype = _DTYPES.get(payload.get("dtype", "float32"))
    if dtype is None:
        raise CheckpointError(f"{path}: unknown dtype {payload.get('dtype')!r} (expected float32 or float64)")
    try:
        potential = build_potential(payload["spec"])
    except (KeyError, TypeError, ValueError) as error:  # ConfigError is a ValueError
        raise CheckpointError(f"{path}: malformed model description ({error})") from None
    try:
        potential.to(dtype).load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as error:
        raise CheckpointError(f"{path}: model description does not match its weights ({error})") from None
    return potential.to(device).eval()
