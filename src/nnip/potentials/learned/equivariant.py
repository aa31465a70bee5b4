"""An E(3)-equivariant many-body potential of the NequIP/MACE family.

Atom features h_i are irreps (``channels`` x 0e + 1o + ... up to ``hidden_l``), starting
from an element embedding (scalars only). Each layer t:

    A_i   = Linear( (1/n_avg) sum_j R(r_ij) . (Linear(h_j) (x) Y(r_ij)) )     2-body atomic basis, l <= l_max
    B_i^1 = A_i,   B_i^nu = B_i^(nu-1) (x)_Z A_i  (nu = 2..correlation)          (nu+1)-body products
    h_i  <- Linear( [B_i^1, ..., B_i^correlation] ) + Linear_Z(h_i)              residual, element-wise
    e_i  += readout_t(scalars of h_i)

Y are spherical harmonics of the edge direction, R(r) an MLP of radial Bessel functions
times a polynomial cutoff f_c(r) (one weight per coupling path and channel; the edge sum is
:class:`nnip.nn.channelwise.Convolution`), (x) the channel-wise tensor product
(:class:`nnip.nn.channelwise.Coupling`, one fused Clebsch-Gordan table per product; under
torch.compile the convolution is traced as a sum over its nonzero coefficients), and ``_Z``
marks element-dependent weights (one per element, coupling path and channel, as in MACE's
symmetric contraction). The products B^nu are MACE's higher body
order: with correlation 3 an atom's energy holds 4-body terms after one layer. They are
built as iterated channel-wise products rather than MACE's generalised symmetric
contraction, keeping natural-parity intermediates of degree <= l_max only: scalar outputs
lose nothing by this (only an intermediate of the same degree and parity as the last factor
couples to 0e), l >= 1 outputs lose the couplings through pseudo-tensors. Readouts are
linear except the last (an MLP); e_i is dimensionless (the Potential scales it) and zero
for a lone atom (its per-element value is subtracted, nnip.nn.lone), as for SchNet. R depends on
the distance only and Y(-r) = (-1)^l Y(r), so both are evaluated once per pair of a half list and
used for the messages both ways: half the work of the radial MLP and harmonics. The message
sums run under the potential's memory setting (nnip.nn.execution).

References: S. Batzner et al., Nat. Commun. 13, 2453 (2022) (NequIP); I. Batatia et al.,
NeurIPS 35 (2022) (MACE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import torch
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.channelwise import Convolution, Coupling, ElementIrrepsLinear, IrrepsLinear, components
from nnip.nn.execution import EdgeWork
from nnip.nn.irreps import spherical_harmonics
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import mlp
from nnip.nn.radial import BesselBasis, polynomial_cutoff
from nnip.potentials.contract.base import Edges, Term
from nnip.potentials.learned.hyperparameters import check_network_config
from nnip.strict import CUTOFF, POSITIVE, check

__all__ = ["Equivariant", "EquivariantConfig"]


@dataclass
class EquivariantConfig:
    """Hyperparameters of the equivariant model.

    Args:
        cutoff: Å. channels: multiplicity of every irrep. l_max: degree of the spherical
        harmonics and of the atomic basis A (0..3). hidden_l: degree of the features passed
        between layers (MACE's max_L; <= l_max). correlation: order of the products of A
        (1..3; body order correlation + 1). layers: interaction layers. basis: radial Bessel
        functions. radial_hidden: width of the two hidden layers of the radial MLP.
        readout_hidden: width of the last layer's readout MLP. activation: of the MLPs.
        avg_neighbors: the sum over neighbours is divided by this; None fits it to the
        training data (mean neighbours per atom within the cutoff). product_init: standard deviation of
        the initial weights of the products B^nu (nu >= 2), against order one for A and the linear maps:
        small, the fit grows the many-body terms only as far as the data asks, which lowers the error on
        conformers far from the training data (docs/benchmarks.md, "Torsional extrapolation on 3BPA"; MACE
        also starts its product weights small).
    """

    cutoff: Annotated[float, CUTOFF] = 5.0
    channels: int = 32
    l_max: int = 2
    hidden_l: int = 1
    correlation: int = 3
    layers: int = 2
    basis: int = 8
    radial_hidden: int = 64
    readout_hidden: int = 16
    activation: str = "silu"
    avg_neighbors: float | None = None
    product_init: Annotated[float, POSITIVE] = 0.2

    def __post_init__(self) -> None:
        check_network_config(self, ("channels", "layers", "basis", "radial_hidden", "readout_hidden", "correlation"))
        check("product_init", self.product_init, POSITIVE)
        if not 0 <= self.l_max <= 3 or not 0 <= self.hidden_l <= self.l_max:
            raise ConfigError(f"need 0 <= hidden_l <= l_max <= 3, got hidden_l={self.hidden_l}, l_max={self.l_max}")
        if self.correlation > 3:
            raise ConfigError(f"correlation must be 1, 2 or 3, got {self.correlation}")
        if self.avg_neighbors is not None and self.avg_neighbors <= 0:
            raise ConfigError(f"avg_neighbors must be > 0, got {self.avg_neighbors}")


class Interaction(nn.Module):
    """One layer: atomic basis A, its products, and the residual update of h; see the module docstring."""

    def __init__(self, l_in: int, config: EquivariantConfig, n_elements: int):
        super().__init__()
        k, l_max, hidden_l = config.channels, config.l_max, config.hidden_l
        self.hidden_components = components(hidden_l)
        self.up = IrrepsLinear(k, k, l_in, l_in)
        self.convolution = Convolution(l_in, l_max, l_max)
        self.radial = mlp([config.basis, config.radial_hidden, config.radial_hidden, len(self.convolution.paths) * k],
                          config.activation)
        self.down = IrrepsLinear(k, k, l_max, l_max)
        self.products = nn.ModuleList()
        self.product_weights = nn.ParameterList()
        for nu in range(2, config.correlation + 1):
            self.products.append(Coupling(l_max, l_max, hidden_l if nu == config.correlation else l_max))
            self.product_weights.append(nn.Parameter(config.product_init * torch.randn(
                n_elements, len(self.products[-1].paths), k)))
        self.message = IrrepsLinear(k * config.correlation, k, hidden_l, hidden_l)
        self.skip = ElementIrrepsLinear(k, k, l_in, hidden_l, n_elements)
        # numbers per edge of the largest per-edge tensor (for nnip.nn.execution): the messages,
        # the radial weights, the convolution's table product or products z, or the radial network's hidden layer
        conv = self.convolution
        self.edge_width = max(conv.d_out * k, len(conv.paths) * k, conv.d_out * conv.columns,
                              max(conv.columns_per_degree) * k, config.radial_hidden)

    def forward(self, h: torch.Tensor, species: torch.Tensor, work: EdgeWork,
                avg_neighbors: torch.Tensor) -> torch.Tensor:
        """h (N, K, (l_in+1)^2) -> (N, K, (hidden_l+1)^2), messages over the pairs of ``work`` (a half list)."""
        (summed,) = work.sums(self.messages, [self.rows(h)], self.radial.parameters(),
                              bytes_per_edge=2 * self.edge_width * h.element_size())  # this layer's, both ways
        return self.update(h, species, summed, avg_neighbors)

    def rows(self, h: torch.Tensor) -> torch.Tensor:
        """up(h) with components before channels, (N, (l_in+1)^2, K), contiguous: gathered from it per edge
        (a transposed view would be copied whole at every gather)."""
        return self.up(h).transpose(1, 2).contiguous()

    def messages(self, gathered: Sequence[torch.Tensor], geometry: Sequence[torch.Tensor]) -> tuple[torch.Tensor]:
        """R(r) . (neighbour features (x) Y) along both directions of P pairs, the same R both ways.
        Shapes: gathered [(2P, (l_in+1)^2, K)], geometry [harmonics (2P, (l_max+1)^2), radial basis (P, B)]
        -> [(2P, (l_max+1)^2, K)]."""
        (neighbors,), (harmonics, radial) = gathered, geometry
        weights = self.radial(radial).view(radial.shape[0], len(self.convolution.paths), neighbors.shape[2])
        # copied, not broadcast over the two directions: the backward of a broadcast product sums over
        # non-adjacent dimensions, measured 4-14 % slower per call than this copy
        return (self.convolution(neighbors, harmonics, torch.cat([weights, weights])),)

    def update(self, h: torch.Tensor, species: torch.Tensor, summed: torch.Tensor,
               avg_neighbors: torch.Tensor) -> torch.Tensor:
        """The new features from the old and the summed messages (N, (l_max+1)^2, K): A, its products, residual."""
        a = self.down(summed.transpose(1, 2) / avg_neighbors)
        bases = [a]
        for product, product_weights in zip(self.products, self.product_weights):
            bases.append(product(bases[-1], a, product_weights.index_select(0, species)))
        stacked = torch.cat([b[:, :, :self.hidden_components] for b in bases], dim=1)
        return self.message(stacked) + self.skip(h, species)


class Equivariant(Term):
    """Equivariant many-body atomic energies (dimensionless); see the module docstring."""

    name = "equivariant"
    Config = EquivariantConfig
    dimensionless = True
    half_list = True

    def __init__(self, config: EquivariantConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        n = len(self.elements)
        self.embedding = nn.Embedding(n, config.channels)
        self.harmonics = spherical_harmonics(config.l_max)
        self.basis = BesselBasis(config.basis, config.cutoff)
        self.register_buffer("avg_neighbors", torch.tensor(float(config.avg_neighbors or 1.0)))
        # (-1)^l for each harmonic component (degree l has 2l + 1): not saved, rebuilt from l_max
        self.register_buffer("_parity", torch.tensor([(-1.0) ** l for l in range(config.l_max + 1)
                                                      for _ in range(2 * l + 1)]), persistent=False)
        degrees = [0] + [config.hidden_l] * config.layers  # of the features entering each layer
        self.interactions = nn.ModuleList(Interaction(degrees[t], config, n) for t in range(config.layers))
        self.readouts = nn.ModuleList(mlp([config.channels, 1]) for _ in range(config.layers - 1))
        self.readouts.append(mlp([config.channels, config.readout_hidden, 1], config.activation))
        self.lone = LoneReference(n)

    def layer_features(self, species: torch.Tensor, edges: Edges) -> list[torch.Tensor]:
        """Features h after each layer, (N, channels, (hidden_l+1)^2) in the layout of :mod:`nnip.nn.irreps`.

        ``edges``: a half list (R and Y once per pair)."""
        h = self.embedding(species).unsqueeze(-1)
        widest = max(i.edge_width for i in self.interactions)
        work = edges.work(self._geometry, (*self.basis.parameters(), *self.harmonics.parameters()),
                          2 * widest * h.element_size())  # both directions of a pair
        out = []
        for k, interaction in enumerate(self.interactions):
            if k:
                h = edges.exchange(h)  # ghost atoms' features from their owners (LAMMPS's domains)
            h = interaction(h, species, work, self.avg_neighbors)
            out.append(h)
        return out

    def _geometry(self, vectors: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Harmonics with the cutoff envelope of both directions, (2P, (l_max+1)^2), and the radial basis (P, B)
        of P pairs, from their vectors (P, 3) Å and lengths (P,) Å."""
        # R(r) f_c(r) (x) Y = R(r) (x) (f_c(r) Y): the envelope goes on the P x (l_max+1)^2 harmonics, once
        harmonics = self.harmonics(vectors) * polynomial_cutoff(lengths, self.cutoff)[:, None]
        harmonics = torch.cat([harmonics, harmonics * self._parity.to(harmonics.dtype)])  # Y(r_ji) = (-1)^l Y(r_ij)
        return harmonics, self.basis(lengths)

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Summed readouts (R,) of atoms of species (R,); the edges index atoms among them."""
        features = self.layer_features(species, edges)
        return sum(readout(h[:, :, 0]) for readout, h in zip(self.readouts, features)).squeeze(-1)

    def last_layers(self) -> list[nn.Linear]:
        """The readout's final Linear(H, 1) (Term.last_layers)."""
        return [readout[-1] for readout in self.readouts]

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Atomic energies (N,) relative to lone atoms (nnip.nn.lone); ``edges``: a half list."""
        return self.lone(self._outputs, species, edges, self.parameters())

    def fit_to_data(self, batches: Sequence[tuple[torch.Tensor, Edges]]) -> None:
        """Set avg_neighbors to the mean number of neighbours per atom (unless the config fixes it)."""
        if self.config.avg_neighbors is None:
            atoms = sum(s.shape[0] for s, _ in batches)
            edges = sum(e.center.shape[0] * (2 if e.is_half else 1) for _, e in batches)  # directed edges
            self.avg_neighbors.fill_(max(edges / max(atoms, 1), 1.0))

