"""``python -m nnip`` (also what ``torchrun -m nnip train CONFIG`` runs)."""

import sys

from nnip.cli import main

sys.exit(main())
