"""SchNet: continuous-filter convolutions on interatomic distances.

    x_i^0 = embedding(Z_i)
    x_i^{t+1} = x_i^t + f2out( sum_j W^t(r_ij) * in2f(x_j^t) ),
        W^t(r) = Dense(ssp(Dense(rbf(r)))) * f_c(r)
    e_i = readout(x_i^T) - readout(x_lone^T(Z_i))

with rbf a Gaussian basis, ssp the shifted softplus and f_c the cosine cutoff, so the
energy is smooth where neighbours cross the cutoff. W depends on the distance only, so it is
evaluated once per pair of a half list and its messages go both ways (nnip.nn.half_list):
half the work of the filter networks, which are most of the cost. x_lone^T(Z) are the features of an
atom of element Z without neighbours (in the same pass as the atoms when the model is
trainable, kept from one separate pass when it is frozen: nnip.nn.lone), so a lone atom
contributes zero (to rounding when frozen) and its energy is the reference E0.
e_i is dimensionless: the Potential multiplies it by ``scale`` (the force RMS of the
training data) and adds E0 and ``shift``.

References: K. T. Schutt et al., NeurIPS 30 (2017); J. Chem. Phys. 148, 241722 (2018).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nnip.nn.edge_stream import should_stream, stream_over_edges
from nnip.nn.half_list import both_directions, pair_convolution, pair_messages
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import mlp
from nnip.nn.radial import GaussianBasis, cosine_cutoff
from nnip.nn.recompute import recompute_if_large
from nnip.potentials.base import Edges, Term
from nnip.potentials.hyperparameters import check_network_config

__all__ = ["SchNet", "SchNetConfig"]


@dataclass
class SchNetConfig:
    """SchNet hyperparameters.

    Args:
        cutoff: Å. features: width of atom features and filters. interactions: blocks.
        basis: number of Gaussians on [0, cutoff]. activation: "ssp", "silu" or "tanh".
    """

    cutoff: float = 5.0
    features: int = 64
    interactions: int = 3
    basis: int = 50
    activation: str = "ssp"

    def __post_init__(self) -> None:
        check_network_config(self, ("features", "interactions", "basis"))


class Interaction(nn.Module):
    """One continuous-filter convolution block; returns the update of the atom features (N, F).

    Its edges are the P pairs of a half list: ``sources`` and ``targets`` (2P,) are their messages'
    ends (nnip.nn.half_list.both_directions), ``rbf`` (P, K) and ``envelope`` (P,) their radial inputs.
    """

    def __init__(self, features: int, basis: int, activation: str):
        super().__init__()
        self.filter = mlp([basis, features, features], activation)
        self.in2f = nn.Linear(features, features, bias=False)
        self.f2out = mlp([features, features, features], activation)

    def forward(self, x: torch.Tensor, rbf: torch.Tensor, envelope: torch.Tensor, sources: torch.Tensor,
                targets: torch.Tensor, edge_bytes: int = 0, convolution_limit: int | None = None) -> torch.Tensor:
        """``edge_bytes``: bytes of one (2P, F) tensor of messages; :meth:`convolve` is recomputed in the
        backward pass when they exceed ``convolution_limit`` (nnip.nn.recompute; None: never)."""
        weights = self.filter(rbf)
        messages = recompute_if_large(self.convolve, x, weights, envelope, sources, targets,
                                      edge_tensor_bytes=edge_bytes, limit=convolution_limit)
        return self.f2out(messages)

    def streamed(self, x: torch.Tensor, pairs: Edges,
                 radial: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The same update with the convolution streamed over chunks of the half list ``pairs``
        (nnip.nn.edge_stream): ``radial`` maps lengths (Pc,) to the basis (Pc, K) and the envelope (Pc,)."""

        def message(gathered: list[torch.Tensor], edge_parts: list[torch.Tensor]) -> tuple[torch.Tensor]:
            rbf, envelope = radial(edge_parts[0])
            return (pair_messages(gathered[0], self.filter(rbf) * envelope[:, None]),)

        h = self.in2f(x)
        widest = max(2 * h.shape[1], self.filter[0].in_features)  # messages 2F or Gaussians K per pair
        (messages,) = stream_over_edges(message, [h], [pairs.lengths], pairs.center, pairs.neighbor,
                                        (*self.filter.parameters(),), bytes_per_edge=widest * h.element_size(),
                                        pairs=True)
        return self.f2out(messages)

    def convolve(self, x: torch.Tensor, weights: torch.Tensor, envelope: torch.Tensor, sources: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
        """sum_j W(r_ij) f_c(r_ij) in2f(x_j). Shapes: (N, F), (P, F), (P,), (2P,), (2P,) -> (N, F)."""
        return pair_convolution(self.in2f(x), weights * envelope[:, None], sources, targets)


class SchNet(Term):
    """SchNet atomic energies (dimensionless); see the module docstring."""

    name = "schnet"
    Config = SchNetConfig
    dimensionless = True
    half_list = True

    def __init__(self, config: SchNetConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        self.embedding = nn.Embedding(len(self.elements), config.features)
        self.basis = GaussianBasis(config.basis, config.cutoff)
        self.interactions = nn.ModuleList(
            Interaction(config.features, config.basis, config.activation) for _ in range(config.interactions)
        )
        self.readout = mlp([config.features, config.features // 2 or 1, 1], config.activation)
        self.lone = LoneReference(len(self.elements))

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        return self.lone(self._outputs, species, edges, self.parameters())  # relative to lone atoms: nnip.nn.lone

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Readout (R,) of atoms of species (R,); the edges index atoms among them."""
        x = self.embedding(species)
        pairs = edges.half()  # one filter per pair (nnip.nn.half_list); a no-op on a half list
        edge_bytes = 2 * pairs.lengths.shape[0] * x.shape[1] * x.element_size()  # one (2P, F) tensor of messages
        if should_stream(self.stream_above_bytes, self.recompute_above_bytes, edge_bytes, x.device):

            def update(interaction: Interaction, x: torch.Tensor) -> torch.Tensor:
                return interaction.streamed(x, pairs, self._radial)
        else:
            rbf, envelope = self._radial(pairs.lengths)
            sources, targets = both_directions(pairs.center, pairs.neighbor)
            # Not streaming: above recompute_above_bytes per (2P, F) tensor the backward pass recomputes each
            # block's convolution (no product of the filter network; about 1.1x the time), and above 1.5
            # times that the whole block, filter network included (about 1.5x), which keeps only its inputs.
            convolution_limit = self.recompute_above_bytes
            whole_limit = None if convolution_limit is None else convolution_limit * 3 // 2

            def update(interaction: Interaction, x: torch.Tensor) -> torch.Tensor:
                return recompute_if_large(interaction, x, rbf, envelope, sources, targets, edge_bytes,
                                          convolution_limit, edge_tensor_bytes=edge_bytes, limit=whole_limit)
        for interaction in self.interactions:
            x = x + update(interaction, x)
        return self.readout(x).squeeze(-1)

    def _radial(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian basis (P, K) and cosine envelope (P,) of lengths (P,) Å."""
        return self.basis(lengths), cosine_cutoff(lengths, self.cutoff)
