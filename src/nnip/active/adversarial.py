"""Uncertainty-based adversarial attacks (Schwalbe-Koda, Tan and Gomez-Bombarelli, Nat. Commun. 12, 5104 (2021)).

The atoms of each seed structure X are displaced by delta to maximise

    A(X + delta) = p(X + delta) * sigma^2(X + delta),   p = exp(-E/kT) / Q,   Q = mean_train exp(-E_t/kT)

where sigma^2 is the ensemble's unbiased variance of the forces (mean over atoms and
components, eV^2/Å^2) or of the energy, E is the ensemble-mean energy and E_t are the
training energies, both normalised the same way (per structure, or per atom). Everything is
computed in log space, log A = -E/kT - logmeanexp(-E_t/kT) + log sigma^2, so nothing over- or
underflows; log A has the same maximisers as A (its gradient is that of A divided by A),
and Adam's per-coordinate normalisation makes the step sizes comparable.

Defaults follow the paper's code (kT = 20 kcal/mol, delta from 0.01 Å Gaussian noise, Adam
with lr 0.01, 60 steps, delta clamped to +-3 Å; the clamp acts after the projection, so
a clamped seed may keep a little rigid motion). Unlike it: the neighbour list is rebuilt
whenever an atom moved more than half a skin since the last build, so pairs that enter the
cutoff are never ignored; rigid translations (and, for molecules, rotations) are projected
out of delta after every step (for seeds without constraints: ASE's FixAtoms and
FixCartesian are honoured by zeroing the fixed components instead); a seed whose next geometry would put two atoms closer than
``min_distance`` times the sum of their covalent radii stops at its last allowed geometry;
and all seeds are attacked together as one batch.

With ``strain`` on, periodic seeds also deform their cell: X -> (X + delta)(I + eps) and
cell -> cell (I + eps) with eps a symmetric 3x3 strain per seed (Adam with ``strain_lr``,
each component clamped to +-``max_strain``); the neighbour list is then rebuilt every step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated

import numpy as np
import torch
from ase import Atoms, units
from ase.constraints import FixAtoms, FixCartesian
from ase.data import covalent_radii

from nnip import keys
from nnip.data.batching import collate
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest, neighbor_list
from nnip.errors import ConfigError
from nnip.potentials.contract.ensemble import Ensemble
from nnip.progress import stage_bar
from nnip.strict import NON_NEGATIVE, POSITIVE, SEED

__all__ = ["AttackSettings", "AttackResult", "Attack", "KT_PAPER", "log_partition", "rigid_basis", "closest_contact"]

#: the paper's temperature: kT = 20 kcal/mol, in eV
KT_PAPER = 20.0 * units.kcal / units.mol


@dataclass
class AttackSettings:
    """The adversarial attack: gradient ascent of log p(X) + log sigma^2(X) from each seed.

    Args:
        kT: eV, the Boltzmann weight's temperature (in the chosen energy normalisation).
        steps: Adam steps on the displacement. lr: Adam's step, Å.
        init_noise: Å, random start displacement. clamp: Å, largest displacement per atom.
        uncertainty: "forces" or "energy" (which variance sigma^2 is).
        normalisation: "structure", "atom" or "auto" (per structure when every seed and
            training structure has the same size).
        min_distance: fraction of the covalent-radius sum below which a geometry is refused.
        skin: Å, Verlet skin of the neighbour list during the attack.
        project_rigid: remove rigid translations and rotations from each step.
        seed: random seed of the start noise. keep_trajectory: keep every step's geometry.
        strain: also attack the cell of periodic seeds with a symmetric strain.
        strain_lr: Adam's step on the strain. max_strain: clamp of each strain component.
    """

    kT: Annotated[float, POSITIVE] = KT_PAPER
    steps: Annotated[int, NON_NEGATIVE] = 60
    lr: Annotated[float, POSITIVE] = 0.01
    init_noise: Annotated[float, NON_NEGATIVE] = 0.01
    clamp: Annotated[float, POSITIVE] = 3.0
    uncertainty: str = "forces"
    normalisation: str = "auto"
    min_distance: Annotated[float, NON_NEGATIVE] = 0.5
    skin: Annotated[float, NON_NEGATIVE] = 0.5
    project_rigid: bool = True
    seed: Annotated[int, SEED] = 0
    keep_trajectory: bool = False
    strain: bool = False
    strain_lr: Annotated[float, POSITIVE] = 0.001
    max_strain: Annotated[float, NON_NEGATIVE] = 0.05

    def __post_init__(self) -> None:
        if self.uncertainty not in ("forces", "energy"):
            raise ConfigError(f"uncertainty must be 'forces' or 'energy', got {self.uncertainty!r}")
        if self.normalisation not in ("auto", "structure", "atom"):
            raise ConfigError(f"normalisation must be 'auto', 'structure' or 'atom', got {self.normalisation!r}")
        if self.kT <= 0 or self.steps < 0 or self.lr <= 0 or self.clamp <= 0 or self.skin < 0:
            raise ConfigError("need kT > 0, steps >= 0, lr > 0, clamp > 0 and skin >= 0")
        if self.strain_lr <= 0 or not 0 < self.max_strain < 1:
            raise ConfigError("need strain_lr > 0 and 0 < max_strain < 1")


@dataclass
class AttackResult:
    """One attacked seed: final geometry (``atoms``, info holds the figures below) and its values.

    sigma: sqrt of the variance (eV/Å for forces, eV for the energy); log_p: log Boltzmann
    weight; log_objective: log A; stopped: "steps", "distance" (the closest-contact guard ended it)
    or "not finite" (a step gave NaN or inf; the seed stays at its last finite geometry).
    trajectory: (steps run + 1, N, 3) positions when kept (fewer than ``steps`` + 1 when every seed
    stopped early).
    """

    atoms: Atoms
    sigma: float
    log_p: float
    log_objective: float
    energy: float
    stopped: str
    trajectory: np.ndarray | None = field(default=None, repr=False)


def log_partition(energies: Sequence[float], kT: float) -> float:
    """log Q = log mean_t exp(-E_t / kT) of normalised training energies (eV), without overflow."""
    values = -torch.as_tensor(np.asarray(energies, dtype=np.float64)) / kT
    if values.numel() == 0:
        raise ValueError("the Boltzmann weight needs at least one training energy")
    return float(torch.logsumexp(values, 0) - math.log(values.numel()))


def rigid_basis(positions: torch.Tensor, periodic: bool) -> torch.Tensor:
    """Orthonormal basis (3N, k) of rigid translations and, unless ``periodic``, rotations about the centroid."""
    n = positions.shape[0]
    eye = torch.eye(3, dtype=positions.dtype, device=positions.device)
    vectors = [eye[c].repeat(n) for c in range(3)]
    if not periodic:
        centred = positions - positions.mean(0)
        vectors += [torch.linalg.cross(eye[c].expand(n, 3), centred).reshape(-1) for c in range(3)]
    u, s, _ = torch.linalg.svd(torch.stack(vectors, 1), full_matrices=False)
    return u[:, s > 1e-8 * s.max()]  # a linear molecule has only two rotations


def closest_contact(atoms: Atoms, factor: float) -> tuple[int, int, float] | None:
    """The pair (i, j, distance Å) closest relative to factor * (r_cov,i + r_cov,j) if it is below that, else None."""
    radii = covalent_radii[atoms.numbers]
    reach = factor * 2 * float(radii.max())
    if reach <= 0 or len(atoms) < 2:
        return None
    edge_index, shifts = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, reach, full=False)
    if edge_index.shape[1] == 0:
        return None
    i, j = edge_index.numpy()
    vectors = atoms.positions[j] - atoms.positions[i] + shifts.numpy() @ atoms.cell.array
    distances = np.linalg.norm(vectors, axis=1)
    ratio = distances / (factor * (radii[i] + radii[j]))
    k = int(np.argmin(ratio))
    return (int(i[k]), int(j[k]), float(distances[k])) if ratio[k] < 1 else None


class Attack:
    """Adversarial attack with an ensemble against the Boltzmann weight of its training energies.

    Args:
        ensemble: an :class:`~nnip.potentials.contract.ensemble.Ensemble` (at least two members).
        train_energies: total energies (eV) of the training structures; train_sizes their
            atom counts (for per-atom normalisation).
        settings: :class:`AttackSettings`.
    """

    def __init__(self, ensemble: Ensemble, train_energies: Sequence[float], train_sizes: Sequence[int],
                 settings: AttackSettings | None = None):
        if not isinstance(ensemble, Ensemble) or len(ensemble) < 2:
            raise ValueError("an adversarial attack needs an ensemble of at least two members")
        if len(train_energies) != len(train_sizes) or len(train_energies) == 0:
            raise ValueError("give one size per training energy, and at least one")
        self.ensemble = ensemble.eval()
        self.settings = settings or AttackSettings()
        self.train_energies = np.asarray(train_energies, dtype=np.float64)
        self.train_sizes = np.asarray(train_sizes, dtype=np.int64)

    def per_atom(self, seeds: Sequence[Atoms]) -> bool:
        """Whether energies are normalised per atom (``auto``: when the sizes differ)."""
        if self.settings.normalisation != "auto":
            return self.settings.normalisation == "atom"
        sizes = {len(a) for a in seeds} | set(self.train_sizes.tolist())
        return len(sizes) > 1

    def log_q(self, per_atom: bool) -> float:
        """log Q of the training energies in the given normalisation."""
        energies = self.train_energies / self.train_sizes if per_atom else self.train_energies
        return log_partition(energies, self.settings.kT)

    def objective(self, graph: AtomicGraph, positions: torch.Tensor, per_atom: bool, log_q: float,
                  create_graph: bool = True, cells: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """log A, log p, variance and mean energy (normalised) of each structure (B,), differentiable in
        positions (N, 3) and, when given, the cells (B, 3, 3)."""
        graph = graph.with_positions(positions) if cells is None else replace(graph, positions=positions, cell=cells)
        out = self.ensemble(graph, compute_forces=True, create_graph=create_graph)
        sizes = graph.n_atoms.to(out[keys.ENERGY].dtype)
        norm = sizes if per_atom else torch.ones_like(sizes)
        energy = out[keys.ENERGY] / norm
        if self.settings.uncertainty == "forces":
            per_atom_var = out[keys.FORCES + keys.VAR_SUFFIX].mean(dim=1).to(sizes.dtype)
            variance = torch.zeros_like(sizes).index_add(0, graph.structure_index, per_atom_var) / sizes
        else:
            variance = out[keys.ENERGY + keys.VAR_SUFFIX] / norm**2
        log_p = -energy / self.settings.kT - log_q
        log_variance = torch.log(variance.clamp_min(torch.finfo(variance.dtype).tiny))  # identical members: finite
        return {"log_objective": log_p + log_variance, "log_p": log_p, "variance": variance, "energy": energy}

    def run(self, seeds: Sequence[Atoms], label: str | None = None) -> list[AttackResult]:
        """Attack every seed (all in one batch); results in the seeds' order. With ``label``, a
        progress bar of the steps on a terminal."""
        s = self.settings
        seeds = [a.copy() for a in seeds]
        per_atom = self.per_atom(seeds)
        log_q = self.log_q(per_atom)
        batch = _Batch(seeds, self.ensemble.neighbor_request(s.skin), self.ensemble.dtype)
        delta = batch.initial_noise(s.init_noise, s.seed)
        batch.constrain(delta, s.project_rigid, s.clamp)
        delta.requires_grad_(True)
        strain = torch.zeros(len(seeds), 3, 3, dtype=delta.dtype, requires_grad=s.strain)
        groups = [{"params": [delta], "lr": s.lr}] + ([{"params": [strain], "lr": s.strain_lr}] if s.strain else [])
        optimizer = torch.optim.Adam(groups)
        active = np.ones(len(seeds), dtype=bool)
        stops = ["steps"] * len(seeds)  # why each seed's attack ended
        trajectory = [(batch.origin + delta).detach().clone()] if s.keep_trajectory else None
        bar = stage_bar(s.steps, label, "step")
        for _ in range(s.steps):
            positions, cells = batch.deformed(delta, strain)
            graph = batch.graph(positions.detach(), s.skin, cells.detach() if s.strain else None)
            values = self.objective(graph, positions, per_atom, log_q, cells=cells if s.strain else None)
            mask = torch.as_tensor(active, device=delta.device)
            optimizer.zero_grad()
            (-values["log_objective"][mask].sum()).backward()
            previous, previous_strain = delta.detach().clone(), strain.detach().clone()
            optimizer.step()
            with torch.no_grad():
                batch.constrain(delta, s.project_rigid, s.clamp)
                batch.constrain_strain(strain, s.max_strain)
                positions, cells = batch.deformed(delta, strain)
                finite = torch.isfinite(values["log_objective"].detach())
                for k in range(len(seeds)):
                    rows = batch.rows(k)
                    if active[k] and not (bool(finite[k]) and bool(torch.isfinite(positions[rows]).all())):
                        active[k], stops[k] = False, "not finite"  # refuse the step: this seed stops where it was
                    elif active[k] and closest_contact(batch.atoms_at(k, positions[rows], cells[k]), s.min_distance):
                        active[k], stops[k] = False, "distance"
                    if not active[k]:
                        delta[rows], strain[k] = previous[rows], previous_strain[k]
            if trajectory is not None:
                trajectory.append(batch.deformed(delta, strain)[0].detach().clone())
            bar.update(1)
            if not active.any():
                break
        bar.close()
        return self._results(batch, delta.detach(), strain.detach(), per_atom, log_q, stops, trajectory)

    def _results(self, batch: "_Batch", delta: torch.Tensor, strain: torch.Tensor, per_atom: bool, log_q: float,
                 stops: list[str], trajectory: list[torch.Tensor] | None) -> list[AttackResult]:
        positions, cells = batch.deformed(delta, strain)
        values = self.objective(batch.graph(positions, 0.0, cells, force=True), positions.clone().requires_grad_(True),
                                per_atom, log_q, create_graph=False, cells=cells)
        path = torch.stack(trajectory).cpu().numpy() if trajectory is not None else None
        results = []
        for k in range(len(batch.seeds)):
            rows = batch.rows(k)
            atoms = batch.atoms_at(k, positions[rows], cells[k])
            figures = {name: float(values[name][k].detach()) for name in ("log_objective", "log_p", "variance", "energy")}
            sigma = math.sqrt(max(figures["variance"], 0.0))
            stopped = stops[k]
            atoms.info.update(attack_sigma=sigma, attack_log_p=figures["log_p"],
                              attack_log_objective=figures["log_objective"], attack_stopped=stopped)
            if bool(strain[k].any()):
                atoms.info["attack_strain"] = strain[k].cpu().numpy().reshape(-1)
            results.append(AttackResult(atoms, sigma, figures["log_p"], figures["log_objective"], figures["energy"],
                                        stopped, None if path is None else path[:, rows.start:rows.stop]))
        return results


class _Batch:
    """The seeds as one batch: reference positions, per-seed rows, and a Verlet-style neighbour list."""

    def __init__(self, seeds: list[Atoms], neighbors: NeighborRequest, dtype: torch.dtype):
        self.seeds, self.neighbors, self.dtype = seeds, neighbors, dtype
        self.origin = torch.cat([torch.as_tensor(a.positions, dtype=dtype) for a in seeds])
        self.free = [_free_components(a) for a in seeds]  # None: unconstrained
        sizes = [len(a) for a in seeds]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.cells = torch.stack([torch.as_tensor(a.cell.array, dtype=dtype) for a in seeds])
        self.periodic = torch.as_tensor([float(a.pbc.any()) for a in seeds], dtype=dtype)
        self.structure_index = torch.repeat_interleave(torch.arange(len(seeds)), torch.as_tensor(sizes))
        self._graph: AtomicGraph | None = None
        self._built_at: torch.Tensor | None = None

    def rows(self, k: int) -> slice:
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def atoms_at(self, k: int, positions: torch.Tensor, cell: torch.Tensor | None = None) -> Atoms:
        atoms = self.seeds[k].copy()
        atoms.calc = None
        if cell is not None and atoms.pbc.any():
            atoms.set_cell(cell.detach().cpu().numpy().astype(np.float64), scale_atoms=False)
        atoms.positions = positions.detach().cpu().numpy().astype(np.float64)
        return atoms

    def deformed(self, delta: torch.Tensor, strain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions (N, 3) and cells (B, 3, 3): (origin + delta)(I + eps), cell (I + eps), eps symmetrised."""
        eps = 0.5 * (strain + strain.transpose(1, 2))
        deformation = torch.eye(3, dtype=delta.dtype) + eps
        positions = self.origin + delta
        if bool(strain.requires_grad) or bool(strain.any()):
            positions = torch.einsum("ni,nij->nj", positions, deformation.index_select(0, self.structure_index))
        return positions, self.cells @ deformation

    def constrain_strain(self, strain: torch.Tensor, limit: float) -> None:
        """In place: symmetrise, zero it for non-periodic seeds, clamp each component to +-limit."""
        with torch.no_grad():
            strain.copy_(0.5 * (strain + strain.transpose(1, 2)))
            strain.mul_(self.periodic[:, None, None]).clamp_(-limit, limit)

    def graph(self, positions: torch.Tensor, skin: float, cells: torch.Tensor | None = None,
              force: bool = False) -> AtomicGraph:
        """The batch graph, rebuilt at ``positions`` once any atom moved more than skin/2 since the last
        build, and at every call that gives deformed ``cells``."""
        moved = None if self._built_at is None else (positions - self._built_at).norm(dim=1).max()
        if force or cells is not None or moved is None or moved > 0.5 * skin:
            cells = self.cells if cells is None else cells
            graphs = [AtomicGraph.from_arrays(positions[self.rows(k)], a.numbers, cells[k], a.pbc,
                                              self.neighbors, dtype=self.dtype)
                      for k, a in enumerate(self.seeds)]
            self._graph, self._built_at = collate(graphs), positions.detach().clone()
        return self._graph

    def initial_noise(self, sigma: float, seed: int) -> torch.Tensor:
        """Gaussian delta (N, 3) Å; seed k draws from its own generator (seed + k), so batching changes nothing."""
        parts = []
        for k, atoms in enumerate(self.seeds):
            generator = torch.Generator().manual_seed(seed + k)
            parts.append(torch.randn(len(atoms), 3, generator=generator, dtype=torch.float64) * sigma)
        return torch.cat(parts).to(self.dtype)

    def constrain(self, delta: torch.Tensor, project: bool, clamp: float) -> None:
        """In place: remove rigid motions of each free seed (when ``project``) or zero the fixed
        components of a constrained one, then clamp to +-clamp Å."""
        with torch.no_grad():
            for k, atoms in enumerate(self.seeds):
                rows = self.rows(k)
                if self.free[k] is not None:
                    delta[rows] *= torch.as_tensor(self.free[k], dtype=delta.dtype)
                elif project:
                    basis = rigid_basis(self.origin[rows], periodic=bool(atoms.pbc.any()))
                    flat = delta[rows].reshape(-1)
                    delta[rows] = (flat - basis @ (basis.T @ flat)).reshape(-1, 3)
            delta.clamp_(-clamp, clamp)


def _free_components(atoms: Atoms) -> np.ndarray | None:
    """(N, 3) 1/0 mask of the components ASE's FixAtoms / FixCartesian leave free; None without constraints."""
    if not atoms.constraints:
        return None
    free = np.ones((len(atoms), 3))
    for constraint in atoms.constraints:
        if isinstance(constraint, FixCartesian):
            free[constraint.index] *= ~np.asarray(constraint.mask, dtype=bool)
        elif isinstance(constraint, FixAtoms):
            free[constraint.index] = 0.0
        else:
            raise ValueError(f"the attack cannot honour the constraint {type(constraint).__name__}")
    return free
