"""Line-level scan of (extended) XYZ text, so malformed files get errors with line numbers.

ASE's parser stops at the first problem with a message that rarely names the line; this
scan walks the frame structure (count line, comment line, one line per atom) and reports
each problem as (line, frame, message) before ASE parses the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ase.data import atomic_numbers as _symbol_to_z
from ase.io.extxyz import key_val_str_to_dict

__all__ = ["LineProblem", "scan_xyz"]

_PROPERTIES = re.compile(r'Properties=(?:"([^"]*)"|(\S+))', re.IGNORECASE)
_DEFAULT_COLUMNS = [("species", "S", 1), ("pos", "R", 3)]


@dataclass
class LineProblem:
    line: int  # 1-based
    frame: int  # 0-based
    message: str


def _columns(comment: str) -> list[tuple[str, str, int]] | None:
    """Properties of an extxyz comment line as (name, type, width); None for plain XYZ."""
    match = _PROPERTIES.search(comment)
    if not match:
        return None
    fields = (match.group(1) or match.group(2)).split(":")
    if len(fields) % 3:
        return []
    return [(fields[k], fields[k + 1].upper(), int(fields[k + 2]) if fields[k + 2].isdigit() else 0)
            for k in range(0, len(fields), 3)]


def _comment_problem(comment: str) -> str | None:
    """Why an extxyz comment line (key=value pairs) does not parse, or None (plain XYZ comments pass):
    an unterminated quote would swallow the keys after it, the energy among them."""
    if "=" not in comment:
        return None
    if len(re.findall(r'(?<!\\)"', comment)) % 2:
        return "comment line has an unterminated quote (\") in its key=value pairs"
    try:
        info = key_val_str_to_dict(comment)
    except Exception as error:  # ASE's parser raises several types
        return f"comment line does not parse as key=value pairs ({str(error).splitlines()[0] if str(error) else type(error).__name__})"
    return _stress_problem(info.get("stress"))


def _stress_problem(stress) -> str | None:
    """A 3x3 stress that is not symmetric (ASE would keep one triangle and drop the other silently)."""
    values = np.asarray(stress) if stress is not None else None
    if values is None or values.size != 9 or values.dtype.kind not in "iuf":
        return None
    matrix = values.reshape(3, 3).astype(float)
    if not np.isfinite(matrix).all():
        return "stress contains NaN or inf"
    if not np.allclose(matrix, matrix.T, rtol=1e-6, atol=1e-12):
        return "stress (3x3) is not symmetric"
    return None


def _check_atom_line(tokens: list[str], columns, line: int, frame: int) -> LineProblem | None:
    if columns is None:  # plain XYZ: symbol x y z [anything]
        columns = _DEFAULT_COLUMNS
        if len(tokens) < 4:
            return LineProblem(line, frame, f"expected at least 4 columns (symbol x y z), found {len(tokens)}")
    else:
        expected = sum(width for _, _, width in columns)
        if len(tokens) != expected:
            names = ":".join(f"{n}:{t}:{w}" for n, t, w in columns)
            return LineProblem(line, frame, f"expected {expected} columns (Properties={names}), found {len(tokens)}")
    position = 0
    for name, kind, width in columns:
        for token in tokens[position:position + width]:
            if name == "species" and token not in _symbol_to_z and not token.isdigit():
                return LineProblem(line, frame, f"unknown element {token!r}")
            if kind == "R":
                try:
                    float(token)
                except ValueError:
                    return LineProblem(line, frame, f"column {name!r} holds {token!r}, not a number")
        position += width
    return None


def scan_xyz(text: str) -> tuple[int, list[LineProblem]]:
    """Walk the frames of XYZ ``text``; returns (number of complete frames, problems).

    The scan stops at the first structural problem (a bad count or a truncated frame),
    since the frame boundaries after it are unknown; it reports every bad atom line
    before that.
    """
    lines = text.splitlines()
    problems: list[LineProblem] = []
    k, frame = 0, 0
    while k < len(lines):
        if not lines[k].strip():
            if any(line.strip() for line in lines[k:]):
                problems.append(LineProblem(k + 1, frame, "blank line where the atom count of a frame was expected"))
            break
        try:
            n_atoms = int(lines[k].split()[0])
            if n_atoms < 0 or len(lines[k].split()) != 1:
                raise ValueError
        except ValueError:
            problems.append(LineProblem(k + 1, frame, f"expected the number of atoms, found {lines[k].strip()[:40]!r}"))
            break
        if k + 1 >= len(lines):
            problems.append(LineProblem(k + 1, frame, "file ends before the comment line of the frame"))
            break
        comment = _comment_problem(lines[k + 1])
        if comment:
            problems.append(LineProblem(k + 2, frame, comment))
        columns = _columns(lines[k + 1])
        if columns == []:
            problems.append(LineProblem(k + 2, frame, "malformed Properties= (needs name:type:width triples)"))
        for a in range(n_atoms):
            line = k + 2 + a
            if line >= len(lines):
                problems.append(LineProblem(line + 1, frame, f"file ends after {a} of {n_atoms} atoms"))
                return frame, problems
            problem = _check_atom_line(lines[line].split(), columns or None, line + 1, frame)
            if problem:
                problems.append(problem)
        k += n_atoms + 2
        frame += 1
    return frame, problems
