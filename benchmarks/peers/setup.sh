#!/usr/bin/env bash
# Create the peers' virtual environments next to this script (never nnip's dependencies):
#   .venv-mace   mace-torch 0.3.16 (pins e3nn 0.4.4)
#   .venv-peers  nequip (e3nn 0.6), schnetpack 2.1.1 (--no-deps; see schnetpack_compat.py), torchani
# Both pin torch==2.13.0 (the CPU wheel nnip uses) and get nnip itself, so one script can time both.
# Usage: bash benchmarks/peers/setup.sh [PYTHON]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${1:-python3}"

make_venv() {  # name, packages...
    local venv="$here/$1"; shift
    if [ -f "$venv/.installed" ]; then echo "$venv: present"; return; fi
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet torch==2.13.0
    "$venv/bin/python" -m pip install --quiet "$@"
    "$venv/bin/python" -m pip install --quiet --no-deps -e "$root"
    touch "$venv/.installed"
    echo "$venv: $("$venv/bin/python" -m pip freeze | grep -Ei '^(torch|e3nn|mace-torch|nequip|schnetpack|torchani)==' | tr '\n' ' ')"
}

make_venv .venv-mace mace-torch==0.3.16 vesin tblite pyyaml tqdm scipy matplotlib
make_venv .venv-peers nequip==0.19.1 torchani==2.9.0 vesin tblite pyyaml tqdm scipy matplotlib
# schnetpack 2.1.1's requirements would replace torch; its runtime needs are installed above or here
"$here/.venv-peers/bin/python" -m pip install --quiet --no-deps schnetpack==2.1.1
"$here/.venv-peers/bin/python" -m pip install --quiet hydra-core h5py ase tensorboardX pytorch-lightning torchmetrics \
    dirsync matscipy torch-ema
