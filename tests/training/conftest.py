"""Shared data for training tests: argon clusters labelled by ASE's Lennard-Jones calculator."""

from __future__ import annotations

import pytest

import nnip
from nnip.testing.structures import argon_clusters

CUTOFF = 8.0


@pytest.fixture(scope="session")
def argon_file(tmp_path_factory):
    """60 labelled argon clusters (sigma 3.4 Å, epsilon 0.0104 eV) in an extxyz file."""
    path = tmp_path_factory.mktemp("argon") / "argon.extxyz"
    nnip.write(path, argon_clusters(60, 3.4, 0.0104, seed=3))
    return path


def lj_config(train, output, **training) -> dict:
    """A small LJ training config (plain data) on ``train`` writing to ``output``."""
    return {
        "seed": 0,
        "output": str(output),
        "data": {"train": str(train), "split": {"val": 10, "test": 10}},
        "model": {"name": "lj", "sigma": 3.0, "epsilon": 0.012, "cutoff": CUTOFF, "e0": "zero"},
        "training": {"max_epochs": 4, "batch_size": 10, "lr": 0.01, "progress": False,
                     "loss": {"energy_weight": 100.0, "forces_weight": 1.0}, **training},
    }
