"""Candidate selection: each filter rejects what it names and nothing else; RMSD alignment."""

import numpy as np
from ase import Atoms
from ase.build import molecule
from scipy.spatial.transform import Rotation

from nnip.active.selection import rmsd, select


def _water(shift: float = 0.0) -> Atoms:
    atoms = molecule("H2O")
    bond = atoms.positions[1] - atoms.positions[0]
    atoms.positions[1] += shift * bond / np.linalg.norm(bond)  # stretch one O-H bond by shift Å
    return atoms


def test_rmsd_is_zero_for_a_rotated_copy_only_when_aligned():
    a = molecule("CH3CH2OH")
    b = a.copy()
    b.positions = Rotation.random(random_state=1).apply(a.positions) + [1.0, -2.0, 0.5]
    assert rmsd(a, b, align=True) < 1e-10
    assert rmsd(a, b, align=False) > 0.5
    assert rmsd(a, molecule("H2O"), align=True) == float("inf")


def test_each_filter_counts_its_own_rejections():
    train = [_water(0.0)]
    candidates = [
        _water(0.30),   # 0: most uncertain, chosen
        _water(0.305),  # 1: duplicate of 0 (RMSD 0.003 Å)
        _water(0.002),  # 2: known (next to the training structure)
        _water(0.20),   # 3: chosen
        _water(0.10),   # 4: beyond max_new
        _water(0.15),   # 5: not uncertain enough
        _water(0.0),    # 6: collapsed: H on top of O
    ]
    candidates[6].positions[1] = candidates[6].positions[0] + [0.2, 0.0, 0.0]
    sigma = [0.9, 0.8, 0.7, 0.6, 0.5, 0.05, 1.0]
    result = select(candidates, sigma, train, [0.1], percentile=50, rmsd_min=0.01, max_new=2)
    assert result.chosen == [0, 3]
    assert result.threshold == 0.1
    assert result.rejected == {"contact": 1, "uncertainty": 1, "known": 1, "duplicate": 1, "limit": 1}


def test_non_finite_candidate_is_rejected_as_contact():
    bad = _water(0.3)
    bad.positions[2] = np.nan
    result = select([bad, _water(0.3)], [1.0, 0.5], [_water()], [0.0], percentile=0, rmsd_min=0.01, max_new=5)
    assert result.chosen == [1] and result.rejected["contact"] == 1
