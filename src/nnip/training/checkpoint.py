"""Training checkpoints and the per-epoch metrics log of a run directory.

A checkpoint (``checkpoint.pt``) holds everything needed to continue a run exactly:
weights, optimizer, schedule, EMA, best weights, early-stopping counters, elapsed time,
the metrics history and the RNG state. It is plain data and tensors, written atomically
after every epoch and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


from nnip.errors import CheckpointError
from nnip.potentials.files.serialization import atomic_torch_save, load_plain
from nnip.version import __version__

__all__ = ["save_checkpoint", "load_checkpoint", "write_metrics_csv", "read_metrics_csv"]

FORMAT = "nnip-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` (plain data and tensors) atomically, with a versioned header."""
    atomic_torch_save({"format": FORMAT, "format_version": FORMAT_VERSION, "nnip_version": __version__, **state}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; CheckpointError says what is wrong."""
    state = load_plain(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is not an nnip training checkpoint")
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer nnip ({state.get('nnip_version')}); upgrade nnip")
    return state


def write_metrics_csv(rows: Sequence[dict[str, float]], path: str | os.PathLike) -> None:
    """Rewrite ``metrics.csv`` atomically from the full history (one row per epoch)."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.10g}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


def read_metrics_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as floats (empty cells become NaN)."""
    with open(path, newline="") as stream:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(stream)]
