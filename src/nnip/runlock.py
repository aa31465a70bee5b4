"""One writer per run folder (or output file): an exclusive OS file lock held for the life of a run.

``nnip train``, ``active`` and ``demo`` hold :func:`run_lock` on their output folder, ``nnip label`` and
``md`` :func:`file_lock` on their output file, from before they look at it until they exit. A second
process that asks for the same output while the first runs gets one ConfigError naming it and the
process that holds it, whatever it asked for (``--overwrite`` and ``--resume`` included). The lock is
``fcntl.flock`` on ``FOLDER/.nnip.lock`` (or ``.NAME.nnip.lock`` beside a file): the kernel releases it
when its holder exits in any way (``kill -9`` included), so a crashed run leaves no stale lock; the file
stays and only records who held it last.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nnip.errors import ConfigError

__all__ = ["LOCK_NAME", "run_lock", "file_lock", "contents", "remove"]

#: the lock file inside a run folder
LOCK_NAME = ".nnip.lock"


def _holder(handle) -> str:
    """'pid P: COMMAND, since HH:MM:SS' as the holder wrote it (it writes just after it takes the lock: waits up
    to 0.5 s for that), or 'another process'."""
    for _ in range(50):
        handle.seek(0)
        text = handle.read().strip()
        if text:
            return text
        time.sleep(0.01)
    return "another process"


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder`` (created if missing) for the body of the ``with``; ConfigError at
    once when another process holds it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"output {folder}: is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    with _held(folder / LOCK_NAME, f"{folder}: another nnip run is writing to this folder"):
        yield folder


@contextlib.contextmanager
def file_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of the output file ``path`` (a lock file beside it; its folder is created if
    missing); ConfigError at once when another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _held(path.parent / f".{path.name}{LOCK_NAME}", f"{path}: another nnip run is writing this file"):
        yield path


def contents(folder: Path) -> list[Path]:
    """What a run folder holds besides its lock file (nothing when it does not exist)."""
    return [path for path in folder.iterdir() if path.name != LOCK_NAME] if folder.is_dir() else []


def remove(paths: list[Path]) -> None:
    """Delete these files and folders (an earlier run's, under ``--overwrite``; never the lock)."""
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


@contextlib.contextmanager
def _held(lock: Path, busy: str) -> Iterator[None]:
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{busy} ({_holder(handle)}); wait for it to end, or choose another output") from None
        command = " ".join(shlex.quote(a) for a in ["nnip", *sys.argv[1:]])[:200]
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}: {command}, since {time.strftime('%H:%M:%S')}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
