"""The thin wrapper around e3nn: the only module of nnip that imports it.

Features of equivariant models are flat tensors (N, irreps.dim) laid out by an e3nn
``Irreps`` such as ``32x0e + 32x1o + 32x2e``: per irrep (l, parity p), ``mul`` channels of
2l + 1 components. Under a rotation or reflection R they transform as x -> x D(R)^T with
D the block-diagonal Wigner matrix (:func:`rotation_matrix_of`). "Natural" irreps have
parity (-1)^l, the parity of the spherical harmonics Y_l.

Reference: M. Geiger and T. Smidt, e3nn: Euclidean neural networks, arXiv:2207.09453.
"""

from __future__ import annotations

import contextlib

import torch
from e3nn import o3
from torch import nn

__all__ = ["Irreps", "natural_irreps", "spherical_harmonics", "Linear", "ElementLinear", "convolution",
           "ElementProduct", "rotation_matrix_of"]

Irreps = o3.Irreps
Linear = o3.Linear


def natural_irreps(channels: int, l_max: int) -> Irreps:
    """``channels`` x (0e + 1o + 2e + ...) up to l_max."""
    return Irreps([(channels, (l, (-1) ** l)) for l in range(l_max + 1)])


def spherical_harmonics(l_max: int) -> nn.Module:
    """Module: edge vectors (E, 3) -> Y_lm of their directions (E, (l_max + 1)^2), component-normalised."""
    return o3.SphericalHarmonics(Irreps.spherical_harmonics(l_max), normalize=True, normalization="component")


@contextlib.contextmanager
def _float64_default():
    """e3nn builds its constants in the default dtype: make that float64 for a while."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def rotation_matrix_of(irreps: Irreps | str, rotation: torch.Tensor) -> torch.Tensor:
    """D(R) (dim, dim) of ``irreps`` for a 3x3 orthogonal matrix R (reflections included), in R's dtype."""
    with _float64_default():
        return Irreps(irreps).D_from_matrix(rotation.to(torch.float64)).to(rotation.dtype)


def _coupled(irreps1: Irreps, irreps2: Irreps, allowed: Irreps, mode: str) -> tuple[Irreps, list[tuple]]:
    """Output irreps (sorted) and e3nn instructions for all couplings of 1 x 2 that land in ``allowed``."""
    targets = {ir for _, ir in allowed}
    outputs, instructions = [], []
    for i, (mul, ir1) in enumerate(irreps1):
        for j, (_, ir2) in enumerate(irreps2):
            for ir in ir1 * ir2:
                if ir in targets:
                    instructions.append((i, j, len(outputs), mode, True))
                    outputs.append((mul, ir))
    irreps, permutation, _ = Irreps(outputs).sort()
    return irreps, [(i, j, permutation[k], mode, w) for i, j, k, mode, w in instructions]


def convolution(irreps_in: Irreps, irreps_edge: Irreps, allowed: Irreps) -> tuple[nn.Module, Irreps]:
    """Channel-wise tensor product h_j (x) Y(r_ij) with one weight per path and channel given per edge.

    Returns the module, called as ``tp(x (E, in), y (E, edge), weights (E, tp.weight_numel))``,
    and its output irreps (unsimplified: follow it with a :data:`Linear`).
    """
    irreps_out, instructions = _coupled(Irreps(irreps_in), Irreps(irreps_edge), Irreps(allowed), "uvu")
    module = ExactProduct(irreps_in, irreps_edge, irreps_out, instructions)
    return module, irreps_out


class ExactProduct(nn.Module):
    """An e3nn TensorProduct (external weights) whose Clebsch-Gordan constants are exact in every dtype.

    e3nn stores the coupling coefficients as buffers in the default dtype at construction;
    a float32-built product converted to float64 would keep float32-rounded coefficients
    (errors ~1e-8, visible in float64 equivariance). Here they are computed in float64,
    kept out of the state dict (they are constants, not weights), and re-copied from
    float64 after every dtype or device change. Call as ``tp(x1, x2, weights)``.
    """

    def __init__(self, irreps1, irreps2, irreps_out, instructions: list[tuple]):
        super().__init__()
        with _float64_default():
            product = o3.TensorProduct(irreps1, irreps2, irreps_out, instructions, shared_weights=False,
                                       internal_weights=False)
        self._exact = {}
        for name, buffer in list(product.named_buffers()):
            owner_name, _, leaf = name.rpartition(".")
            owner = product.get_submodule(owner_name)
            self._exact[name] = buffer.detach().clone()
            delattr(owner, leaf)
            owner.register_buffer(leaf, buffer.detach().clone(), persistent=False)
        self.product = product.to(torch.get_default_dtype())
        self.weight_numel = product.weight_numel
        self.irreps_out = product.irreps_out

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        with torch.no_grad():
            for name, exact in self._exact.items():
                self.product.get_buffer(name).copy_(exact)
        return self

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return self.product(x1, x2, weights)


class ElementLinear(nn.Module):
    """An equivariant linear map with its own weights for each element: (N, in), species (N,) -> (N, out)."""

    def __init__(self, irreps_in: Irreps | str, irreps_out: Irreps | str, n_elements: int):
        super().__init__()
        self.linear = o3.Linear(irreps_in, irreps_out, shared_weights=False, internal_weights=False)
        self.weight = nn.Parameter(torch.randn(n_elements, self.linear.weight_numel))
        self.irreps_out = self.linear.irreps_out

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.linear(x, self.weight.index_select(0, species))


class ElementProduct(nn.Module):
    """Channel-wise product x (x) a of two atomic bases, coupled to ``allowed`` irreps, weighted per element.

    Each channel k couples only with itself (x_k (x) a_k), as in MACE's symmetric
    contractions, with one weight per element, coupling path and channel. Shapes: x (N, in1),
    a (N, in2), species (N,) -> (N, irreps_out.dim).
    """

    def __init__(self, irreps1: Irreps | str, irreps2: Irreps | str, allowed: Irreps | str, n_elements: int):
        super().__init__()
        self.irreps_out, instructions = _coupled(Irreps(irreps1), Irreps(irreps2), Irreps(allowed), "uuu")
        self.product = ExactProduct(irreps1, irreps2, self.irreps_out, instructions)
        self.weight = nn.Parameter(torch.randn(n_elements, self.product.weight_numel))

    def forward(self, x: torch.Tensor, a: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.product(x, a, self.weight.index_select(0, species))
