"""In-process workers that run fuzz cases through ``nnip.cli.main``, and the driver that feeds them.

    python tests/fuzz/worker.py --cases 20000             # a long run: prints the counts and the failures
    python tests/fuzz/worker.py --make-case 17 --workdir DIR   # write the files of case 17, print its command

A worker (``--serve FAMILY``) imports nnip once, then reads one JSON case per line on stdin,
runs it in its own process and answers one JSON line (exit status, stderr, the exception that
escaped) on its stdout; anything else written to file descriptors 1 and 2 goes to its log,
where the fault handler also dumps the Python stack on a fatal signal or, before the driver
kills a hung worker, on SIGUSR1. The driver runs one worker per family in parallel and
restarts a worker that died or hung, continuing with the next case.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import io
import json
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from cases import case_family, make_case
from outcomes import FAILURES, Result, classify, summary
from seeds import build_seeds

HERE = Path(__file__).resolve().parent

#: seconds a case may run before its worker counts as hung and is killed
TIMEOUT = 20.0
#: seconds a worker may take to import nnip
STARTUP_TIMEOUT = 180.0
#: address space of a worker (bytes): a case that asks for more gets a MemoryError, not the OOM killer
MEMORY_LIMIT = 8 * 2**30
#: modules each family imports before its first case, so that imports stay out of the per-case time
WARM_UP = {
    "info": ("nnip.data.io", "nnip.data.summary", "nnip.data.validation"),
    "evaluate": ("nnip.data.io", "nnip.training.evaluate", "nnip.potentials.files.serialization"),
    "train": ("nnip.training.config", "nnip.training.run", "nnip.training.evaluate", "nnip.active.loop"),
}
REGENERATE = "python tests/fuzz/worker.py --make-case {index} --seed {seed} --workdir DIR"


# ---- inside a worker ------------------------------------------------------------------------------------------------


def _short(path: str) -> str:
    """src/nnip/... for nnip's files, the last two parts of any other path."""
    marker = path.rfind("/nnip/")
    return "nnip/" + path[marker + 6:] if marker >= 0 else "/".join(Path(path).parts[-2:])


def innermost(frames: list[tuple[str, int, str]], nnip: bool = True) -> str:
    """'file:line in function' of the innermost (nnip, if any is nnip's) frame of a stack listed outermost first."""
    if not frames:
        return ""
    ours = [f for f in frames if "/nnip/" in f[0] and "/tests/fuzz/" not in f[0] and "/cli/__init__" not in f[0]]
    file, line, name = ((ours if nnip else []) or frames)[-1]
    return f"{_short(file)}:{line} in {name}"


def describe(error: BaseException) -> dict:
    """Type, first line of the message and innermost nnip frame of an exception."""
    frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(error.__traceback__)]
    message = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return {"type": type(error).__name__, "message": message, "where": innermost(frames)}


def run_case(argv: list[str], cwd: str) -> dict:
    """Run ``nnip.cli.main(argv)`` in ``cwd``, capturing its output; a fresh set of warning registries each time."""
    from nnip.cli import main

    err = io.StringIO()
    home = os.getcwd()
    rc, exception = None, None
    start = time.perf_counter()
    try:
        os.chdir(cwd)
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(err):
            rc = main(argv)
    except SystemExit as stop:
        rc = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException as error:  # noqa: BLE001 - whatever escapes main is the finding
        exception = describe(error)
    finally:
        os.chdir(home)
    return {"rc": rc, "stderr": err.getvalue()[-4000:], "exception": exception,
            "seconds": round(time.perf_counter() - start, 3)}


def serve(family: str) -> None:
    """The worker loop: import, say ready, then answer one JSON line per JSON case line."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray output of native code goes to the log, never into the answers
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import torch

    torch.set_num_threads(1)
    for module in ("nnip.cli", *WARM_UP[family]):
        importlib.import_module(module)
    protocol.write(json.dumps({"ready": os.getpid()}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        protocol.write(json.dumps(run_case(request["argv"], request["cwd"])) + "\n")


# ---- the driver -----------------------------------------------------------------------------------------------------

_STACK = re.compile(r"\(most recent call first\):\n((?:  File .*\n)+)")
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<name>\S+)')


def parse_dump(text: str) -> tuple[str, list[tuple[str, int, str]]]:
    """(the 'Fatal Python error' line, the main thread's stack outermost first) of a fault-handler dump."""
    header = next((line for line in text.splitlines() if line.startswith("Fatal Python error")), "")
    stacks = _STACK.findall(text + "\n")
    stack = max(stacks, key=len) if stacks else ""  # the main thread's: the longest
    return header, [(m["file"], int(m["line"]), m["name"]) for m in _FRAME.finditer(stack)][::-1]


class Worker:
    """A worker process of one family: ``run`` answers each case, restarting the process after a crash or hang."""

    _TIMEOUT = object()

    def __init__(self, family: str, logs: Path, timeout: float = TIMEOUT):
        self.family, self.logs, self.timeout = family, logs, timeout
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def _start(self) -> None:
        self.starts += 1
        self.log = self.logs / f"{self.family}-{self.starts}.log"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(HERE / "worker.py"), "--serve", self.family],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                            text=True, bufsize=1)
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.process.stdout, self.answers), daemon=True).start()
        ready = self._answer(STARTUP_TIMEOUT)
        if not isinstance(ready, dict) or "ready" not in ready:
            self.close()
            raise RuntimeError(f"the {self.family} worker did not start:\n{self.log.read_text()[-3000:]}")

    @staticmethod
    def _read(stream, answers: queue.Queue) -> None:
        for line in stream:
            answers.put(json.loads(line))
        answers.put(None)  # the process ended

    def _answer(self, timeout: float):
        try:
            return self.answers.get(timeout=timeout)
        except queue.Empty:
            return self._TIMEOUT

    def run(self, argv: list[str], cwd: str) -> dict:
        """The worker's answer, or {'signal'|'hang', 'where', 'last_line'} when the process died or hung."""
        if self.process is None:
            self._start()
        offset = self.log.stat().st_size
        try:
            self._send(argv, cwd)
        except BrokenPipeError:  # the process ended after its last answer: start another
            self.close()
            self._start()
            offset = 0
            self._send(argv, cwd)
        answer = self._answer(self.timeout)
        if isinstance(answer, dict):
            return answer
        if answer is self._TIMEOUT:
            self.process.send_signal(signal.SIGUSR1)  # the fault handler dumps where it hangs
            time.sleep(1.0)
            failure = {"hang": True, "seconds": self.timeout}
        else:
            status = self.process.wait()
            failure = {"signal": signal.Signals(-status).name if status < 0 else f"exit {status}"}
        self.close()
        with open(self.log, "rb") as log:
            log.seek(offset)
            header, frames = parse_dump(log.read().decode(errors="replace"))
        what = header or (f"no answer within {self.timeout:g} s" if "hang" in failure else failure["signal"])
        return {**failure, "where": innermost(frames), "last_line": f"{what}, at {innermost(frames, nnip=False)}"}

    def _send(self, argv: list[str], cwd: str) -> None:
        self.process.stdin.write(json.dumps({"argv": argv, "cwd": cwd}) + "\n")
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.process = None


def run_fuzz(count: int, seed: int, root: Path, timeout: float = TIMEOUT, families: set[str] | None = None,
             keep: bool = False) -> tuple[list[Result], float]:
    """Run cases 0..count-1 of ``seed`` (one worker per family, in parallel); returns (results, seconds).

    Files of failing cases stay in ``root``/cases (all of them with ``keep``); every result is also
    appended to ``root``/results.jsonl.
    """
    start = time.perf_counter()
    root = Path(root)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    seeds = build_seeds(root / "seeds")
    plan: dict[str, list[int]] = {}
    for index in range(count):
        plan.setdefault(case_family(seed, index), []).append(index)
    plan = {family: indices for family, indices in plan.items() if families is None or family in families}
    results, lock = [], threading.Lock()

    def drive(family: str, indices: list[int]) -> None:
        worker = Worker(family, root / "logs", timeout)
        try:
            for index in indices:
                case = make_case(seed, index, seeds, root / "cases")
                result = classify(case, worker.run(case.argv, case.directory))
                if result.outcome not in FAILURES and not keep:
                    shutil.rmtree(case.directory, ignore_errors=True)
                with lock:
                    results.append(result)
                    with open(root / "results.jsonl", "a") as log:
                        log.write(json.dumps({**vars(result), "case": case.as_dict()}) + "\n")
        finally:
            worker.close()

    with ThreadPoolExecutor(max_workers=max(len(plan), 1)) as pool:
        for future in [pool.submit(drive, family, indices) for family, indices in plan.items()]:
            future.result()
    return sorted(results, key=lambda r: r.case.index), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seeded fuzzing of the nnip command line (see tests/fuzz).")
    parser.add_argument("--cases", type=int, default=2000, help="cases to run (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cases (default 0)")
    parser.add_argument("--workdir", default=None, help="folder for seeds, cases and logs (default: a new temp folder)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds before a case counts as a hang")
    parser.add_argument("--families", default=None, help="comma-separated subset of info,evaluate,train")
    parser.add_argument("--keep", action="store_true", help="keep the files of passing cases too")
    parser.add_argument("--make-case", type=int, metavar="INDEX", help="only write case INDEX and print its command")
    parser.add_argument("--serve", metavar="FAMILY", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="nnip-fuzz-"))
    if args.make_case is not None:
        case = make_case(args.seed, args.make_case, build_seeds(workdir / "seeds"), workdir / "cases")
        print(f"{case.mutation}: {case.detail} (must be refused: {case.refuse})\n{case.command()}")
        return 0
    families = set(args.families.split(",")) if args.families else None
    results, seconds = run_fuzz(args.cases, args.seed, workdir, args.timeout, families, args.keep)
    print(summary(results, seconds, REGENERATE))
    print(f"results: {workdir / 'results.jsonl'}; failing cases: {workdir / 'cases'}")
    return int(any(r.outcome in FAILURES for r in results))


if __name__ == "__main__":
    sys.exit(main())
