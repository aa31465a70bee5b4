# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is pinned here (the CPU wheel); pyproject keeps a range that it satisfies.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/nnip demo --resume   # into runs/demo; a second make demo continues or refreshes it

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup -q   # one thread per worker: no oversubscription

bench: $(STAMP)
	$(BIN)/python benchmarks/neighbors.py
	$(BIN)/python benchmarks/lj_md.py
	$(BIN)/python benchmarks/train_throughput.py

# peers (SchNetPack, MACE) in their own venvs under benchmarks/peers/, never nnip's dependencies
bench-peers: $(STAMP)
	bash benchmarks/peers/setup.sh
	$(BIN)/python benchmarks/peers/compare.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
