"""Acceptance: NVE of an LJ argon crystal conserves energy through the ASE calculator."""

import pytest

from nnip.demo import argon_nve


@pytest.mark.slow
def test_lj_argon_nve_1000_steps_of_5_fs_conserves_energy():
    result = argon_nve(repeat=3, temperature=50.0, steps=1000, timestep=5.0, progress=False)
    assert abs(result["drift"]) < 1e-4
    assert result["max_deviation"] < 1e-4
    assert 20.0 < result["mean_temperature"] < 80.0
    assert result["neighbor_list_builds"] < 1000 / 5  # the skin is reused
