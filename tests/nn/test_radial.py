"""Cutoff functions and radial bases: their formulas, exact zeros beyond the cutoff, no denormals."""

import math

import pytest
import torch

from nnip.nn.radial import GaussianBasis, cosine_cutoff, polynomial_cutoff

CUTOFF = 4.0


def values_and_slopes(function, r):
    r = r.clone().requires_grad_(True)
    value = function(r)
    (slope,) = torch.autograd.grad(value.sum(), r)
    return value.detach(), slope


def test_cosine_cutoff_formula_inside_and_exact_zero_from_the_cutoff_on():
    inside = torch.linspace(0.0, CUTOFF - 1e-3, 50, dtype=torch.float64)
    value, slope = values_and_slopes(lambda r: cosine_cutoff(r, CUTOFF), inside)
    torch.testing.assert_close(value, 0.5 * torch.cos(math.pi * inside / CUTOFF) + 0.5, rtol=0, atol=1e-15)
    want_slope = -0.5 * math.pi / CUTOFF * torch.sin(math.pi * inside / CUTOFF)
    torch.testing.assert_close(slope, want_slope, rtol=0, atol=1e-15)
    outside = torch.tensor([CUTOFF, CUTOFF + 1e-9, 5.0, 100.0], dtype=torch.float64)
    value, slope = values_and_slopes(lambda r: cosine_cutoff(r, CUTOFF), outside)
    assert torch.all(value == 0) and torch.all(slope == 0)


def test_polynomial_cutoff_equals_the_expanded_polynomial_and_vanishes_beyond():
    p = 6
    x = torch.linspace(0.0, 0.999, 40, dtype=torch.float64)
    expanded = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    torch.testing.assert_close(polynomial_cutoff(x * CUTOFF, CUTOFF, p), expanded, rtol=0, atol=1e-13)
    outside = torch.tensor([CUTOFF, CUTOFF + 1e-9, 7.0], dtype=torch.float64)
    value, slope = values_and_slopes(lambda r: polynomial_cutoff(r, CUTOFF, p), outside)
    assert torch.all(value == 0) and torch.all(slope == 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_basis_has_no_denormal_values_or_slopes(dtype):
    basis = GaussianBasis(50, CUTOFF).to(dtype)
    r = torch.linspace(0.0, CUTOFF, 2001, dtype=dtype)
    values = basis(r)
    tiny = torch.finfo(dtype).tiny
    assert torch.all(values >= tiny)  # the far tails stop at exp(-50), a normal number in float32
    for k in (0, 10, 49):
        _, slope = values_and_slopes(lambda x: basis(x)[:, k], r)
        assert torch.all((slope == 0) | (slope.abs() >= tiny))
    centre = basis.centers[10]
    torch.testing.assert_close(values[:, 10], torch.exp(-basis.gamma * (r - centre) ** 2).clamp(min=math.exp(-50)))
