"""``python -m nnip.cli``: the same as ``nnip`` and ``python -m nnip``."""

import sys

from nnip.cli import main

sys.exit(main())
