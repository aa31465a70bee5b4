"""The term contract and Potential: terms -> per-atom energies -> E0 + scale/shift -> energy.

Every potential in nnip is a :class:`Potential` built from one or more :class:`Term` s.
A local term maps species and edges (vectors within its cutoff) to per-atom energies;
it never sees absolute positions or the cell, so translation invariance and locality
hold by construction. Potential owns everything else, in this order: prepare positions
and strain for differentiation, build edge vectors, run the terms, add the per-element
reference energies E0 and the scale/shift (float64), sum per structure, and take
forces, stress and virial by one autograd call (``contract/derivatives.py``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch
from ase.data import atomic_numbers as _symbol_to_z
from ase.data import chemical_symbols
from torch import nn

from nnip import keys
from nnip.data.graph import AtomicGraph
from nnip.data.neighbors import NeighborRequest
from nnip.errors import DataError
from nnip.nn.execution import KEEP, Memory
from nnip.nn.scatter import scatter_sum
from nnip.potentials.contract.derivatives import energy_derivatives, prepare_inputs
from nnip.potentials.contract.edges import Edges, build_edges, exporting

__all__ = ["Edges", "Term", "GlobalTerm", "System", "Potential", "to_atomic_numbers"]

#: Buffers kept in float64 whatever the model dtype: per-element E0, scale, shift.
REFERENCE_BUFFERS = ("e0", "scale", "shift")


def to_atomic_numbers(elements: Sequence[int | str]) -> list[int]:
    """Element symbols or numbers -> sorted atomic numbers; ValueError for an unknown symbol or number, or an
    element given twice."""
    numbers: set[int] = set()
    for element in elements:
        size = len(numbers)
        if isinstance(element, str):
            if element not in _symbol_to_z or element == "X":
                raise ValueError(f"unknown element {element!r}")
            numbers.add(_symbol_to_z[element])
        else:
            if not 1 <= int(element) < len(chemical_symbols):
                raise ValueError(f"unknown atomic number {element}")
            numbers.add(int(element))
        if len(numbers) == size:
            raise ValueError(f"element {element!r} given twice")
    return sorted(numbers)


def _species_table(numbers: Sequence[int]) -> torch.Tensor:
    """Atomic number -> species index 0..S-1 of the sorted ``numbers``, -1 elsewhere. Shape (119,) int64."""
    table = torch.full((len(chemical_symbols),), -1, dtype=torch.int64)
    table[torch.tensor(numbers)] = torch.arange(len(numbers))
    return table


class Term(nn.Module, abc.ABC):
    """One energy term under the local contract: ``forward(species, edges) -> (N,)``.

    Subclasses set ``name`` (the registry key), ``Config`` (a dataclass of their
    hyperparameters), ``dimensionless`` (True when the output is in units of the
    potential's scale, as for neural networks; False for terms in eV), and ``cutoff`` (Å).
    They are built as ``Class(config, elements)``, where ``elements`` are the potential's
    sorted atomic numbers and species index s refers to ``elements[s]``.
    """

    name: ClassVar[str]
    dimensionless: ClassVar[bool] = False
    #: True for terms that take each unordered pair once (a half list, see Edges.half) and account for
    #: both directions themselves: sums of symmetric pair functions, the pair filters of SchNet and the
    #: equivariant model. The Potential hands them half lists (its neighbour request is a half list when
    #: all its terms take one); the others get full lists.
    half_list: ClassVar[bool] = False

    def __init__(self, config: Any, elements: Sequence[int]):
        super().__init__()
        self.config = config
        self.elements = to_atomic_numbers(elements)
        self.cutoff = float(config.cutoff)

    def spec(self) -> dict[str, Any]:
        """Name and hyperparameters, enough to rebuild the term (weights live in state_dict)."""
        return {"name": self.name, "config": asdict(self.config)}

    @abc.abstractmethod
    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Per-atom energies. Shapes: species (N,) int64, edges within ``cutoff`` -> (N,)."""

    def last_layers(self) -> list[nn.Linear]:
        """The final layers (Linear(H, 1)) of the term's readouts, in whose weights its energy is linear: what
        last-layer uncertainty (nnip.uncertainty.last_layer) treats as Bayesian; default: none."""
        return []

    def fit_to_data(self, batches: Sequence[tuple[torch.Tensor, Edges]]) -> None:
        """Set constants that depend on the training data (e.g. feature standardisation); default: none.

        ``batches`` are (species, edges within ``cutoff``) of the training structures.
        """


@dataclass
class System:
    """What a global term sees besides species and edges: the (strained) coordinates and the batch layout.

    Shapes: positions (N, 3) Å, cell (B, 3, 3) Å, pbc (B, 3), structure_index (N,),
    n_atoms (B,), total_charge (B,) e. ``outputs`` collects extra per-atom or
    per-structure results of terms (e.g. charges, dipole), returned by the Potential.
    """

    positions: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor
    structure_index: torch.Tensor
    n_atoms: torch.Tensor
    total_charge: torch.Tensor
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class GlobalTerm(Term):
    """A term that also needs absolute positions and the cell: ``forward(species, edges, system) -> (N,)``.

    Used for long-range electrostatics (Ewald sums need the cell) and models of fixed-size
    systems. Such terms are not local: they give up the locality guarantee of :class:`Term`.
    """

    @abc.abstractmethod
    def forward(self, species: torch.Tensor, edges: Edges, system: System) -> torch.Tensor:  # type: ignore[override]
        """Per-atom energies (N,)."""


class Potential(nn.Module):
    """Sum of terms plus per-element reference energies, with forces and stress by autograd.

    E = sum_i [ E0[Z_i] + shift + scale * sum_{dimensionless terms} e_i + sum_{eV terms} e_i ]

    Args:
        terms: the energy terms (at least one).
        elements: chemical symbols or atomic numbers the potential knows.
        e0: reference energy per element (symbol or Z -> eV); missing elements get 0.
        scale: multiplies dimensionless terms, eV. shift: added per atom, eV.
    """

    def __init__(
        self,
        terms: Sequence[Term],
        elements: Sequence[int | str],
        e0: Mapping[int | str, float] | None = None,
        scale: float = 1.0,
        shift: float = 0.0,
    ):
        super().__init__()
        if len(terms) == 0:
            raise ValueError("a Potential needs at least one term")
        numbers = to_atomic_numbers(elements)
        if not numbers:
            raise ValueError("a Potential needs at least one element")
        self.terms = nn.ModuleList(terms)
        for term in terms:
            if term.elements != numbers:
                raise ValueError(f"term {term.name!r} was built for elements {term.elements}, potential has {numbers}")
        self.register_buffer("elements", torch.tensor(numbers, dtype=torch.int64))
        self.register_buffer("species_of", _species_table(numbers))
        reference = torch.zeros(len(numbers), dtype=torch.float64)
        for element, value in (e0 or {}).items():
            z = to_atomic_numbers([element])[0]
            if z in numbers:
                reference[numbers.index(z)] = float(value)
        self.register_buffer("e0", reference)
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64))
        self.register_buffer("shift", torch.tensor(float(shift), dtype=torch.float64))
        self.memory = Memory()

    def check_consistent(self) -> None:
        """ValueError unless the element tables (buffers, loaded with the weights) agree with the terms' elements."""
        numbers = self.terms[0].elements
        if self.elements.tolist() != numbers:
            raise ValueError(f"its elements buffer {self.elements.tolist()} differs from the terms' {numbers}")
        if not torch.equal(self.species_of.cpu(), _species_table(numbers)):
            raise ValueError("its species_of table does not map the elements to 0..S-1")

    def _apply(self, fn, recurse=True):
        # .to(dtype)/.float() convert the model arithmetic; reference sums stay float64.
        reference = {name: self._buffers[name] for name in REFERENCE_BUFFERS}
        super()._apply(fn, recurse)
        for name, tensor in reference.items():
            self._buffers[name] = tensor.to(device=self._buffers[name].device)
        return self

    @property
    def cutoff(self) -> float:
        """Largest term cutoff, Å: neighbour lists must cover it."""
        return max(term.cutoff for term in self.terms)

    def neighbor_request(self, skin: float = 0.0) -> NeighborRequest:
        """The neighbour list this potential needs: its largest cutoff, a half list when every term takes one
        (Term.half_list), and ``skin`` Å for a Verlet list. Build graphs with it (``AtomicGraph.from_atoms``)."""
        return NeighborRequest(self.cutoff, not all(term.half_list for term in self.terms), skin)

    @property
    def memory(self) -> Memory:
        """How message-passing terms run their per-edge work (nnip.nn.execution.Memory; default "auto").
        A run-time setting, not saved; set it from a Memory, a mode name or a dict of its fields."""
        return self._memory

    @memory.setter
    def memory(self, value: Memory | str | dict | None) -> None:
        memory = Memory.of(value)
        if memory.mode != "keep" and self._has_compiled_terms():
            raise ValueError("compiled terms keep their activations: set memory before compile_terms()")
        self._memory = memory

    @property
    def element_symbols(self) -> list[str]:
        return [chemical_symbols[int(z)] for z in self.elements]

    @property
    def dtype(self) -> torch.dtype:
        """Floating-point dtype of the model arithmetic (classical terms start in float64, networks in float32)."""
        for tensor in self.parameters():
            return tensor.dtype
        for name, tensor in self.named_buffers():
            if tensor.is_floating_point() and name not in REFERENCE_BUFFERS:
                return tensor.dtype
        return torch.get_default_dtype()

    def spec(self) -> dict[str, Any]:
        """Architecture description (plain data) from which :func:`nnip.potentials.build_potential` rebuilds it."""
        return {"elements": [int(z) for z in self.elements], "terms": [t.spec() for t in self.terms]}

    @property
    def has_dimensionless_terms(self) -> bool:
        """True when some term (a network) is scaled by ``scale``."""
        return any(term.dimensionless for term in self.terms)

    @torch.no_grad()
    def set_reference(self, e0: Mapping[int | str, float] | None = None, scale: float | None = None,
                      shift: float | None = None) -> None:
        """Set per-element reference energies (element -> eV), scale (eV) and shift (eV/atom); None keeps a value."""
        if e0 is not None:
            numbers = self.elements.tolist()
            for element, value in e0.items():
                z = to_atomic_numbers([element])[0]
                if z in numbers:
                    self.e0[numbers.index(z)] = float(value)
        if scale is not None:
            self.scale.fill_(float(scale))
        if shift is not None:
            self.shift.fill_(float(shift))

    @torch.no_grad()
    def fit_terms_to_data(self, graphs: Sequence[AtomicGraph]) -> None:
        """Let every term set its data-dependent constants from training ``graphs`` (see Term.fit_to_data)."""
        prepared = []
        for graph in graphs:
            graph = graph.to(device=self.elements.device, dtype=self.dtype)
            edges = build_edges(graph, graph.positions, graph.cell, self._request_of(graph))
            prepared.append((self.species(graph.atomic_numbers), edges))
        for term in self.terms:
            term.fit_to_data([(s, e if term.cutoff >= self.cutoff else e.within(term.cutoff)) for s, e in prepared])

    def compile_terms(self) -> "Potential":
        """Freeze the parameters and compile the local terms with torch.compile (dynamic shapes); returns self.

        For inference only: with trainable parameters the compiled backward would also form
        every parameter's gradient (and torch 2.13's CPU code generator fails on that for the
        equivariant model of a single element), so the parameters stop requiring gradients;
        train an uncompiled copy.

        The first call compiles (seconds to minutes; torch caches the generated code on disk,
        so later processes compile faster), and so does the first with a new dtype, train/eval
        mode or a graph without edges; later calls with other numbers of atoms and edges reuse
        the code. Set the number of threads before the first call: the generated code keeps it.
        With ``create_graph`` (attacks, Hessians) the terms run eagerly, since compiled graphs
        cannot be differentiated twice. Global terms (Ewald sums, whose sizes follow the cell)
        stay eager. Compiled terms keep all their activations (``memory`` becomes "keep"), so
        large systems need more memory compiled than eager. Compilation is not copied: a
        deep copy of the potential runs eagerly until compiled again
        (``nnip.Calculator(..., compile=True)`` compiles its own copy). Energies, forces and
        stress equal the eager ones to rounding.
        """
        self.requires_grad_(False)
        self.memory = KEEP
        for term in self.terms:
            if not isinstance(term, GlobalTerm):
                term.compile(dynamic=True)
        return self

    def _has_compiled_terms(self) -> bool:
        """True when a term carries compiled code (``Module.compile``; a deep copy carries none)."""
        return any(getattr(term, "_compiled_call_impl", None) is not None for term in self.terms)

    def _request_of(self, graph: AtomicGraph) -> NeighborRequest:
        """This potential's neighbour request, after checking that the graph's edges cover it."""
        request, built = self.neighbor_request(), graph.neighbor_request
        if not built.covers(request):
            need = "a full neighbour list" if built.cutoff >= request.cutoff - 1e-12 else \
                f"edges within its cutoff {request.cutoff} Å, the graph's cutoff is {built.cutoff} Å"
            raise ValueError(f"this potential needs {need} (graph built for {built}; build graphs with "
                             "Potential.neighbor_request())")
        return request

    def species(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """Atomic numbers (N,) -> species indices (N,); an element the potential lacks raises DataError."""
        species = self.species_of[atomic_numbers.clamp(0, self.species_of.shape[0] - 1)]
        if not exporting() and bool((species < 0).any()):  # exported: checked by its caller
            unknown = sorted({int(z) for z in atomic_numbers[species < 0]})
            names = ", ".join(chemical_symbols[z] if 0 < z < len(chemical_symbols) else str(z) for z in unknown)
            raise DataError(f"element(s) {names} not known to this potential (it has {', '.join(self.element_symbols)})")
        return species

    def atomic_energies(self, species: torch.Tensor, edges: Edges, system: System | None = None,
                        half: Edges | None = None, create_graph: bool = False) -> torch.Tensor:
        """Per-atom energies (N,) eV in float64: E0 + shift plus every term (scaled when dimensionless).

        ``edges``: within the potential's cutoff; terms with a shorter cutoff take those within theirs,
        half-list terms a half list (``half``: the same pairs once each, when the caller has one;
        otherwise made from ``edges``). ``system``: for global terms only. ``create_graph``: run
        compiled terms eagerly (their graphs cannot be differentiated twice).
        """
        atomic = self.e0[species] + self.shift
        halves: dict[float, Edges] = {}  # half lists for half-list terms beside full-list ones, once per cutoff
        for term in self.terms:
            term_edges = edges if term.cutoff >= self.cutoff else edges.within(term.cutoff)
            if term.half_list and not term_edges.is_half:  # outside the term: no data-dependent size in a compiled term
                if term.cutoff not in halves:
                    given = None if half is None else half if term.cutoff >= self.cutoff else half.within(term.cutoff)
                    halves[term.cutoff] = term_edges.half() if given is None else given
                term_edges = halves[term.cutoff]
            run = term.forward if create_graph else term  # forward: eager even when compiled (compile_terms)
            if isinstance(term, GlobalTerm):
                if system is None:
                    raise ValueError(f"term {term.name!r} is global: it needs the system's positions and cell")
                energies = run(species, term_edges, system).to(torch.float64)
            else:
                energies = run(species, term_edges).to(torch.float64)
            atomic = atomic + (self.scale * energies if term.dimensionless else energies)
        return atomic

    def forward(
        self,
        graph: AtomicGraph,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Energy (B,), atomic energies (N,) in float64; forces (N, 3); stress and virial (B, 3, 3).

        Args:
            graph: structures with edges that cover ``self.neighbor_request()``.
            compute_forces: return forces = -dE/dr.
            compute_stress: return stress (ASE sign, NaN for non-periodic) and virial.
            create_graph: keep the autograd graph of the derivatives (training, attacks).
        """
        species = self.species(graph.atomic_numbers)
        inputs = prepare_inputs(graph, compute_forces, compute_stress)
        memory = KEEP if create_graph else self.memory  # second derivatives: every activation kept
        edges = build_edges(graph, inputs.positions, inputs.cell, self._request_of(graph), memory)
        system = System(inputs.positions, inputs.cell, graph.pbc, graph.structure_index, graph.n_atoms,
                        graph.total_charge)
        atomic = self.atomic_energies(species, edges, system, create_graph=create_graph)
        energy = scatter_sum(atomic, graph.structure_index, graph.n_structures)
        out = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic, **system.outputs}
        out.update(energy_derivatives(energy, inputs, graph, compute_forces, compute_stress, create_graph))
        return out
