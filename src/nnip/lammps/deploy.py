"""A potential or ensemble as an AOTInductor package for LAMMPS's ``pair_style nnip``.

The package (``.pt2``, written by :func:`deploy`) runs in C++ without Python. It maps the atoms one
MPI rank holds, its own first and then its ghosts, to every member's energy, forces and virial::

    positions (N, 3) float64 Å, atomic_numbers (N,) int64,
    edge_index (2, E) int64: directed edges i -> j within the cutoff, i one of the rank's own atoms,
    shifts (E, 3) float64 Å: r_ij = r_j - r_i + shift (zeros in LAMMPS, where images are ghost atoms),
    half (H,) int64: the edges that form a half list (each pair once over all ranks: of a pair of an own
        atom and another rank's, the rank holding the smaller tag keeps it),
    n_local () int64: the first n_local atoms are the rank's own
    ->  energy (M,) eV of the first n_local atoms, atomic_energies (M, N) eV,
        forces (M, N, 3) eV/Å = -dE/dr, virial (M, 3, 3) eV = -sum over edges r_ij (x) dE/dr_ij

with M the number of members (1 for one potential), all float64 whatever the model's arithmetic.
Forces on ghosts belong to their owners (LAMMPS adds them there). Message-passing layers refresh
the ghosts' features from their owners between layers (:mod:`nnip.nn.halo`), so ghosts within one
cutoff suffice for any number of layers. Only local terms deploy; a global term (Ewald sums, a model
of absolute coordinates) is refused with one line.

The metadata travel inside the package (``aot_inductor.metadata``): format, format_version, nnip
version, elements, cutoff (Å), members, variance_scale, halo_width (largest number of values per atom
that one exchange sends), dtype, device.
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.errors import ConfigError
from nnip.nn.execution import KEEP
from nnip.potentials.contract.base import GlobalTerm, Potential
from nnip.potentials.contract.edges import Edges
from nnip.potentials.contract.ensemble import Ensemble
from nnip.version import __version__

__all__ = ["FORMAT_VERSION", "TOLERANCE", "DeployedEnergies", "members_of", "deploy", "check", "packaged_metadata",
           "example_inputs"]

#: the package layout this nnip writes and its pair style reads; raised when the inputs or outputs change
FORMAT_VERSION = 2

#: AOTInductor settings. freezing: the weights become constants, so linear layers run prepacked oneDNN kernels;
#: cpp.threads 1: serial kernels (LAMMPS runs in parallel over MPI ranks; docs/benchmarks.md has the timings)
COMPILE = {"freezing": True, "cpp.threads": 1}

#: largest accepted difference between a package and its model, relative to the largest value, per dtype
TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


def members_of(model: Potential | Ensemble) -> list[Potential]:
    """The potentials of ``model`` (one for a Potential); ConfigError naming a global term, which cannot deploy."""
    members = list(model.members) if isinstance(model, Ensemble) else [model]
    for k, member in enumerate(members):
        for term in member.terms:
            if isinstance(term, GlobalTerm):
                where = f"member {k}: " if isinstance(model, Ensemble) else ""
                raise ConfigError(f"{where}term {term.name!r} is global (it needs the whole system's positions and "
                                  "cell), so it cannot run on LAMMPS's domains; only local terms deploy")
    return members


class DeployedEnergies(nn.Module):
    """Every member's energy of the local atoms, forces and virial, for one rank (inputs in the module docstring)."""

    def __init__(self, members: Sequence[Potential]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.cutoff = max(member.cutoff for member in members)  # of the edges given

    def forward(self, positions: torch.Tensor, atomic_numbers: torch.Tensor, edge_index: torch.Tensor,
                shifts: torch.Tensor, half: torch.Tensor, n_local: torch.Tensor):
        local = torch.arange(positions.shape[0], device=positions.device) < n_local
        results = [self._member(member, positions, atomic_numbers, edge_index, shifts, half, local)
                   for member in self.members]
        return tuple(torch.stack(values) for values in zip(*results))

    def _member(self, member: Potential, positions, atomic_numbers, edge_index, shifts, half, local):
        positions = positions.detach().requires_grad_(True)
        shifts = shifts.detach().requires_grad_(True)
        center, neighbor = edge_index[0], edge_index[1]
        vectors = positions.index_select(0, neighbor) - positions.index_select(0, center) + shifts
        model_vectors = vectors.to(member.dtype)  # differences in float64, the arithmetic in the model's dtype
        lengths = torch.linalg.vector_norm(model_vectors, dim=1)
        no_shifts = edge_index.new_zeros((edge_index.shape[1], 3))  # images enter through the vectors only
        edges = Edges(center, neighbor, no_shifts, model_vectors, lengths, False, KEEP, halo=True)
        pairs = Edges(center.index_select(0, half), neighbor.index_select(0, half), no_shifts.index_select(0, half),
                      model_vectors.index_select(0, half), lengths.index_select(0, half), True, KEEP, halo=True)
        if member.cutoff < self.cutoff:  # a member with a shorter cutoff than the ensemble's
            edges, pairs = edges.within(member.cutoff), pairs.within(member.cutoff)
        atomic = member.atomic_energies(member.species(atomic_numbers), edges, half=pairs)
        energy = torch.where(local, atomic, torch.zeros_like(atomic)).sum()
        d_positions, d_vectors = torch.autograd.grad(energy, [positions, shifts])
        virial = -torch.einsum("ea,eb->ab", vectors.detach(), d_vectors)
        return energy, atomic.detach(), -d_positions, virial


def example_inputs(cutoff: float, element: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs of a small cluster (5 atoms, all pairs within ``cutoff``) to trace the deployed module on."""
    generator = torch.Generator().manual_seed(0)
    positions = torch.rand(5, 3, generator=generator, dtype=torch.float64) * (0.5 * cutoff / 3 ** 0.5)
    pairs = [(i, j) for i in range(5) for j in range(5) if i != j]
    edge_index = torch.tensor(pairs, dtype=torch.int64).T.contiguous()
    half = torch.tensor([k for k, (i, j) in enumerate(pairs) if i < j], dtype=torch.int64)
    return (positions, torch.full((5,), element, dtype=torch.int64), edge_index,
            torch.zeros(len(pairs), 3, dtype=torch.float64), half, torch.tensor(3, dtype=torch.int64))


def metadata_of(model: Potential | Ensemble, device: str, halo_width: int) -> dict[str, str]:
    """What the pair style reads before running the package (all values strings)."""
    members = members_of(model)
    scale = float(model.variance_scale) if isinstance(model, Ensemble) else 1.0
    return {"format": "nnip-lammps", "format_version": str(FORMAT_VERSION), "nnip_version": __version__,
            "elements": " ".join(str(int(z)) for z in members[0].elements),
            "cutoff": repr(max(m.cutoff for m in members)), "members": str(len(members)),
            "variance_scale": repr(scale), "halo_width": str(halo_width),
            "dtype": str(members[0].dtype).removeprefix("torch."), "device": device}


def _program(module: DeployedEnergies, inputs: tuple[torch.Tensor, ...]) -> torch.export.ExportedProgram:
    """The module with its autograd traced into one graph (make_fx), exported with dynamic atoms and edges."""
    from torch.fx.experimental.proxy_tensor import make_fx

    with torch.enable_grad():
        traced = make_fx(module, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*inputs)
    atoms, edges, pairs = (torch.export.Dim(name, min=2) for name in ("atoms", "edges", "pairs"))
    shapes = ({0: atoms}, {0: atoms}, {1: edges}, {0: edges}, {0: pairs}, None)
    return torch.export.export(traced, inputs, dynamic_shapes=shapes, strict=False)


def _halo_width(program: torch.export.ExportedProgram) -> int:
    """Most values per atom that one exchange of ghost features (nnip.nn.halo) sends; 0 without exchanges."""
    widths = [math.prod(node.meta["val"].shape[1:]) for node in program.graph.nodes
              if node.op == "call_function" and node.target in (torch.ops.nnip.exchange.default,
                                                                torch.ops.nnip.exchange_reverse.default)]
    return int(max(widths, default=0))


def _check_cluster(elements: Sequence[int], cutoff: float, count: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Positions (count, 3) Å of a jittered grid 0.4 cutoff apart, and atomic numbers cycling through ``elements``."""
    rng = np.random.default_rng(1)
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)[:count]
    return (grid + 0.15 * rng.random((count, 3))) * (0.4 * cutoff), np.resize(np.asarray(elements), count)


def check(model: Potential | Ensemble, path: str | os.PathLike, device: str = "cpu") -> float:
    """Largest difference, relative to the largest value, between the package at ``path`` and ``model`` itself
    (nnip's own derivatives): energy, forces and virial of a cluster of all its elements, on one full
    neighbour list that serves both."""
    members = members_of(model)
    cutoff = max(m.cutoff for m in members)
    positions, numbers = _check_cluster(members[0].elements.tolist(), cutoff)
    graph = AtomicGraph.from_arrays(positions, numbers, np.zeros((3, 3)), np.zeros(3, dtype=bool),
                                    NeighborRequest(cutoff), dtype=model.dtype).to(device)
    center, neighbor = graph.edge_index
    inputs = (torch.as_tensor(positions, dtype=torch.float64, device=device), graph.atomic_numbers, graph.edge_index,
              torch.zeros(center.shape[0], 3, dtype=torch.float64, device=device),
              torch.nonzero(center < neighbor).squeeze(1), torch.tensor(len(numbers), device=device))
    compiled = torch._inductor.aoti_load_package(str(path))  # reads its inputs as contiguous, as traced
    energy, _, forces, virial = (t.mean(dim=0) for t in compiled(*(t.contiguous() for t in inputs)))
    with torch.enable_grad():
        expected = model(graph, compute_stress=True)
    worst = 0.0
    for ours, theirs in ((energy, expected[keys.ENERGY][0]), (forces, expected[keys.FORCES]),
                         (virial, expected[keys.VIRIAL][0])):
        theirs = theirs.detach().double()
        worst = max(worst, float((ours.double() - theirs).abs().max() / theirs.abs().max().clamp(min=1e-300)))
    return worst


def packaged_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata that the package at ``path`` carries, as its pair style reads them (with the keys that Inductor
    adds); empty when it holds none."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("wrapper_metadata.json")]
        return json.loads(archive.read(names[0]) or b"{}") if len(names) == 1 else {}


def deploy(model: Potential | Ensemble, path: str | os.PathLike, device: str = "cpu") -> tuple[dict[str, str], float]:
    """Compile a copy of ``model`` (in its dtype, parameters frozen) for ``device`` into the package ``path``,
    check it against the model (:func:`check`) and only then put it in place. Returns the metadata and the
    largest relative difference found. Takes seconds to minutes (a C++ compiler runs); ConfigError for a
    global term or a package that differs by more than TOLERANCE."""
    members_of(model)
    traced = copy.deepcopy(model).to(device).eval().requires_grad_(False)  # tracing leaves symbols in caches
    members = members_of(traced)
    for member in members:
        member.memory = KEEP  # a traced program keeps its activations: no strategy that depends on the edges
    inputs = example_inputs(max(m.cutoff for m in members), element=int(members[0].elements[0]))
    program = _program(DeployedEnergies(members), tuple(t.to(device) for t in inputs))
    metadata = metadata_of(model, device, _halo_width(program))
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as work:
        temporary = Path(work) / path.name  # the package's folders are named after its file
        # a cache of its own: Inductor rewrites a shared cache's files outside its lock, so two processes compiling
        # the same model at once can package each other's half-written metadata
        with temporary_cache_dir(str(Path(work) / "inductor")):
            torch._inductor.aoti_compile_and_package(program, package_path=str(temporary),
                                                     inductor_configs={"aot_inductor.metadata": metadata, **COMPILE})
        stored = packaged_metadata(temporary)
        if any(stored.get(key) != value for key, value in metadata.items()):
            raise ConfigError(f"the compiled package does not hold the metadata it was given; {path} not written")
        worst = check(copy.deepcopy(model).to(device).eval(), temporary, device)
        if not worst <= TOLERANCE[metadata["dtype"]]:
            raise ConfigError(f"the compiled package differs from the model by {worst:.1e} (relative to the largest "
                              f"value); {path} not written")
        os.replace(temporary, path)
    return metadata, worst
