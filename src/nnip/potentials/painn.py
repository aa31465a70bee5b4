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
structure by R maps v_i to R v_i and leaves s_i unchanged. s_lone(Z) are the scalars of an
atom without neighbours (in the same pass, or kept when frozen: nnip.nn.lone), so a lone atom
contributes zero (its energy is E0), as in :mod:`nnip.potentials.schnet`. e_i is
dimensionless (the Potential scales it).

Reference: K. T. Schutt, O. T. Unke, M. Gastegger, ICML 2021, PMLR 139, 9377.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nnip.nn.edge_stream import should_stream, stream_over_edges
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import mlp
from nnip.nn.radial import BesselBasis, cosine_cutoff
from nnip.nn.recompute import recompute_if_large
from nnip.nn.scatter import scatter_sum
from nnip.potentials.base import Edges, Term
from nnip.potentials.hyperparameters import check_network_config

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

    cutoff: float = 5.0
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

    def forward(self, s: torch.Tensor, v: torch.Tensor, filters: torch.Tensor, unit: torch.Tensor,
                edges: Edges) -> tuple[torch.Tensor, torch.Tensor]:
        ds, dv = self.per_edge(self.context(s).index_select(0, edges.neighbor), v.index_select(0, edges.neighbor),
                               filters, unit)
        return scatter_sum(ds, edges.center, s.shape[0]), scatter_sum(dv, edges.center, s.shape[0])

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
        unit = edges.vectors / edges.lengths[:, None]
        edge_bytes = edges.lengths.shape[0] * 3 * s.shape[1] * s.element_size()  # one (E, 3F) tensor
        if should_stream(self.stream_above_bytes, self.recompute_above_bytes, edge_bytes, s.device):

            def message(k: int, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return self._streamed_message(k, s, v, unit, edges)
        else:
            basis = self.basis(edges.lengths)
            envelope = cosine_cutoff(edges.lengths, self.cutoff)[:, None]

            def message(k: int, s: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                return recompute_if_large(self._message, k, s, v, basis, envelope, unit, edges,
                                          edge_tensor_bytes=edge_bytes, limit=self.recompute_above_bytes)
        for k, update in enumerate(self.updates):
            ds, dv = message(k, s, v)
            s, v = s + ds, v + dv
            ds, dv = update(s, v)
            s, v = s + ds, v + dv
        return s, v

    def _message(self, k: int, s: torch.Tensor, v: torch.Tensor, basis: torch.Tensor, envelope: torch.Tensor,
                 unit: torch.Tensor, edges: Edges) -> tuple[torch.Tensor, torch.Tensor]:
        """Block k's message with its filters W_k(r) f_c(r) (E, 3F), formed here so that a recomputed
        block (nnip.nn.recompute) does not keep them either."""
        return self.messages[k](s, v, self._filters(k, basis, envelope), unit, edges)

    def _filters(self, k: int, basis: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Block k's filters W_k(r) f_c(r) (E, 3F) from the basis (E, K) and the envelope (E, 1)."""
        width = 3 * self.config.features
        rows = slice(0, width) if self.config.shared_filters else slice(k * width, (k + 1) * width)
        return nn.functional.linear(basis, self.filters.weight[rows], self.filters.bias[rows]) * envelope

    def _streamed_message(self, k: int, s: torch.Tensor, v: torch.Tensor, unit: torch.Tensor,
                          edges: Edges) -> tuple[torch.Tensor, torch.Tensor]:
        """Block k's message streamed over chunks of edges (nnip.nn.edge_stream), filters formed per chunk."""

        def message(gathered: list[torch.Tensor], edge_parts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            lengths, unit_part = edge_parts
            envelope = cosine_cutoff(lengths, self.cutoff)[:, None]
            return Message.per_edge(*gathered, self._filters(k, self.basis(lengths), envelope), unit_part)

        context = self.messages[k].context(s)
        return stream_over_edges(message, [context, v], [edges.lengths, unit], edges.center, edges.neighbor,
                                 (*self.filters.parameters(), *self.basis.parameters()),
                                 bytes_per_edge=3 * v.shape[2] * v.element_size())  # dv_ij, filters: 3F per edge

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        return self.lone(self._outputs, species, edges, self.parameters())  # relative to lone atoms: nnip.nn.lone

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Readout (R,) of atoms of species (R,); the edges index atoms among them."""
        s, _ = self.representation(species, edges)
        return self.readout(s).squeeze(-1)
