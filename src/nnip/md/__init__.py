"""Molecular dynamics helpers built on ASE's integrators."""

from nnip.md.velocities import maxwell_boltzmann

__all__ = ["maxwell_boltzmann"]
