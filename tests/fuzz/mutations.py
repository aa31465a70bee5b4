"""Seeded mutations of data files: extxyz, MD17-style .npz, ASE db and mlearn JSON.

A mutation changes one thing and says whether a correct nnip must refuse the result
(:class:`Change`.refuse): a NaN coordinate, an unknown element or a truncated archive must be
refused; a huge but finite number or a flipped byte of unknown effect only must not crash.
Mutations act at one of three stages: on the structures (:class:`~seeds.Frame`), on the
format's own document (tokens of an extxyz line, arrays of an archive, rows of a database,
JSON entries), or on the bytes of the written file.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from seeds import (
    NPZ_KEYS, Frame, XyzFrame, mlearn_entries, npz_arrays, write_db, write_json, write_npz, xyz_frames, xyz_text,
)

__all__ = ["Change", "Context", "NotApplicable", "Format", "FORMATS", "mutate_data", "choice", "pick", "bad_number",
           "truncate", "flip_bytes", "mutate_bytes", "always", "never"]


class NotApplicable(Exception):
    """The mutator has nothing to change in this input; the caller draws another."""


@dataclass(frozen=True)
class Change:
    """What one mutation did: a stable ``name`` to group by, the exact ``detail``, and whether to ``refuse`` it."""

    name: str
    detail: str
    refuse: bool


@dataclass
class Context:
    """The generator of a case and what its command requires of every frame (``nnip info --require``)."""

    rng: np.random.Generator
    require: tuple[str, ...] = ()


def choice(rng: np.random.Generator, items):
    """One item of a sequence (numpy's choice would turn tuples into arrays)."""
    return items[int(rng.integers(len(items)))]


def bad_number(rng: np.random.Generator) -> tuple[float, str, bool]:
    """(value, label, refuse): NaN or ±inf (refuse), or a huge finite number 1e6..1e308 (may be accepted)."""
    if rng.random() < 0.5:
        return choice(rng, (math.nan, math.inf, -math.inf)), "nonfinite", True
    return float(choice(rng, (-1.0, 1.0)) * 10 ** rng.uniform(6, 308)), "huge", False


def number_token(value: float) -> str:
    return repr(value) if not math.isfinite(value) else f"{value:.6e}"


#: tokens that are no number, where a number belongs
WRONG_TOKENS = ("abc", "1.0.0", "1,5", "1+2j", "True", "--1", "0x10", "")
#: element symbols and atomic numbers that name no element
UNKNOWN_SYMBOLS = ("Xx", "0", "150", "-1", "Qq")
UNKNOWN_NUMBERS = (0, 150, -1, 1000)


# ---- stage 1: the structures, before any format writes them ----------------------------------------------------

_FIELDS = ("positions", "forces", "energy", "stress", "cell")


def frames_value(frames: list[Frame], ctx: Context, fields: tuple[str, ...] = _FIELDS) -> Change:
    """One number of one frame (a coordinate, force, energy, stress or cell component) made non-finite or huge."""
    f = int(ctx.rng.integers(len(frames)))
    present = [name for name in fields if getattr(frames[f], name) is not None]
    name = choice(ctx.rng, present)
    value, kind, refuse = bad_number(ctx.rng)
    target = getattr(frames[f], name)
    if name == "energy":
        frames[f].energy = value
        where = "energy"
    else:
        k = int(ctx.rng.integers(target.size))
        target[np.unravel_index(k, target.shape)] = value  # (reshape may copy: forces can be Fortran-ordered)
        where = f"{name}[{k}]"
    return Change(f"value.{name}.{kind}", f"frame {f} {where} = {value!r}", refuse)


def frames_duplicate_atom(frames: list[Frame], ctx: Context) -> Change:
    """A copy of one atom at its own position, in every frame (two atoms 0 Å apart)."""
    k = int(ctx.rng.integers(len(frames[0].numbers)))
    for frame in frames:
        frame.numbers = np.insert(frame.numbers, k, frame.numbers[k])
        frame.positions = np.insert(frame.positions, k, frame.positions[k], axis=0)
        if frame.forces is not None:
            frame.forces = np.insert(frame.forces, k, frame.forces[k], axis=0)
    return Change("duplicate_atom", f"atom {k} duplicated at the same position", True)


def frames_drop_label(frames: list[Frame], ctx: Context) -> Change:
    """Energies or forces removed from every frame: refused only where the command requires them."""
    name = choice(ctx.rng, ("energy", "forces"))
    for frame in frames:
        setattr(frame, name, None)
    return Change(f"drop_label.{name}", f"no frame has {name}", name in ctx.require)


FRAME_MUTATORS = (frames_value, frames_duplicate_atom, frames_drop_label)


# ---- extxyz: tokens of lines whose roles are known --------------------------------------------------------------


def _atom_row(document: list[XyzFrame], rng) -> tuple[int, int, list[str]]:
    f = int(rng.integers(len(document)))
    k = int(rng.integers(len(document[f].atoms)))
    return f, k, document[f].atoms[k]


def xyz_token(document: list[XyzFrame], ctx: Context) -> Change:
    """A coordinate or force token replaced by text that is no number."""
    f, k, row = _atom_row(document, ctx.rng)
    c = int(ctx.rng.integers(1, len(row)))
    row[c] = choice(ctx.rng, WRONG_TOKENS)
    column = "pos" if c <= 3 else "forces"
    return Change(f"token.{column}", f"frame {f} atom {k} column {c} = {row[c]!r}", True)


def xyz_element(document: list[XyzFrame], ctx: Context) -> Change:
    """The species of one atom replaced by a symbol or number that names no element."""
    f, k, row = _atom_row(document, ctx.rng)
    row[0] = choice(ctx.rng, UNKNOWN_SYMBOLS)
    return Change("unknown_element", f"frame {f} atom {k} species = {row[0]!r}", True)


def xyz_count(document: list[XyzFrame], ctx: Context) -> Change:
    """The atom-count line of a frame no longer matching its atom lines."""
    f = int(ctx.rng.integers(len(document)))
    n = len(document[f].atoms)
    document[f].count = choice(ctx.rng, (str(n + 1), str(max(n - 1, 0)), str(2 * n), "0", "-1", "x", "1.5", ""))
    return Change("wrong_count", f"frame {f} count line = {document[f].count!r} for {n} atoms", True)


def xyz_delete_line(document: list[XyzFrame], ctx: Context) -> Change:
    """The count line, the comment line or one atom line of a frame deleted."""
    f = int(ctx.rng.integers(len(document)))
    role = choice(ctx.rng, ("count", "comment", "atom"))
    if role == "count":
        document[f].count = None
    elif role == "comment":
        document[f].comment = None
    else:
        document[f].atoms.pop(int(ctx.rng.integers(len(document[f].atoms))))
    return Change(f"delete_line.{role}", f"frame {f}: {role} line deleted", True)


def xyz_columns(document: list[XyzFrame], ctx: Context) -> Change:
    """Atom lines with fewer or more columns than the Properties of their frame declare."""
    f, k, row = _atom_row(document, ctx.rng)
    how = choice(ctx.rng, ("drop", "extra", "no_forces"))
    if how == "drop":
        row.pop()
    elif how == "extra":
        row.append("0.0")
    else:
        if len(row) < 7:
            raise NotApplicable
        for each in document[f].atoms:
            del each[4:]
    return Change(f"columns.{how}", f"frame {f} atom {k}: columns {how}", True)


def _comment_value(document: list[XyzFrame], rng, key: str) -> tuple[int, list[str]] | None:
    frames = [f for f, frame in enumerate(document) if key in frame.comment]
    if not frames:
        return None
    f = choice(rng, frames)
    return f, document[f].comment[key].strip('"').split()


def xyz_comment(document: list[XyzFrame], ctx: Context) -> Change:
    """energy, stress or Lattice in a comment line: non-finite, huge, of the wrong type or length, or zero."""
    key = choice(ctx.rng, ("energy", "stress", "Lattice"))
    found = _comment_value(document, ctx.rng, key)
    if found is None:
        raise NotApplicable
    f, values = found
    how = choice(ctx.rng, ("number", "wrong_type", "length") + (("zero",) if key == "Lattice" else ()))
    if how == "number":
        value, how, refuse = bad_number(ctx.rng)
        values[int(ctx.rng.integers(len(values)))] = number_token(value)
    elif how == "wrong_type":
        values, refuse = [choice(ctx.rng, ("abc", "T", "F", "[1,2]"))], True
    elif how == "length":
        values, refuse = values[:-1] if len(values) > 1 else values * 2, True
    else:
        values, refuse = ["0"] * 9, True
    text = " ".join(values)
    document[f].comment[key] = f'"{text}"' if " " in text or not text else text
    return Change(f"comment.{key}.{how}", f"frame {f} {key}={document[f].comment[key]}", refuse)


def xyz_pbc(document: list[XyzFrame], ctx: Context) -> Change:
    """A periodic frame without a Lattice: pbc="T T T" on a molecule, or the Lattice of a crystal deleted."""
    f = int(ctx.rng.integers(len(document)))
    comment = document[f].comment
    comment.pop("Lattice", None)
    comment["pbc"] = '"T T T"'
    return Change("pbc_without_lattice", f"frame {f}: pbc T T T and no Lattice", True)


def xyz_harmless(document: list[XyzFrame], ctx: Context) -> Change:
    """A change a reader must accept: a new comment key, a new config_type, a coordinate moved by 1 mÅ."""
    f, k, row = _atom_row(document, ctx.rng)
    how = choice(ctx.rng, ("note", "config_type", "nudge"))
    if how == "nudge":
        row[1] = f"{float(row[1]) + 1e-3:.8f}"
    else:
        document[f].comment[how] = choice(ctx.rng, ("fuzz", '"a b c"', "1"))
    return Change(f"harmless.{how}", f"frame {f}: {how}", False)


XYZ_MUTATORS = (xyz_token, xyz_element, xyz_count, xyz_delete_line, xyz_columns, xyz_comment, xyz_pbc, xyz_harmless)


def xyz_truncation_refused(data: bytes, cut: int) -> bool:
    """Whether the first ``cut`` bytes of a valid extxyz file leave a frame incomplete.

    A cut at the start of a frame leaves whole frames, and one in the last number of a frame
    only shortens that number (if what is left still reads as one); anything else breaks a frame.
    """
    if not data[:cut].strip():
        return True
    lines = data.decode().splitlines(keepends=True)
    start, k = 0, 0
    while k < len(lines):
        n = int(lines[k])
        frame_end = start + sum(len(line) for line in lines[k:k + n + 2])
        last_line = lines[k + n + 1]
        if cut == start:
            return False
        if start < cut < frame_end:
            kept = data[frame_end - len(last_line):cut].decode().split()
            return len(kept) < len(last_line.split()) or not _is_number(kept[-1])
        start, k = frame_end, k + n + 2
    return False


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


# ---- MD17-style .npz: arrays under known keys -------------------------------------------------------------------


@dataclass
class NpzDocument:
    """The arrays of an archive under their key names (positions, numbers, energies, forces)."""

    arrays: dict[str, Any]
    keys: tuple[str, str, str, str]
    single: bool = False  # write one bare array (np.save) under the .npz name


def _npz_key(document: NpzDocument, rng, roles: str) -> str:
    """The key of one present array among the roles named by letters r, z, e, f."""
    present = [document.keys["rzef".index(r)] for r in roles if document.keys["rzef".index(r)] in document.arrays]
    if not present:
        raise NotApplicable
    return choice(rng, present)


def npz_element(document: NpzDocument, ctx: Context) -> Change:
    """One atomic number that names no element."""
    z = document.keys[1]
    numbers = document.arrays[z].copy()
    k = int(ctx.rng.integers(len(numbers)))
    numbers[k] = choice(ctx.rng, UNKNOWN_NUMBERS)
    document.arrays[z] = numbers
    return Change("unknown_element", f"{z}[{k}] = {numbers[k]}", True)


#: (name, roles it changes, function of the array, refuse)
_RESHAPES = (
    ("positions_2d", "r", lambda a: a[..., 0], True),
    ("positions_xy", "r", lambda a: a[..., :2], True),
    ("positions_4d", "r", lambda a: a[..., None], True),
    ("positions_one_frame", "r", lambda a: a[0], True),
    ("positions_scalar", "r", lambda a: np.float64(1.0), True),
    ("numbers_short", "z", lambda a: a[:-1], True),
    ("numbers_2d", "z", lambda a: a[None], True),
    ("energies_extra", "e", lambda a: np.append(a, a[-1]), True),
    ("energies_column", "e", lambda a: a[:, None], False),  # MD17 stores E as (frames, 1)
    ("forces_xy", "f", lambda a: a[..., :2], True),
    ("forces_short", "f", lambda a: a[:, :-1], True),
)


def _change_array(document: NpzDocument, ctx: Context, table, label: str, describe) -> Change:
    """One array of the archive changed by a row (name, role, change, refuse) of ``table``."""
    name, role, change, refuse = choice(ctx.rng, table)
    key = document.keys["rzef".index(role)]
    if key not in document.arrays:
        raise NotApplicable
    document.arrays[key] = change(document.arrays[key])
    return Change(f"{label}.{name}", describe(key, document.arrays[key]), refuse)


def npz_shape(document: NpzDocument, ctx: Context) -> Change:
    """One array with a wrong shape (or, for E as a column, the shape the original MD17 uses)."""
    return _change_array(document, ctx, _RESHAPES, "shape", lambda key, array: f"{key} has shape {np.shape(array)}")


_RETYPES = (
    ("positions_text", "r", lambda a: a.astype(str), True),
    ("positions_words", "r", lambda a: np.full(a.shape, "abc"), True),
    ("positions_complex", "r", lambda a: a + 1j, True),
    ("positions_bool", "r", lambda a: a > 0, True),
    ("positions_object", "r", lambda a: np.array([[list(p) for p in frame] for frame in a], dtype=object), True),
    ("positions_float32", "r", lambda a: a.astype(np.float32), False),
    ("numbers_fractional", "z", lambda a: a + 0.5, True),
    ("numbers_float", "z", lambda a: a.astype(float), False),
    ("numbers_symbols", "z", lambda a: np.array(["Ar"] * len(a)), True),
    ("energies_words", "e", lambda a: np.full(a.shape, "abc"), True),
    ("forces_complex", "f", lambda a: a * (1 + 1j), True),
)


def npz_dtype(document: NpzDocument, ctx: Context) -> Change:
    """One array of the wrong type: text, complex, bool, object, fractional atomic numbers (or a harmless one)."""
    return _change_array(document, ctx, _RETYPES, "dtype", lambda key, array: f"{key} has dtype {array.dtype}")


def npz_keys(document: NpzDocument, ctx: Context) -> Change:
    """A key deleted, renamed or added."""
    how = choice(ctx.rng, ("delete", "rename", "extra"))
    if how == "extra":
        document.arrays["junk"] = np.arange(3)
        return Change("keys.extra", "extra array 'junk'", False)
    key = _npz_key(document, ctx.rng, "rzef")
    role = "rzef"[document.keys.index(key)]
    array = document.arrays.pop(key)
    if how == "rename":
        document.arrays[key + "_x"] = array
    label = {"e": "energy", "f": "forces"}.get(role)
    refuse = role in "rz" or label in ctx.require
    return Change(f"keys.{how}.{role}", f"{key} {how}d", refuse)


def npz_empty(document: NpzDocument, ctx: Context) -> Change:
    """No frames (every per-frame array empty), or no atoms."""
    r, z, e, f = document.keys
    if ctx.rng.random() < 0.5:
        for key in (r, e, f):
            if key in document.arrays:
                document.arrays[key] = document.arrays[key][:0]
        return Change("empty.frames", "zero frames", True)
    document.arrays[z] = document.arrays[z][:0]
    for key in (r, f):
        if key in document.arrays:
            document.arrays[key] = document.arrays[key][:, :0]
    return Change("empty.atoms", "zero atoms", True)


def npz_single(document: NpzDocument, ctx: Context) -> Change:
    """A bare .npy array written under the .npz name."""
    document.single = True
    return Change("single_array", "one bare array, not an archive", True)


NPZ_MUTATORS = (npz_element, npz_shape, npz_dtype, npz_keys, npz_empty, npz_single)


def npz_document(frames: list[Frame], ctx: Context) -> NpzDocument:
    keys = choice(ctx.rng, ("rmd17", "md17"))
    return NpzDocument(npz_arrays(frames, keys), NPZ_KEYS[keys])


def write_npz_document(document: NpzDocument, path: Path) -> None:
    if document.single:
        with open(path, "wb") as handle:
            np.save(handle, next(iter(document.arrays.values())))
    else:
        write_npz(document.arrays, path)


# ---- ASE db: rows written by ASE, then changed in SQL ------------------------------------------------------------


@dataclass
class DbDocument:
    """Frames ASE writes, then SQL statements run on the file (what ASE itself would refuse to write)."""

    frames: list[Frame]
    sql: list[tuple[str, tuple]] = field(default_factory=list)


def _blob(array) -> memoryview:
    """A column value as ASE stores arrays (int64 as int32, little-endian)."""
    array = np.asarray(array)
    return memoryview(np.ascontiguousarray(array.astype(np.int32) if array.dtype.kind == "i" else array))


def _row_id(document: DbDocument, rng) -> int:
    return int(rng.integers(len(document.frames))) + 1


def db_element(document: DbDocument, ctx: Context) -> Change:
    """One atomic number of a row that names no element (ASE would not write it)."""
    row = _row_id(document, ctx.rng)
    numbers = document.frames[row - 1].numbers.copy()
    k = int(ctx.rng.integers(len(numbers)))
    numbers[k] = choice(ctx.rng, UNKNOWN_NUMBERS)
    document.sql.append(("UPDATE systems SET numbers=? WHERE id=?", (_blob(numbers), row)))
    return Change("unknown_element", f"row {row} numbers[{k}] = {numbers[k]}", True)


def db_blob(document: DbDocument, ctx: Context) -> Change:
    """An array column of a row one element short (a shape that no structure has)."""
    row = _row_id(document, ctx.rng)
    frame = document.frames[row - 1]
    column = choice(ctx.rng, ("numbers", "positions", "forces", "cell", "stress"))
    value = {"numbers": frame.numbers, "positions": frame.positions, "forces": frame.forces,
             "cell": frame.cell, "stress": frame.stress}[column]
    if value is None:
        raise NotApplicable
    flat = np.asarray(value).reshape(-1)[:-1]
    document.sql.append((f"UPDATE systems SET {column}=? WHERE id=?", (_blob(flat), row)))
    return Change(f"blob_short.{column}", f"row {row} {column} has {flat.size} values", True)


def db_energy(document: DbDocument, ctx: Context) -> Change:
    """The energy column of a row: ±inf, huge, or text (SQLite stores NaN as NULL, so no NaN here)."""
    row = _row_id(document, ctx.rng)
    how = choice(ctx.rng, ("inf", "huge", "text"))
    value, refuse = {"inf": (choice(ctx.rng, (math.inf, -math.inf)), True),
                     "huge": (float(10 ** ctx.rng.uniform(6, 308)), False), "text": ("abc", True)}[how]
    document.sql.append(("UPDATE systems SET energy=? WHERE id=?", (value, row)))
    return Change(f"energy.{how}", f"row {row} energy = {value!r}", refuse)


def db_metadata(document: DbDocument, ctx: Context) -> Change:
    """The JSON of a row's key-value pairs broken (refuse), or a key added to it (accept)."""
    row = _row_id(document, ctx.rng)
    if ctx.rng.random() < 0.5:
        document.sql.append(("UPDATE systems SET key_value_pairs=? WHERE id=?", ('{"a": ', row)))
        return Change("metadata.broken", f"row {row} key_value_pairs = '{{\"a\": '", True)
    document.sql.append(("UPDATE systems SET key_value_pairs=? WHERE id=?", ('{"note": "fuzz"}', row)))
    return Change("metadata.note", f"row {row} key_value_pairs note=fuzz", False)


def db_empty(document: DbDocument, ctx: Context) -> Change:
    """Every row deleted: a database without structures."""
    document.sql.append(("DELETE FROM systems", ()))
    return Change("empty", "no rows", True)


DB_MUTATORS = (db_element, db_blob, db_energy, db_metadata, db_empty)


def write_db_document(document: DbDocument, path: Path) -> None:
    write_db(document.frames, path)
    if document.sql:
        with sqlite3.connect(path) as connection:
            for statement, values in document.sql:
                connection.execute(statement, values)
        connection.close()


# ---- mlearn JSON: pymatgen-like entries -------------------------------------------------------------------------


def _entry(entries: list, rng) -> tuple[int, dict]:
    e = int(rng.integers(len(entries)))
    return e, entries[e]


def json_wrong_type(entries: list, ctx: Context) -> Change:
    """A field of one entry of the wrong type or shape."""
    e, entry = _entry(entries, ctx.rng)
    structure, outputs = entry["structure"], entry["outputs"]
    sites = structure["sites"]
    k = int(ctx.rng.integers(len(sites)))
    options = {
        "energy_text": lambda: outputs.__setitem__("energy", "abc"),
        "energy_bool": lambda: outputs.__setitem__("energy", True),
        "energy_list": lambda: outputs.__setitem__("energy", [1.0, 2.0]),
        "xyz_text": lambda: sites[k].__setitem__("xyz", ["a", "b", "c"]),
        "xyz_numeric_text": lambda: sites[k].__setitem__("xyz", [str(v) for v in sites[k]["xyz"]]),
        "xyz_short": lambda: sites[k].__setitem__("xyz", sites[k]["xyz"][:2]),
        "xyz_string": lambda: sites[k].__setitem__("xyz", "1 2 3"),
        "forces_short": lambda: outputs.__setitem__("forces", (outputs.get("forces") or [[0, 0, 0]] * 2)[:-1]),
        "lattice_2x3": lambda: structure["lattice"].__setitem__("matrix", structure["lattice"]["matrix"][:2]),
        "lattice_zero": lambda: structure["lattice"].__setitem__("matrix", [[0.0] * 3] * 3),
        "lattice_text": lambda: structure["lattice"].__setitem__("matrix", "abc"),
        "species_empty": lambda: sites[k].__setitem__("species", []),
        "virial_short": lambda: outputs.__setitem__("virial_stress", [1.0, 2.0, 3.0, 4.0, 5.0]),
        "virial_text": lambda: outputs.__setitem__("virial_stress", "abc"),
        "virial_matrix": lambda: outputs.__setitem__("virial_stress", [[1.0] * 3] * 3),
    }
    name = choice(ctx.rng, sorted(options))
    options[name]()
    return Change(f"wrong_type.{name}", f"entry {e}: {name}", True)


def json_element(entries: list, ctx: Context) -> Change:
    """The element of one site: an unknown symbol, an empty string or a number."""
    e, entry = _entry(entries, ctx.rng)
    sites = entry["structure"]["sites"]
    k = int(ctx.rng.integers(len(sites)))
    sites[k]["species"][0]["element"] = choice(ctx.rng, ("Xx", "", 150, None))
    return Change("unknown_element", f"entry {e} site {k} element = {sites[k]['species'][0]['element']!r}", True)


def json_delete(entries: list, ctx: Context) -> Change:
    """A key of one entry deleted: the structure, its sites or lattice (refuse), or its outputs."""
    e, entry = _entry(entries, ctx.rng)
    where = choice(ctx.rng, ("structure", "sites", "lattice", "outputs"))
    if where == "structure":
        del entry["structure"]
    elif where == "outputs":
        del entry["outputs"]
    else:
        del entry["structure"][where]
    refuse = where != "outputs" or bool(ctx.require)
    return Change(f"delete.{where}", f"entry {e}: {where} deleted", refuse)


def json_top(entries: list, ctx: Context) -> Change:
    """The top level emptied, or an entry that is no mapping."""
    how = choice(ctx.rng, ("empty", "null_entry", "list_entry"))
    if how == "empty":
        entries.clear()
    else:
        entries.append(None if how == "null_entry" else [1, 2])
    return Change(f"top.{how}", how, True)


def json_harmless(entries: list, ctx: Context) -> Change:
    """An extra description of an entry: must be accepted."""
    e, entry = _entry(entries, ctx.rng)
    entry["description"] = "fuzz"
    return Change("harmless.description", f"entry {e}: description added", False)


JSON_MUTATORS = (json_wrong_type, json_element, json_delete, json_top, json_harmless)


# ---- bytes of the written file -----------------------------------------------------------------------------------


def truncate(data: bytes, rng, refused: Callable[[bytes, int], bool]) -> tuple[bytes, Change]:
    """The first bytes of a file, cut at a random point."""
    cut = int(rng.integers(len(data)))
    return data[:cut], Change("truncate", f"cut to {cut} of {len(data)} bytes", refused(data, cut))


def flip_bytes(data: bytes, rng, protected: range = range(0)) -> tuple[bytes, Change]:
    """One to three bytes outside ``protected`` set to other values: any effect, so it only must not crash."""
    array = bytearray(data)
    drawn = rng.integers(len(array) - len(protected), size=int(rng.integers(1, 4)))
    offsets = sorted(int(k) + (len(protected) if k >= protected.start else 0) for k in drawn)
    for k in offsets:
        array[k] = (array[k] + int(rng.integers(1, 256))) % 256
    return bytes(array), Change("flip", f"bytes at {offsets} changed", False)


def mutate_bytes(path: Path, rng, refused: Callable[[bytes, int], bool], protected: range = range(0)) -> Change:
    """Truncate the file at ``path`` (60 %) or flip some of its bytes (none in ``protected``), in place."""
    data = path.read_bytes()
    data, change = truncate(data, rng, refused) if rng.random() < 0.6 else flip_bytes(data, rng, protected)
    path.write_bytes(data)
    return change


def always(data: bytes, cut: int) -> bool:
    """Every cut must be refused (archives, databases, JSON, model files)."""
    return True


def never(data: bytes, cut: int) -> bool:
    """No cut needs to be refused (a shorter YAML config may still be valid)."""
    return False


def loses_data(data: bytes, cut: int) -> bool:
    """A cut must be refused unless it removes only zero bytes (SQLite reads missing bytes of a page as zeros)."""
    return any(data[cut:])


# ---- the formats ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """How to turn structures into a document, mutate it and write it, and when a cut file must be refused."""

    name: str
    suffix: str
    document: Callable[[list[Frame], Context], Any]
    write: Callable[[Any, Path], None]
    mutators: tuple[Callable[[Any, Context], Change], ...]
    frame_mutators: tuple[Callable[[list[Frame], Context], Change], ...] = FRAME_MUTATORS
    truncation_refused: Callable[[bytes, int], bool] = always


def _write_text(text: str, path: Path) -> None:
    path.write_text(text)


FORMATS = {
    "extxyz": Format("extxyz", ".extxyz", lambda frames, ctx: xyz_frames(frames),
                     lambda document, path: _write_text(xyz_text(document), path), XYZ_MUTATORS,
                     truncation_refused=xyz_truncation_refused),
    "npz": Format("npz", ".npz", npz_document, write_npz_document, NPZ_MUTATORS),
    "db": Format("db", ".db", lambda frames, ctx: DbDocument(frames), write_db_document, DB_MUTATORS,
                 # SQLite stores a NaN energy as NULL (no energy): db_energy changes that column instead
                 frame_mutators=(partial(frames_value, fields=("positions", "forces", "stress", "cell")),
                                 frames_duplicate_atom, frames_drop_label),
                 truncation_refused=loses_data),
    "json": Format("json", ".json", lambda frames, ctx: mlearn_entries(frames), write_json, JSON_MUTATORS),
}

#: share of cases mutated at each stage: the structures, the format's document, the file's bytes
STAGES = {"frames": 0.3, "document": 0.5, "bytes": 0.2}


def pick(rng: np.random.Generator, weights: dict):
    """A key of ``weights`` drawn with the probabilities its values are proportional to."""
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def mutate_data(fmt: Format, frames: list[Frame], ctx: Context, path: Path) -> Change:
    """Write ``frames`` to ``path`` in format ``fmt`` with one mutation; returns what changed."""
    stage = pick(ctx.rng, STAGES)
    if stage == "bytes":
        fmt.write(fmt.document([frame.copy() for frame in frames], ctx), path)
        change = mutate_bytes(path, ctx.rng, fmt.truncation_refused)
    else:
        document, change = _mutated_document(fmt, frames, ctx, stage)
        fmt.write(document, path)
    return Change(f"{fmt.name}.{change.name}", change.detail, change.refuse)


def _mutated_document(fmt: Format, frames: list[Frame], ctx: Context, stage: str) -> tuple[Any, Change]:
    """The document of ``frames`` after one mutation of the stage that applies (drawn again until one does)."""
    for _ in range(50):
        copies = [frame.copy() for frame in frames]
        try:
            if stage == "frames":
                change = choice(ctx.rng, fmt.frame_mutators)(copies, ctx)
                return fmt.document(copies, ctx), change
            document = fmt.document(copies, ctx)
            return document, choice(ctx.rng, fmt.mutators)(document, ctx)
        except NotApplicable:
            continue
    raise RuntimeError(f"no {stage} mutation applies to this {fmt.name} input")
