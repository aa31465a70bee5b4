"""The thin wrapper around e3nn: the only module of nnip that imports it.

nnip's equivariant features use one layout: (N, K, (L+1)^2), K channels of the natural
irreps 0e + 1o + 2e + ... up to degree L, block l in components l^2 .. (l+1)^2 - 1 in
e3nn's real basis. "Natural" irreps have parity (-1)^l, that of the spherical harmonics.
Under a rotation or reflection R, x -> x D(R)^T over the last axis, with D from
:func:`rotation_matrix_of`. From e3nn come only the spherical harmonics, the
Clebsch-Gordan (Wigner 3j) coefficients and D(R); the layers that use them are in
:mod:`nnip.nn.channelwise`.

Reference: M. Geiger and T. Smidt, e3nn: Euclidean neural networks, arXiv:2207.09453.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

__all__ = ["spherical_harmonics", "clebsch_gordan", "rotation_matrix_of"]


def _o3():
    """e3nn's o3, imported on first use: importing e3nn loads torch._dynamo (seconds), which
    nothing but the equivariant model needs, so ``import nnip`` and the CLI stay fast."""
    from e3nn import o3

    return o3


@contextlib.contextmanager
def _float64_default():
    """e3nn builds its constants in the default dtype: make that float64 for a while."""
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)


def spherical_harmonics(l_max: int) -> nn.Module:
    """Module: vectors (E, 3) -> Y_lm of their directions (E, (l_max + 1)^2), each component of mean square 1."""
    o3 = _o3()
    return o3.SphericalHarmonics(o3.Irreps.spherical_harmonics(l_max), normalize=True, normalization="component")


def clebsch_gordan(l1: int, l2: int, l3: int) -> torch.Tensor:
    """Real coupling coefficients C (2l1+1, 2l2+1, 2l3+1), float64, sum of squares 1."""
    with _float64_default():
        return _o3().wigner_3j(l1, l2, l3).to(torch.float64)


def rotation_matrix_of(l_max: int, rotation: torch.Tensor) -> torch.Tensor:
    """D(R) ((l_max+1)^2, (l_max+1)^2) of 0e + 1o + ... for a 3x3 orthogonal R (reflections too), in R's dtype."""
    irreps = _o3().Irreps([(1, (l, (-1) ** l)) for l in range(l_max + 1)])
    with _float64_default():
        return irreps.D_from_matrix(rotation.to(torch.float64)).to(rotation.dtype)
