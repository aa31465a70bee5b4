"""Lennard-Jones argon in NVE molecular dynamics through the ASE calculator: how well the
total energy is conserved (a check of forces, neighbour lists and integration together)."""

from __future__ import annotations

import time

import numpy as np
from ase.build import bulk
from ase.md.verlet import VelocityVerlet
from ase.units import fs

from nnip.calculator import Calculator
from nnip.md.velocities import maxwell_boltzmann
from nnip.potentials import LennardJones, LennardJonesConfig, Potential
from nnip.progress import stage_bar
from nnip.units import kB

__all__ = ["argon_nve", "argon_potential"]


def argon_potential() -> Potential:
    """LJ argon, eps = 0.0104 eV, sigma = 3.40 Å, cut at 8.5 Å with the energy shifted to zero there."""
    term = LennardJones(LennardJonesConfig(epsilon=0.0104, sigma=3.40, cutoff=8.5), elements=["Ar"])
    return Potential([term], elements=["Ar"])


def argon_nve(repeat: int = 4, temperature: float = 50.0, steps: int = 1000, timestep: float = 5.0,
              seed: int = 0, progress: bool = True) -> dict:
    """NVE velocity-Verlet MD of fcc argon (a = 5.26 Å, 4 repeat^3 atoms) started at ``temperature`` K.

    Returns time (fs), potential/kinetic/total energies (eV/atom) and the total-energy drift
    (eV/atom over the run) plus its largest excursion.
    """
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(repeat)
    atoms.calc = Calculator(argon_potential(), dtype="float64", skin=1.0)
    maxwell_boltzmann(atoms, 2 * temperature, seed=seed)  # equipartition halves it
    dynamics = VelocityVerlet(atoms, timestep=timestep * fs)
    n = len(atoms)
    record = {"time_fs": [], "potential": [], "kinetic": [], "total": []}

    def sample() -> None:
        potential, kinetic = atoms.get_potential_energy() / n, atoms.get_kinetic_energy() / n
        record["time_fs"].append(dynamics.nsteps * timestep)
        record["potential"].append(potential)
        record["kinetic"].append(kinetic)
        record["total"].append(potential + kinetic)

    sample()
    started = time.perf_counter()
    for _ in stage_bar(steps, "NVE argon" if progress else None, "step", iterable=range(steps)):
        dynamics.run(1)
        sample()
    total = np.asarray(record["total"])
    record.update(
        n_atoms=n,
        seconds=time.perf_counter() - started,
        drift=float(total[-1] - total[0]),
        max_deviation=float(np.abs(total - total[0]).max()),
        neighbor_list_builds=atoms.calc.neighbors.n_builds,
        mean_temperature=float(np.mean(record["kinetic"]) / (1.5 * kB)),
    )
    return record
