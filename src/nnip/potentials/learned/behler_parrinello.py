"""Behler-Parrinello network: one MLP per element on atom-centred symmetry functions.

    e_i = NN_{Z_i}(standardise(G_i)) - NN_{Z_i}(standardise(0))

G_i are the element-resolved radial G2 and angular G4 (or G5) functions of
:mod:`nnip.nn.symmetry_functions`, standardised with the mean and standard deviation of
the training set per centre element (stored in the model). Subtracting the network's value for an atom
without neighbours (nnip.nn.lone, as for every network term) makes a lone atom return E0. e_i is
dimensionless (times the potential's scale).

Default parameters: ``radial`` shifted Gaussians with centres evenly spaced on
[radial_start, cutoff) and widths equal to their spacing; angular sets for every
combination of ``angular_etas`` (1/Å^2), ``angular_zetas`` and lambda = +-1.

References: J. Behler and M. Parrinello, Phys. Rev. Lett. 98, 146401 (2007);
J. Behler, J. Chem. Phys. 134, 074106 (2011).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import torch
from torch import nn

from nnip.errors import ConfigError
from nnip.nn.execution import exporting
from nnip.nn.lone import LoneReference
from nnip.nn.mlp import ACTIVATIONS, mlp
from nnip.nn.symmetry_functions import angular_g4, angular_g5, element_pair_index, radial_g2
from nnip.potentials.contract.base import Edges, Term
from nnip.strict import CUTOFF

__all__ = ["BehlerParrinello", "BehlerParrinelloConfig"]


@dataclass
class BehlerParrinelloConfig:
    """Symmetry functions and per-element networks.

    Args:
        cutoff: Å. radial: number of G2 functions per neighbour element.
        radial_start: Å, first G2 centre. radial_centres: explicit G2 centres, Å (replace the
            automatic grid; ``radial`` is then ignored). radial_eta: 1/Å^2 (default 1/(2 spacing^2)).
        angular: "g4" or "g5". angular_cutoff: Å, neighbours entering the angular functions
            (ANI-style, e.g. 3.5 with a radial cutoff of 5.2; default: cutoff).
        angular_etas: 1/Å^2. angular_zetas: exponents (>= 1). hidden: widths of the hidden layers.
        activation: "tanh" (Behler's choice), "silu" or "ssp".
    """

    cutoff: Annotated[float, CUTOFF] = 6.0
    radial: int = 12
    radial_start: float = 0.8
    radial_centres: list[float] | None = None
    radial_eta: float | None = None
    angular: str = "g4"
    angular_cutoff: float | None = None
    angular_etas: list[float] = field(default_factory=lambda: [0.005, 0.05])
    angular_zetas: list[float] = field(default_factory=lambda: [1.0, 4.0])
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"

    def __post_init__(self) -> None:
        if not 0 <= self.radial_start < self.cutoff:
            raise ConfigError(f"radial_start must lie in [0, cutoff={self.cutoff}) Å, got {self.radial_start}")
        if self.radial < 1 or any(h < 1 for h in self.hidden):
            raise ConfigError("radial and every hidden width must be >= 1")
        if self.radial_centres is not None and not all(0 <= c < self.cutoff for c in self.radial_centres):
            raise ConfigError(f"radial_centres must lie in [0, cutoff={self.cutoff}) Å")
        if self.radial_eta is not None and self.radial_eta <= 0:
            raise ConfigError(f"radial_eta must be > 0, got {self.radial_eta}")
        if self.angular_cutoff is not None and not 0 < self.angular_cutoff <= self.cutoff:
            raise ConfigError(f"angular_cutoff must lie in (0, cutoff={self.cutoff}] Å, got {self.angular_cutoff}")
        if self.angular not in ("g4", "g5"):
            raise ConfigError(f"angular: expected g4 or g5, got {self.angular!r}")
        if any(z < 1 or z != int(z) for z in self.angular_zetas) or any(e < 0 for e in self.angular_etas):
            raise ConfigError("angular_zetas must be integers >= 1 (smooth at cos = -+1) and angular_etas >= 0")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation: expected one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")


class BehlerParrinello(Term):
    """Behler-Parrinello atomic energies (dimensionless); see the module docstring."""

    name = "behler_parrinello"
    Config = BehlerParrinelloConfig
    dimensionless = True

    def __init__(self, config: BehlerParrinelloConfig, elements: Sequence[int]):
        super().__init__(config, elements)
        n = len(self.elements)
        spacing = (config.cutoff - config.radial_start) / config.radial  # no centre at r_c, where f_c = 0
        self.radial_shifts = config.radial_centres or [config.radial_start + k * spacing for k in range(config.radial)]
        self.radial_eta = config.radial_eta or 0.5 / spacing**2
        self.angular_sets = list(itertools.product(config.angular_etas, config.angular_zetas, (1.0, -1.0)))
        self.n_features = n * len(self.radial_shifts) + n * (n + 1) // 2 * len(self.angular_sets)
        self.register_buffer("pair_index", element_pair_index(n), persistent=False)
        # standardisation per centre element (S, D), set by fit_to_data
        self.register_buffer("feature_mean", torch.zeros(n, self.n_features))
        self.register_buffer("feature_std", torch.ones(n, self.n_features))
        self.networks = nn.ModuleList(mlp([self.n_features, *config.hidden, 1], config.activation) for _ in range(n))
        self.lone = LoneReference(n)

    def features(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Raw symmetry functions (N, D): radial G2 then angular G4/G5, element-resolved."""
        n_atoms, n_species = species.shape[0], len(self.elements)
        neighbor_species = species[edges.neighbor]

        def constants(values):  # exact config values in the arithmetic's dtype
            return torch.tensor(values, dtype=edges.lengths.dtype, device=edges.lengths.device)

        shifts = constants(self.radial_shifts)
        radial = radial_g2(edges.lengths, edges.center, neighbor_species, n_atoms, n_species,
                           torch.full_like(shifts, self.radial_eta), shifts, self.cutoff)
        angular_fn = angular_g4 if self.config.angular == "g4" else angular_g5
        reach = self.config.angular_cutoff or self.cutoff
        near = edges if reach >= self.cutoff else edges.within(reach)
        angular = angular_fn(near.vectors, near.center, species[near.neighbor], n_atoms, self.pair_index,
                             constants(self.config.angular_etas), self.config.angular_zetas, reach)
        return torch.cat([radial, angular], dim=1)

    def fit_to_data(self, batches: Sequence[tuple[torch.Tensor, Edges]]) -> None:
        """Mean and standard deviation of the features per centre element (std 1 for constant features)."""
        species = torch.cat([s for s, _ in batches])
        features = torch.cat([self.features(s, e) for s, e in batches]).to(torch.float64)
        for element in range(len(self.elements)):
            mine = features[species == element]
            if mine.shape[0] == 0:
                continue
            std = mine.std(dim=0, unbiased=False)
            self.feature_mean[element] = mine.mean(dim=0).to(self.feature_mean.dtype)
            self.feature_std[element] = torch.where(std > 1e-8, std, torch.ones_like(std)).to(self.feature_std.dtype)

    def last_layers(self) -> list[nn.Linear]:
        """The readout's final Linear(H, 1) (Term.last_layers)."""
        return [network[-1] for network in self.networks]

    def forward(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Atomic energies (N,), dimensionless, relative to lone atoms (nnip.nn.lone). Shapes: species (N,),
        edges within the cutoff."""
        return self.lone(self._outputs, species, edges, (*self.parameters(), *self.buffers()))

    def _outputs(self, species: torch.Tensor, edges: Edges) -> torch.Tensor:
        """Network outputs (R,) of atoms of species (R,) on their standardised features; the edges index atoms
        among them (an atom without edges has zero raw features)."""
        x = (self.features(species, edges) - self.feature_mean[species]) / self.feature_std[species]
        if exporting():  # every network on every atom, then each atom's own: no sizes that depend on the data
            outputs = torch.stack([network(x).squeeze(-1) for network in self.networks], dim=1)
            return outputs.gather(1, species[:, None]).squeeze(1)
        energies = torch.zeros(species.shape[0], dtype=x.dtype, device=x.device)
        for s, network in enumerate(self.networks):
            mask = species == s
            energies = energies.index_put((mask,), network(x[mask]).squeeze(-1))
        return energies
