"""The LAMMPS plugin for the tests of this folder (their models and structures: lammps_cases.py)."""

import pytest

from nnip.lammps import plugin


@pytest.fixture(scope="session")
def lammps_plugin():
    """The plugin (make builds it; a no-op here then)."""
    return plugin.build(quiet=True)
