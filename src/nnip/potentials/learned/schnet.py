"""SchNet: continuous-filter convolutions on interatomic distances.

    x_i^0 = embedding(Z_i)
    x_i^{t+1} = x_i^t + f2out( sum_j W^t(r_ij) * in2f(x_j^t) ),
        W^t(r) = Dense(ssp(Dense(rbf(r)))) * f_c(r)
    e_i = readout(x_i^T) - readout(x_lone^T(Z_i))

with rbf a Gaussian basis, ssp the shifted softplus and f_c the cosine cutoff, so the
energy is smooth where neighbours cross the cutoff. W depends on the distance only, so it is
evaluated once per pair of a half list and its messages go both ways: half the work of the
filter networks, which are most of the cost. The sums over neighbours run under the
potential's memory setting (nnip.nn.execution). x_lone^T(Z) are the features of an atom of
element Z without neighbours (nnip.nn.lone), so a lone atom contributes zero and its energy is
the reference E0. e_i is dimensionless: the Potential multiplies it by ``scale`` (the force RMS
of the training data) and adds E0 and ``shift``.

References: K. T. Schutt et al., NeurIPS 30 (2017); J. Chem. Phys. 148, 241722 (2018).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from nnip.nn.execution import EdgeWork, per_pair
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import mlp
from nnip.nn.radial import GaussianBasis, cosine_cutoff
from nnip.potentials.contract.base import Edges, Term
from nnip.potentials.learned.hyperparameters import check_network_config
from nnip.strict import CUTOFF

__all__ = ["SchNet", "SchNetConfig"]


@dataclass
class SchNetConfig:
    """SchNet hyperparameters.

    Args:
        cutoff: Å. features: width of atom features and filters. interactions: blocks.
        basis: number of Gaussians on [0, cutoff]. activation: "ssp", "silu" or "tanh".
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    features: int = 64
    interactions: int = 3
    basis: int = 50
    activation: str = "ssp"

    def __post_init__(self) -> None:
        check_network_config(self, ("features", "interactions", "basis"))


class Interaction(nn.Module):
    """One continuous-filter convolution block; returns the update of the atom features (N, F)."""

    def __init__(self, features: int, basis: int, activation: str):
        super().__init__()
        self.filter = mlp([basis, features, features], activation)
        self.in2f = nn.Linear(features, features, bias=False)
        self.f2out = mlp([features, features, features], activation)

    def forward(self, x: torch.Tensor, work: EdgeWork) -> torch.Tensor:
        """x (N, F) -> f2out(sum_j W(r_ij) f_c(r_ij) in2f(x_j)) (N, F), over the pairs of ``work``."""
        (messages,) = work.sums(self.message, [self.in2f(x)], self.filter.parameters())
        return self.f2out(messages)

    def message(self, gathered: Sequence[torch.Tensor], geometry: Sequence[torch.Tensor]) -> tuple[torch.Tensor]:
        """W_p f_c(r_p) h_source of P edges, or along both directions of P pairs. Shapes: gathered [(P or 2P, F)],
        geometry [rbf (P, K), envelope (P,)] -> [(P or 2P, F)]."""
        rbf, envelope = geometry
        return (per_pair(gathered[0], self.filter(rbf) * envelope[:, None]),)


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

    def last_layers(self) -> list[nn.Linear]:
        """The readout's final Linear(H, 1) (Term.last_layers)."""
        return [self.readout[-1]]

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Atomic energies (N,) relative to lone atoms (nnip.nn.lone); ``edges``: a half list (the Potential, or
        the term that holds SchNet as its charge model, halves them); a full list gives the same, at twice the cost."""
        return self.lone(self._outputs, species, edges, self.parameters())

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Readout (R,) of atoms of species (R,); the edges index atoms among them."""
        x = self.embedding(species)
        widest = max(2 * x.shape[1], self.basis.centers.shape[0])  # messages 2F or Gaussians K per pair (or less)
        work = edges.work(self._radial, self.basis.parameters(), widest * x.element_size())
        for k, interaction in enumerate(self.interactions):
            if k:
                x = edges.exchange(x)  # ghost atoms' features from their owners (LAMMPS's domains)
            x = x + interaction(x, work)
        return self.readout(x).squeeze(-1)

    def _radial(self, vectors: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gaussian basis (P, K) and cosine envelope (P,) of P pairs, from their lengths (P,) Å."""
        return self.basis(lengths), cosine_cutoff(lengths, self.cutoff)
