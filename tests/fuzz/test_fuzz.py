"""Seeded fuzzing of the command line: every mutated input ends in a clean error or, if harmless, is accepted.

No exception may escape ``nnip.cli.main``, no worker may die by a signal or hang, and no input that
must be refused may exit 0. 2,000 cases by default (about a minute on 2 cores); more with
``pytest tests/fuzz --fuzz-cases N`` or NNIP_FUZZ_CASES, or ``python tests/fuzz/worker.py --cases N``.
"""

import os

import pytest
from cases import Case, seed_commands
from outcomes import FAILURES, classify, summary
from seeds import build_seeds
from worker import REGENERATE, Worker, run_fuzz

pytestmark = pytest.mark.fuzz

DEFAULT_CASES = 2000

#: oracles that kill their process with SIGFPE or never return: a worker must survive both
PROBE = '''
import os, signal, time
from ase.calculators.calculator import Calculator


class Crash(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        os.kill(os.getpid(), signal.SIGFPE)


class Hang(Crash):
    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        time.sleep(600)
'''


def _setting(request, option: str, variable: str, default: int) -> int:
    value = request.config.getoption(option, default=None)
    return int(value if value is not None else os.environ.get(variable, default))


def test_mutated_inputs_end_in_a_clean_error_never_a_crash(tmp_path, request):
    count = _setting(request, "--fuzz-cases", "NNIP_FUZZ_CASES", DEFAULT_CASES)
    seed = _setting(request, "--fuzz-seed", "NNIP_FUZZ_SEED", 0)
    results, seconds = run_fuzz(count, seed, tmp_path)
    print(summary(results, seconds, REGENERATE))
    assert len(results) == count
    failures = [r for r in results if r.outcome in FAILURES]
    assert not failures, f"{len(failures)} of {count} cases failed, listed in the captured stdout ({tmp_path})"


def test_a_worker_reports_a_signal_and_a_hang_and_goes_on(tmp_path, monkeypatch):
    (tmp_path / "fuzzprobe.py").write_text(PROBE)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    data = tmp_path / "h2.extxyz"
    data.write_text("2\nProperties=species:S:1:pos:R:3\nH 0 0 0\nH 0 0 0.74\n")

    def label(oracle: str) -> list[str]:
        return ["label", str(data), "--oracle", f"fuzzprobe:{oracle}", "--output", str(tmp_path / f"{oracle}.xyz")]

    worker = Worker("info", tmp_path, timeout=5)
    try:
        crash, hang, info = (worker.run(argv, str(tmp_path))
                             for argv in (label("Crash"), label("Hang"), ["info", str(data)]))
    finally:
        worker.close()
    assert crash["signal"] == "SIGFPE" and crash["where"].startswith("nnip/oracles/"), crash
    assert crash["last_line"].startswith("Fatal Python error: Floating point exception, at ")
    assert hang["hang"] and hang["where"].startswith("nnip/oracles/"), hang
    assert hang["last_line"].startswith("no answer within 5 s, at ")
    assert all("fuzzprobe.py:" in answer["last_line"] for answer in (crash, hang))
    assert info["rc"] == 0 and worker.starts == 3
    case = Case(0, 0, "info", label("Crash"), "probe", "", True, str(tmp_path))
    assert [classify(case, answer).outcome for answer in (crash, hang, info)] == ["signal", "hang", "accepted"]


@pytest.mark.parametrize("family", ["info", "evaluate", "train"])
def test_every_seed_is_accepted(tmp_path, family):
    """The unmutated inputs pass, so that a refusal of a mutated one is the mutation's doing."""
    from nnip.cli import main

    seeds = build_seeds(tmp_path / "seeds")
    for argv in seed_commands(seeds, family, tmp_path):
        assert main(argv) == 0, argv
