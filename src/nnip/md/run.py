"""Molecular dynamics and geometry optimisation with any ASE calculator (nnip models, ensembles, oracles).

ASE's integrators: NVE velocity Verlet, Langevin (``fixcm=False``: ASE's default removes the
centre-of-mass motion every step and runs small molecules too hot), Nose-Hoover chains, and
Berendsen; with a pressure, isotropic MTK (Nose-Hoover) or Berendsen NPT. Every
``interval`` steps a frame goes to the trajectory (extxyz with the energy and forces of the
calculator, so a trajectory is a labelled dataset, and kinetic/total energy, temperature
and, for ensembles, the largest per-atom force std in ``info``) and a row to the CSV log.
Under a bias (:class:`~nnip.md.biased.BiasedCalculator`) the frames carry the unbiased
energy and forces and ``info['bias_energy']``; the log's energies are those the atoms
move on. ``stop_uncertainty`` ends the run at the first step whose largest force std
exceeds it and writes that frame. ``observers`` are (function(atoms), every n steps)
called after the step, e.g. to deposit metadynamics hills.

Units: time in fs, temperature in K, pressure in GPa, friction in 1/fs, energies in eV.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import IsotropicMTKNPT, NoseHooverChainNVT
from ase.md.nptberendsen import NPTBerendsen
from ase.md.nvtberendsen import NVTBerendsen
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS, FIRE

from nnip.errors import ConfigError, DataError, NumericalError
from nnip.md.velocities import maxwell_boltzmann
from nnip.progress import stage_bar
from nnip.runlock import file_lock
from nnip.strict import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, SEED, check

__all__ = ["MDSettings", "MDResult", "run_md", "relax", "THERMOSTATS"]

THERMOSTATS = ("nve", "langevin", "nose-hoover", "berendsen")
LOG_COLUMNS = ("step", "time_fs", "potential_energy", "kinetic_energy", "total_energy", "temperature",
               "max_force_std")


@dataclass
class MDSettings:
    """How to run MD (units: fs, K, GPa, 1/fs, eV/Å)."""

    steps: int = 1000
    timestep: float = 0.5
    temperature: float = 300.0
    thermostat: str = "langevin"
    friction: float = 0.01
    tau: float = 100.0
    pressure: float | None = None
    interval: int = 10
    seed: int = 0
    stop_uncertainty: float | None = None

    def __post_init__(self) -> None:
        if self.thermostat not in THERMOSTATS:
            raise ConfigError(f"thermostat: expected one of {', '.join(THERMOSTATS)}, got {self.thermostat!r}")
        if self.pressure is not None and self.thermostat not in ("nose-hoover", "berendsen"):
            raise ConfigError("a pressure (NPT) needs the nose-hoover or berendsen thermostat")
        for name, bounds in (("steps", NON_NEGATIVE), ("timestep", POSITIVE), ("temperature", NON_NEGATIVE),
                             ("friction", NON_NEGATIVE), ("tau", POSITIVE), ("pressure", None),
                             ("interval", AT_LEAST_ONE), ("seed", SEED), ("stop_uncertainty", POSITIVE)):
            if getattr(self, name) is not None:
                check(name, getattr(self, name), bounds)


@dataclass
class MDResult:
    """Steps run, why the run ended ("steps" or "uncertainty"), and the largest force std seen (eV/Å)."""

    steps: int
    stopped: str
    max_force_std: float


def _integrator(atoms: Atoms, s: MDSettings):
    dt = s.timestep * units.fs
    if s.thermostat == "nve":
        return VelocityVerlet(atoms, timestep=dt)
    if s.thermostat == "langevin":
        return Langevin(atoms, dt, temperature_K=s.temperature, friction=s.friction / units.fs, fixcm=False,
                        rng=np.random.default_rng(s.seed))
    if s.pressure is not None:
        if s.thermostat == "berendsen":
            return NPTBerendsen(atoms, dt, temperature_K=s.temperature, pressure_au=s.pressure * units.GPa,
                                taut=s.tau * units.fs, taup=10 * s.tau * units.fs, compressibility_au=1 / (100 * units.GPa))
        return IsotropicMTKNPT(atoms, dt, temperature_K=s.temperature, pressure_au=s.pressure * units.GPa,
                               tdamp=s.tau * units.fs, pdamp=10 * s.tau * units.fs)
    if s.thermostat == "berendsen":
        return NVTBerendsen(atoms, dt, temperature_K=s.temperature, taut=s.tau * units.fs)
    return NoseHooverChainNVT(atoms, dt, temperature_K=s.temperature, tdamp=s.tau * units.fs)


def _state(atoms: Atoms, step: int, s: MDSettings) -> dict[str, float]:
    potential, kinetic = atoms.get_potential_energy(), atoms.get_kinetic_energy()
    return {"step": step, "time_fs": step * s.timestep, "potential_energy": potential, "kinetic_energy": kinetic,
            "total_energy": potential + kinetic, "temperature": atoms.get_temperature(),
            "max_force_std": float(atoms.calc.results.get("max_force_std", float("nan")))}


def _step_failure(dynamics, atoms: Atoms) -> str | None:
    """Run one step; what went wrong when the energy, the forces or the positions came out NaN or inf."""
    try:
        dynamics.run(1)
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    except DataError as error:  # positions the neighbour list refuses (NaN, or flown apart)
        return str(error)
    if not np.isfinite(energy):
        return f"the potential energy is {energy}"
    for name, values in (("forces", forces), ("positions", atoms.positions)):
        if not np.isfinite(values).all():
            return f"the {name} are not finite (NaN or inf)"
    return None


def run_md(atoms: Atoms, calculator: Calculator, settings: MDSettings, trajectory: str | Path,
           log: str | Path | None = None, progress: bool = True,
           observers: Sequence[tuple[Callable[[Atoms], None], int]] = ()) -> MDResult:
    """Run MD from ``atoms`` (velocities drawn at ``settings.temperature`` unless it has momenta).
    NumericalError when a step gives NaN or inf (the trajectory then ends with the last good frame)."""
    with file_lock(trajectory):  # one writer per trajectory
        return _run(atoms, calculator, settings, Path(trajectory), log, progress, observers)


def _run(atoms: Atoms, calculator: Calculator, settings: MDSettings, trajectory: Path, log: str | Path | None,
         progress: bool, observers: Sequence[tuple[Callable[[Atoms], None], int]]) -> MDResult:
    """:func:`run_md` with the trajectory locked."""
    atoms = atoms.copy()
    atoms.calc = calculator
    if not atoms.get_momenta().any():
        maxwell_boltzmann(atoms, settings.temperature, seed=settings.seed)
    dynamics = _integrator(atoms, settings)
    trajectory.unlink(missing_ok=True)
    stream = open(log, "w", newline="") if log else None
    writer = csv.DictWriter(stream, fieldnames=LOG_COLUMNS) if stream else None
    if writer:
        writer.writeheader()
    largest, stopped, step = 0.0, "steps", 0

    def record(step: int) -> None:
        state = _state(atoms, step, settings)
        frame = atoms.copy()
        frame.info.update({k: v for k, v in state.items() if k not in ("step", "potential_energy")}, step=step)
        forces = atoms.get_forces()
        results = atoms.calc.results  # after the call above, so they belong to this geometry
        if "bias_energy" in results:
            frame.info["bias_energy"] = results["bias_energy"]
        energy = results.get("unbiased_energy", state["potential_energy"])
        frame.calc = SinglePointCalculator(frame, energy=energy, forces=results.get("unbiased_forces", forces))
        ase.io.write(trajectory, frame, format="extxyz", append=True)
        if writer:
            writer.writerow(state)
            stream.flush()

    bar = stage_bar(settings.steps, "MD" if progress else None, "step")  # on a terminal only
    try:
        record(0)
        for step in range(1, settings.steps + 1):
            bar.update(1)
            before = (atoms.get_positions(), atoms.get_momenta(), atoms.get_cell().array.copy())
            failure = _step_failure(dynamics, atoms)
            if failure:  # back to the last good state, as it was (constraints already applied to it)
                atoms.set_cell(before[2])
                atoms.set_positions(before[0], apply_constraint=False)
                atoms.set_momenta(before[1], apply_constraint=False)
                atoms.calc.reset()
                if (step - 1) % settings.interval:  # not yet in the trajectory
                    record(step - 1)
                raise NumericalError(
                    f"MD step {step}: {failure}; the run stopped, and {trajectory} ends with the last good frame "
                    f"(step {step - 1}). Likely causes: a timestep too long for this system ({settings.timestep:g} fs), "
                    "or atoms that left the region the model was trained on (with an ensemble, set stop_uncertainty)")
            observed = [observe(atoms) for observe, every in observers if step % every == 0]
            if observed:
                atoms.calc.reset()  # an observer may change the calculator (a new hill): no stale forces
            spread = float(atoms.calc.results.get("max_force_std", 0.0))
            largest = max(largest, spread)
            if settings.stop_uncertainty is not None and spread > settings.stop_uncertainty:
                record(step)
                stopped = "uncertainty"
                break
            if step % settings.interval == 0:
                record(step)
    finally:
        bar.close()
        if stream:
            stream.close()
    return MDResult(step, stopped, largest)


def relax(atoms: Atoms, calculator: Calculator, fmax: float = 0.01, steps: int = 1000, optimizer: str = "BFGS",
          cell: bool = False, trajectory: str | Path | None = None) -> Atoms:
    """Geometry optimisation to max force ``fmax`` (eV/Å); ``cell`` also relaxes a periodic cell (Frechet filter)."""
    if optimizer not in ("BFGS", "FIRE"):
        raise ConfigError(f"optimizer: expected BFGS or FIRE, got {optimizer!r}")
    atoms = atoms.copy()
    atoms.calc = calculator
    target = FrechetCellFilter(atoms) if cell and atoms.pbc.all() else atoms
    (BFGS if optimizer == "BFGS" else FIRE)(target, logfile=None, trajectory=None).run(fmax=fmax, steps=steps)
    if trajectory is not None:
        ase.io.write(trajectory, atoms, format="extxyz")
    return atoms
