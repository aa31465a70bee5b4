"""Label structures with an oracle, in parallel, writing each result as soon as it exists.

``label_file`` is what ``nnip label`` runs: a killed run keeps every structure it finished
(each is appended to the output when done, tagged with ``source_index``), and
``resume=True`` labels only the rest. Any ``concurrent.futures.Executor`` works (a process
pool by default; a dask.distributed client for clusters).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path

import ase.io
from ase import Atoms

from nnip.data.io import inspect, read, write
from nnip.errors import ConfigError, OracleError
from nnip.oracles.base import CalculatorOracle
from nnip.oracles.registry import get_oracle
from nnip.progress import stage_bar
from nnip.runlock import file_lock

__all__ = ["label_frames", "label_file"]

SOURCE_INDEX = "source_index"


def _label(oracle: CalculatorOracle, atoms: Atoms) -> Atoms:
    return oracle.label([atoms])[0]


def label_frames(frames: Sequence[Atoms], oracle: CalculatorOracle, executor: Executor | None = None,
                 on_done: Callable[[Atoms], None] | None = None, progress: bool = True,
                 on_failure: Callable[[str], None] | None = None) -> list[Atoms]:
    """Labelled copies of ``frames`` in input order; ``on_done`` sees each as soon as it is labelled.

    A frame the oracle fails on (SCF not converged, atoms too close ...) is skipped: with
    ``on_failure`` its reason is passed there and labelling goes on; without, all failures
    are raised together at the end (OracleError), after the others were labelled. Each
    frame carries ``info["source_index"]`` (its position).
    """
    frames = [a.copy() for a in frames]
    for k, atoms in enumerate(frames):
        atoms.info.setdefault(SOURCE_INDEX, k)
    done: dict[int, Atoms] = {}
    failures: list[str] = []
    bar = stage_bar(len(frames), f"labelling ({oracle.name})" if progress else None, "frame")

    def finish(result: Atoms) -> None:
        done[int(result.info[SOURCE_INDEX])] = result
        if on_done is not None:
            on_done(result)
        bar.update(1)

    if executor is None:
        for atoms in frames:
            try:
                finish(_label(oracle, atoms))
            except OracleError as error:
                failures.append(str(error))
    else:
        futures = [executor.submit(_label, oracle, atoms) for atoms in frames]
        for future in as_completed(futures):
            try:
                finish(future.result())
            except OracleError as error:
                failures.append(str(error))
    bar.close()
    if on_failure is not None:
        for reason in failures:
            on_failure(reason)
        return [done[int(a.info[SOURCE_INDEX])] for a in frames if int(a.info[SOURCE_INDEX]) in done]
    if failures:
        raise OracleError(f"{len(failures)} of {len(frames)} frames failed (the others were labelled); "
                          f"first: {failures[0]}")
    return [done[int(a.info[SOURCE_INDEX])] for a in frames]


def _finished(output: Path) -> list[Atoms]:
    """Valid frames already in ``output``; the file is rewritten without a frame torn by a kill."""
    inspection = inspect(output)
    if inspection.problems:
        write(output, inspection.frames)
    return list(inspection.frames)


def label_file(data: str | os.PathLike, oracle_name: str, output: str | os.PathLike, workers: int = 1,
               resume: bool = False, executor: Executor | None = None, progress: bool = True) -> int:
    """Label the structures of ``data`` with oracle ``oracle_name`` into ``output`` (extxyz); returns how many.

    An existing ``output`` is continued with ``resume`` and otherwise left untouched
    (ConfigError). Frames the oracle fails on are listed with the reason in
    ``OUTPUT.failures.txt`` and left for a later ``resume``.
    """
    with file_lock(output):  # one writer per output file
        return _label_file(data, get_oracle(oracle_name), Path(output), workers, resume, executor, progress)


def _label_file(data, oracle, output: Path, workers: int, resume: bool, executor: Executor | None,
                progress: bool) -> int:
    """:func:`label_file` with the output locked."""
    frames = read(data)
    for k, atoms in enumerate(frames):
        atoms.info[SOURCE_INDEX] = k
    if output.exists() and not resume:
        raise ConfigError(f"{output}: exists; use --resume to label only what it lacks, or another output name")
    finished = {int(a.info.get(SOURCE_INDEX, -1)) for a in _finished(output)} if output.exists() else set()
    todo = [a for a in frames if int(a.info[SOURCE_INDEX]) not in finished]

    failures = output.with_name(output.name + ".failures.txt")
    failures.unlink(missing_ok=True)  # this run's failures only

    def append(atoms: Atoms) -> None:
        ase.io.write(output, atoms, format="extxyz", append=True)

    def record_failure(reason: str) -> None:
        with open(failures, "a") as stream:
            stream.write(reason + "\n")

    if executor is None and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            labelled = label_frames(todo, oracle, pool, append, progress, record_failure)
    else:
        labelled = label_frames(todo, oracle, executor, append, progress, record_failure)
    return len(labelled)
