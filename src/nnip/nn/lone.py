"""Lone-atom references: one way for every network term (Behler-Parrinello, SchNet, PaiNN, equivariant).

A network term subtracts, from each atom's output, the output of a lone atom of its element
(no neighbours), so that an isolated atom contributes exactly zero and its energy is E0.
Rather than running the network a second time on the S lone atoms, the S lone atoms are
appended to the N real ones: no edge touches them, so their rows receive no messages and
come out as the lone-atom features, in the same matrix products (fewer operations, which is
what small molecules pay for).

When no parameter of the term requires a gradient (``nnip.Calculator`` runs a frozen copy),
:class:`LoneReference` instead keeps the S lone outputs from one separate pass and reuses them
while the parameters stay the same tensors at the same version (any in-place change, such as
``load_state_dict`` or an optimiser step, bumps the version): the atoms' matrix products then
have N rows instead of N + S (ethanol in a five-element model: 9 instead of 14). Two limits:
a lone atom's output is then zero to rounding rather than exactly (a separate matrix product,
about 1e-7 relative in float32), and writes through ``parameter.data``, which bypass the
version counter, are not seen: call :meth:`LoneReference.clear` after them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["with_lone_atoms", "relative_to_lone", "LoneReference"]


def with_lone_atoms(species: torch.Tensor, n_elements: int) -> torch.Tensor:
    """Species (N,) followed by one atom of each element, 0..S-1: (N + S,).

    Edges index only the first N atoms, so scatters onto atoms must use the length N + S.
    """
    lone = torch.arange(n_elements, dtype=species.dtype, device=species.device)
    return torch.cat([species, lone])


def relative_to_lone(values: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """Per-atom values (N + S, ...) of :func:`with_lone_atoms` atoms minus their element's lone value: (N, ...)."""
    n = species.shape[0]
    # one gather from the whole tensor: torch 2.13's inductor failed on values[n:].index_select(0, species)
    # for a single element on two threads (tests/potentials/test_compile.py)
    return values[:n] - values.index_select(0, species + n)


class LoneReference:
    """Each atom's output minus its element's lone-atom output, for a network term of S elements.

    ``network(rows, edges)`` runs the term's network on atoms of species ``rows`` (R,) and returns
    their outputs (R,); it is called with the term's edges (which index the first N rows only) or,
    for the lone atoms alone, with ``edges.empty()``. ``parameters``: every tensor the outputs
    depend on (parameters, and buffers such as fitted feature statistics). Trainable parameters (or compiling): the lone
    atoms are appended to the batch. Frozen parameters: the lone outputs are computed once,
    without gradients, and kept until a parameter changes.
    """

    def __init__(self, n_elements: int):
        self.n_elements = n_elements
        self._key: tuple | None = None
        self._values: torch.Tensor | None = None

    def __call__(self, network: Callable[[torch.Tensor, Any], torch.Tensor], species: torch.Tensor, edges: Any,
                 parameters: Iterable[torch.Tensor]) -> torch.Tensor:
        """Outputs of the N atoms (N,) relative to their elements' lone atoms; ``edges``: the term's Edges."""
        key = _frozen_state(parameters)
        if key is None:
            return relative_to_lone(network(with_lone_atoms(species, self.n_elements), edges), species)
        if key != self._key or self._values is None:
            with torch.no_grad():
                lone = torch.arange(self.n_elements, dtype=species.dtype, device=species.device)
                self._values = network(lone, edges.empty())
            self._key = key
        return network(species, edges) - self._values.index_select(0, species)

    def clear(self) -> None:
        """Forget the kept lone outputs (after writing to parameters through ``.data``)."""
        self._key = self._values = None


def _frozen_state(parameters: Iterable[torch.Tensor]) -> tuple | None:
    """Identity, storage and version of every parameter; None when one requires a gradient or has no version
    counter (made under inference_mode), or while compiling."""
    if torch.compiler.is_compiling():
        return None
    state = []
    for p in parameters:
        if p.requires_grad or p.is_inference():
            return None
        state.append((id(p), p.data_ptr(), p._version, p.dtype))
    return tuple(state)
