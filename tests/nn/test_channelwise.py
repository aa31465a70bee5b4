"""The fused equivariant layers equal the tensor product written path by path from the Clebsch-Gordan tables."""

import math

import pytest
import torch

from nnip.nn.channelwise import Convolution, Coupling, natural_paths
from nnip.nn.irreps import clebsch_gordan


def path_by_path(x, y, weights, l1_max, l2_max, l_out_max):
    """sum over paths of w[n, p, k] sqrt((2 l3 + 1) / P_l3) C_p . (x[n, k, l1] (x) y[n, k, l2]), one einsum per path."""
    paths = natural_paths(l1_max, l2_max, l_out_max)
    out = torch.zeros(x.shape[0], x.shape[1], (l_out_max + 1) ** 2, dtype=x.dtype)
    for p, (l1, l2, l3) in enumerate(paths):
        scale = math.sqrt((2 * l3 + 1) / sum(q[2] == l3 for q in paths))
        cg = clebsch_gordan(l1, l2, l3).to(x.dtype)
        term = torch.einsum("nka,nkb,abc->nkc", x[:, :, l1**2:(l1 + 1) ** 2], y[:, :, l2**2:(l2 + 1) ** 2], cg)
        out[:, :, l3**2:(l3 + 1) ** 2] += scale * weights[:, p, :, None] * term
    return out


def random_inputs(seed: int, rows: int, channels: int, l1: int, l2: int, paths: int, y_channels: bool):
    """x (rows, channels, D1), y (rows, [channels,] D2), weights (rows, paths, channels), float64."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, channels, (l1 + 1) ** 2, generator=gen, dtype=torch.float64)
    y_shape = (rows, channels, (l2 + 1) ** 2) if y_channels else (rows, (l2 + 1) ** 2)
    y = torch.randn(*y_shape, generator=gen, dtype=torch.float64)
    return x, y, torch.randn(rows, paths, channels, generator=gen, dtype=torch.float64)


DEGREES = [(0, 3, 3), (1, 3, 3), (1, 2, 2), (2, 2, 2), (3, 3, 1), (2, 0, 2), (1, 1, 0), (2, 0, 0)]


@pytest.mark.parametrize("degrees", DEGREES)
def test_coupling_equals_the_path_by_path_product(degrees):
    layer = Coupling(*degrees).double()
    x, y, w = random_inputs(0, 7, 5, degrees[0], degrees[1], len(layer.paths), y_channels=True)
    torch.testing.assert_close(layer(x, y, w), path_by_path(x, y, w, *degrees), rtol=0, atol=1e-12)


@pytest.mark.parametrize("degrees", DEGREES)
def test_convolution_equals_the_path_by_path_product_with_a_one_channel_y(degrees):
    layer = Convolution(*degrees).double()
    x, y, w = random_inputs(1, 9, 4, degrees[0], degrees[1], len(layer.paths), y_channels=False)
    expected = path_by_path(x, y.unsqueeze(1).expand(-1, 4, -1), w, *degrees)
    out = layer(x.transpose(1, 2).contiguous(), y, w)  # rows hold components before channels
    torch.testing.assert_close(out.transpose(1, 2), expected, rtol=0, atol=1e-12)


def test_layers_keep_float64_tables_exact_after_a_dtype_round_trip():
    layer = Convolution(1, 3, 3).float().double()
    fresh = Convolution(1, 3, 3).double()
    assert torch.equal(layer.table, fresh.table)
