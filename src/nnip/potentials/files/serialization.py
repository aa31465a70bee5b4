"""Model files: ``save`` and ``load`` with a versioned format read by ``torch.load(weights_only=True)``.

A model file is a dict of plain data and tensors, never pickled code:
``{"format": "nnip-model", "format_version": 2, "nnip_version", "kind": "potential",
"dtype", "spec", "state_dict", "metadata"}``; an ensemble file has ``"kind": "ensemble"``
and ``"members"``: a list of ``{"dtype", "spec", "state_dict"}``. ``metadata`` holds plain
data about how the model was made (dataset statistics, training summary). Tensors are
stored on the CPU, so a model saved on any device loads anywhere.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nnip.errors import CheckpointError, ConfigError
from nnip.potentials.contract.base import Potential
from nnip.potentials.contract.ensemble import Ensemble
from nnip.potentials.contract.registry import build_potential
from nnip.version import __version__

__all__ = ["save", "load", "read_metadata", "load_plain", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nnip-model"
#: 2: pair parameters stored as ``unit * raw`` (format 1 stored ``values``; still read).
FORMAT_VERSION = 2
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


def _member(potential: Potential) -> dict[str, Any]:
    return {
        "dtype": str(potential.dtype).removeprefix("torch."),
        "spec": potential.spec(),
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
    }


def save(model: Potential | Ensemble, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
    """Write a potential (architecture, weights, E0, scale/shift) or an ensemble to ``path``.

    Args:
        metadata: plain data (numbers, strings, lists, dicts) stored alongside, e.g. dataset statistics.
    """
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "nnip_version": __version__,
              "metadata": dict(metadata or {})}
    if isinstance(model, Ensemble):
        payload = {**header, "kind": "ensemble", "members": [_member(m) for m in model.members],
                   "variance_scale": float(model.variance_scale)}
    else:
        payload = {**header, "kind": "potential", **_member(model)}
    atomic_torch_save(payload, path)


def load_plain(path: str | os.PathLike, kind: str = "model file") -> Any:
    """``torch.load(weights_only=True)`` on the CPU; CheckpointError says why a file cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {kind}")
    try:
        with warnings.catch_warnings():  # torch warns about weights_only before refusing: the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"{path}: holds pickled objects{what}, which nnip never loads (a {kind} holds "
                              "only tensors, numbers and text; nothing in it was run)") from None
    except Exception as error:  # torch's readers raise many types on damaged or foreign files
        with open(path, "rb") as handle:
            is_zip = handle.read(2) == b"PK"
        what = "is truncated or corrupted" if is_zip else f"is not an nnip {kind}"
        lines = str(error).strip().splitlines()
        detail = lines[0].split(". ")[0] if lines else "no detail"
        raise CheckpointError(f"{path}: {what} ({type(error).__name__}: {detail})") from None


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check the header of an nnip file; CheckpointError says what is wrong with it."""
    payload = load_plain(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is not an nnip model file (no '{FORMAT}' header)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{path}: is not an nnip model file (format version {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: written by a newer nnip (format {version}, this nnip {__version__} reads up to "
            f"{FORMAT_VERSION}); upgrade nnip"
        )
    return payload


def _pair_values_to_raw(state: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: a pair table's ``values`` become ``unit`` (|value|, or 1 for 0) and ``raw``."""
    out = {}
    for key, tensor in state.items():
        if key.endswith(".values"):
            prefix = key[: -len("values")]
            unit = torch.where(tensor != 0, tensor.abs(), torch.ones_like(tensor))
            out[prefix + "unit"], out[prefix + "raw"] = unit, tensor / unit
        else:
            out[key] = tensor
    return out


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` stored with a model (empty for files written without it)."""
    return dict(read_payload(path).get("metadata", {}))


def load(path: str | os.PathLike | Sequence[str | os.PathLike], device: str | torch.device = "cpu"
         ) -> Potential | Ensemble:
    """Read a potential or ensemble written by :func:`save`, on ``device`` (CPU by default).

    A list of files gives one Ensemble of all their potentials (members of ensemble files
    included), e.g. models trained separately; its variance scale is 1 (uncalibrated).
    """
    if not isinstance(path, (str, os.PathLike)):
        members = []
        for each in path:
            model = load(each)
            members.extend(model.members if isinstance(model, Ensemble) else [model])
        try:
            return Ensemble(members).to(device).eval()
        except ValueError as error:
            raise CheckpointError(f"{', '.join(map(str, path))}: cannot form an ensemble ({error})") from None
    payload = read_payload(path)
    kind = payload.get("kind")
    if kind == "ensemble":
        members = payload.get("members")
        if not isinstance(members, list) or not members:
            raise CheckpointError(f"{path}: ensemble file without members")
        ensemble = Ensemble([_build(path, m) for m in members])
        ensemble.variance_scale.fill_(float(payload.get("variance_scale", 1.0)))
        return _to(path, ensemble, device)
    if kind != "potential":
        raise CheckpointError(f"{path}: holds a {kind!r}, not a potential or an ensemble")
    return _to(path, _build(path, payload), device)


def _to(path, model: Potential | Ensemble, device: str | torch.device) -> Potential | Ensemble:
    """``model`` on ``device`` in evaluation mode; CheckpointError for NaN or inf weights, ConfigError for a
    device this machine does not have."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: weight {name} holds NaN or inf; the file is corrupted (or was saved "
                                  "from a diverged run)")
    try:
        return model.to(device).eval()
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"device {str(device)!r}: cannot be used here ({_first_line(error)})") from None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _build(path, payload: dict[str, Any]) -> Potential:
    dtype = _DTYPES.get(payload.get("dtype", "float32"))
    if dtype is None:
        raise CheckpointError(f"{path}: unknown dtype {payload.get('dtype')!r} (expected float32 or float64)")
    try:
        potential = build_potential(payload["spec"])
    except (KeyError, TypeError, ValueError, IndexError) as error:  # ConfigError is a ValueError
        raise CheckpointError(f"{path}: malformed model description ({_first_line(error)})") from None
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: no weights (state_dict) in the file")
    if int(payload.get("format_version", FORMAT_VERSION)) < 2:
        state = _pair_values_to_raw(state)
    try:
        potential.to(dtype).load_state_dict(state)
        potential.check_consistent()
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path}: model description does not match its weights ({_first_line(error)})") \
            from None
    return potential
