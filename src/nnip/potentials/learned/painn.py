"""PaiNN: polarizable atom interaction network, with scalar and vector atom features.

Each atom carries scalars s_i (F,) and vectors v_i (3, F), v_i^0 = 0, s_i^0 = embedding(Z_i).
With unit vectors u_ij = r_ij / r_ij and (ds, dv^a, dv^b) = split(phi(s_j) * W(r_ij)),
W(r) = Dense(Bessel(r)) f_c(r):

    message:  s_i += sum_j ds_ij
              v_i += sum_j dv^a_ij v_j + dv^b_ij u_ij
    update:   (a_vv, a_sv, a_ss) = split(MLP([s_i, ||V v_i||]))
              v_i += a_vv U v_i
              s_i += a_sv <U v_i, V v_i> + a_ss
    e_i = readout(s_i) - readout(s_lone(Z_i))

U and V mix channels only (no bias), so v_i stays a vector: rotating (or reflecting) the
structure by R maps v_i to R v_i and leaves s_i unchanged. The message sums run under the
potential's memory setting (nnip.nn.execution). s_lone(Z) are the scalars of an atom without
neighbours (nnip.nn.lone), so a lone atom contributes zero (its energy is E0), as in
:mod:`nnip.potentials.learned.schnet`. e_i is dimensionless (the Potential scales it).

Reference: K. T. Schutt, O. T. Unke, M. Gastegger, ICML 2021, PMLR 139, 9377.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from nnip.nn.execution import EdgeWork
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import mlp
from nnip.nn.radial import BesselBasis, cosine_cutoff
from nnip.potentials.contract.base import Edges, Term
from nnip.potentials.learned.hyperparameters import check_network_config
from nnip.strict import CUTOFF

__all__ = ["PaiNN", "PaiNNConfig"]

#: Added under the square root of ||V v||, so its gradient stays finite where V v = 0.
NORM_EPSILON = 1e-8


@dataclass
class PaiNNConfig:
    """PaiNN hyperparameters.

    Args:
        cutoff: Å. features: F, width of scalar and vector features. interactions: message
        and update blocks. basis: radial Bessel functions. activation: "silu" (paper), "ssp"
        or "tanh". shared_filters: one radial filter network for all blocks (fewer weights).
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    features: int = 64
    interactions: int = 3
    basis: int = 20
    activation: str = "silu"
    shared_filters: bool = False

    def __post_init__(self) -> None:
        check_network_config(self, ("features", "interactions", "basis"))


class Message(nn.Module):
    """Equivariant message block: returns updates of s (N, F) and v (N, 3, F)."""

    def __init__(self, features: int, activation: str):
        super().__init__()
        self.context = mlp([features, features, 3 * features], activation)

    def forward(self, s: torch.Tensor, v: torch.Tensor, work: EdgeWork, filters: Callable[..., torch.Tensor],
                filter_parameters: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Sums over the edges of ``work`` of ds_ij and dv_ij; ``filters`` maps the basis (E, K) and envelope (E, 1)
        to this block's filters W(r) f_c(r) (E, 3F), with ``filter_parameters``."""

        def message(gathered: Sequence[torch.Tensor], geometry: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
            basis, envelope, unit = geometry
            return self.per_edge(*gathered, filters(basis, envelope), unit)

        return work.sums(message, [self.context(s), v], filter_parameters)

    @staticmethod
    def per_edge(context_j: torch.Tensor, v_j: torch.Tensor, filters: torch.Tensor,
                 unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Messages ds_ij (E, F) and dv_ij (E, 3, F) from the neighbours' context(s_j) (E, 3F) and v_j (E, 3, F),
        the filters (E, 3F) and the unit vectors u_ij (E, 3)."""
        ds, dva, dvb = torch.split(context_j * filters, v_j.shape[2], dim=1)
        return ds, v_j * dva[:, None, :] + dvb[:, None, :] * unit[:, :, None]


class Update(nn.Module):
    """Gated update mixing scalars and vector norms; returns updates of s (N, F) and v (N, 3, F)."""

    def __init__(self, features: int, activation: str):
        super().__init__()
        self.mix_u = nn.Linear(features, features, bias=False)
        self.mix_v = nn.Linear(features, features, bias=False)
        self.gates = mlp([2 * features, features, 3 * features], activation)

    def forward(self, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = s.shape[1]
        uv, vv = self.mix_u(v), self.mix_v(v)
        norm = torch.sqrt((vv * vv).sum(dim=1) + NORM_EPSILON)
        a_vv, a_sv, a_ss = torch.split(self.gates(torch.cat([s, norm], dim=1)), features, dim=1)
        return a_sv * (uv * vv).sum(dim=1) + a_ss, a_vv[:, None, :] * uv


class PaiNN(Term):
    """PaiNN atomic energies (dimensionless); see the module docstring."""

    name = "painn"
    Config = PaiNNConfig
    dimensionless = True

    def __init__(self, config: PaiNNConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        features, blocks = config.features, config.interactions
        self.embedding = nn.Embedding(len(self.elements), features)
        self.basis = BesselBasis(config.basis, config.cutoff)
        self.filters = nn.Linear(config.basis, 3 * features * (1 if config.shared_filters else blocks))
        self.messages = nn.ModuleList(Message(features, config.activation) for _ in range(blocks))
        self.updates = nn.ModuleList(Update(features, config.activation) for _ in range(blocks))
        self.readout = mlp([features, features // 2 or 1, 1], config.activation)
        self.lone = LoneReference(len(self.elements))

    def representation(self, species: torch.Tensor, edges: Edges) -> tuple[torch.Tensor, torch.Tensor]:
        """Final features: scalars (N, F) and vectors (N, 3, F) that rotate with the structure.

        Atoms that no edge touches (the lone atoms of nnip.nn.lone) get no messages.
        """
        s = self.embedding(species)
        v = s.new_zeros((s.shape[0], 3, s.shape[1]))
        work = edges.work(self._geometry, self.basis.parameters(), 3 * s.shape[1] * s.element_size())  # (E, 3F)
        filter_parameters = tuple(self.filters.parameters())
        for k, (message, update) in enumerate(zip(self.messages, self.updates)):
            if k:
                s, v = edges.exchange(s), edges.exchange(v)  # ghost atoms' features from their owners (LAMMPS)
            ds, dv = message(s, v, work, functools.partial(self._filters, k), filter_parameters)
            s, v = s + ds, v + dv
            ds, dv = update(s, v)
            s, v = s + ds, v + dv
        return s, v

    def _geometry(self, vectors: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Bessel basis (E, K), cosine envelope (E, 1) and unit vectors u_ij (E, 3) of edges (E, 3), (E,) Å."""
        return self.basis(lengths), cosine_cutoff(lengths, self.cutoff)[:, None], vectors / lengths[:, None]

    def _filters(self, k: int, basis: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Block k's filters W_k(r) f_c(r) (E, 3F) from the basis (E, K) and the envelope (E, 1)."""
        width = 3 * self.config.features
        rows = slice(0, width) if self.config.shared_filters else slice(k * width, (k + 1) * width)
        return nn.functional.linear(basis, self.filters.weight[rows], self.filters.bias[rows]) * envelope

    def last_layers(self) -> list[nn.Linear]:
        """The readout's final Linear(H, 1) (Term.last_layers)."""
        return [self.readout[-1]]

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Atomic energies (N,) relative to lone atoms (nnip.nn.lone); ``edges``: a full list."""
        return self.lone(self._outputs, species, edges, self.parameters())

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Readout (R,) of atoms of species (R,); the edges index atoms among them."""
        s, _ = self.representation(species, edges)
        return self.readout(s).squeeze(-1)
