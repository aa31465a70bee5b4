"""Options of the fuzz test: ``pytest tests/fuzz --fuzz-cases 20000 --fuzz-seed 3``.

pytest reads them only when tests/fuzz is named on its command line; NNIP_FUZZ_CASES and
NNIP_FUZZ_SEED work from anywhere (``NNIP_FUZZ_CASES=5000 pytest -m fuzz``).
"""


def pytest_addoption(parser):
    group = parser.getgroup("fuzz", "seeded fuzzing of the nnip command line")
    group.addoption("--fuzz-cases", type=int, default=None, help="cases to run (default 2000, or $NNIP_FUZZ_CASES)")
    group.addoption("--fuzz-seed", type=int, default=None, help="seed of the cases (default 0, or $NNIP_FUZZ_SEED)")


def pytest_configure(config):
    config.addinivalue_line("markers", "fuzz: seeded fuzzing of the command line (tests/fuzz); select with -m fuzz")
