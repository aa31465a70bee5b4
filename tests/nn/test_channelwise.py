"""The fused equivariant layers equal the tensor product written path by path from the Clebsch-Gordan tables."""

import math

import pytest
import torch

from nnip.nn import execution
from nnip.nn.channelwise import Convolution, Coupling, natural_paths, sparse_couplings
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


def test_coupling_in_chunks_of_rows_equals_one_product_with_its_gradients(monkeypatch):
    """Rows taken a few at a time (7 rows in chunks of 3, 3 and 1): the same products and gradients."""
    layer = Coupling(1, 2, 2).double()
    x, y, w = (t.requires_grad_() for t in random_inputs(4, 7, 5, 1, 2, len(layer.paths), y_channels=True))
    want = layer(x, y, w)
    grads_want = torch.autograd.grad(want.square().sum(), (x, y, w))
    calls = []
    product = layer._product
    monkeypatch.setattr(layer, "_product", lambda *args: calls.append(args[0].shape[0]) or product(*args))
    monkeypatch.setattr(execution, "CHUNK_BYTES", 3 * 5 * 4 * 9 * 8)  # 3 rows of (5 channels, 4 x 9) float64
    got = layer(x, y, w)
    assert calls == [3, 3, 1]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-13)
    for g, g_want in zip(torch.autograd.grad(got.square().sum(), (x, y, w)), grads_want):
        torch.testing.assert_close(g, g_want, rtol=0, atol=1e-12)


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


@pytest.mark.parametrize("degrees", DEGREES + [(0, 0, 2), (1, 0, 3)])
def test_unrolled_convolution_equals_the_dense_tables_and_the_path_by_path_product(degrees):
    """The form torch.compile traces (a sum over the nonzero coefficients) gives the eager result,
    including output degrees that no path reaches (zeros)."""
    convolution = Convolution(*degrees).double()
    x, y, w = random_inputs(3, 6, 3, degrees[0], degrees[1], len(convolution.paths), y_channels=False)
    expected = path_by_path(x, y.unsqueeze(1).expand(-1, 3, -1), w, *degrees).transpose(1, 2)
    x = x.transpose(1, 2).contiguous()
    torch.testing.assert_close(convolution.dense(x, y, w), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(convolution.unrolled(x, y, w), expected, rtol=0, atol=1e-12)


def test_sparse_couplings_hold_every_nonzero_coefficient_once_with_its_path_scale():
    paths = natural_paths(3, 3, 3)
    found = {}
    for d, component in enumerate(sparse_couplings(paths, 3)):
        for p, by_m1 in component:
            l1, l2, l3 = paths[p]
            assert l3**2 <= d < (l3 + 1) ** 2  # a path feeds only its own output degree
            for m1, pairs in by_m1:
                for m2, c in pairs:
                    assert (p, m1, m2, d) not in found
                    found[(p, m1, m2, d)] = c
    scales = {l3: math.sqrt((2 * l3 + 1) / sum(q[2] == l3 for q in paths)) for _, _, l3 in paths}
    expected = {}
    for p, (l1, l2, l3) in enumerate(paths):
        cg = clebsch_gordan(l1, l2, l3)
        for a, b, m in zip(*torch.nonzero(cg.abs() > 1e-12, as_tuple=True)):
            expected[(p, l1**2 + int(a), l2**2 + int(b), l3**2 + int(m))] = scales[l3] * float(cg[a, b, m])
    assert found.keys() == expected.keys() and len(found) == 353
    assert max(abs(found[k] - expected[k]) for k in found) < 1e-15


def test_compile_traces_the_unrolled_convolution_without_matrix_products():
    """What TorchDynamo captures for the edge convolution: elementwise arithmetic only, no table products."""
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    layer = Convolution(1, 2, 2)
    x, y, w = torch.randn(5, 4, 3), torch.randn(5, 9), torch.randn(5, len(layer.paths), 3)
    out = torch.compile(layer, backend=capture, fullgraph=True)(x, y, w)
    torch.testing.assert_close(out, layer.dense(x, y, w), rtol=1e-5, atol=1e-6)
    (graph_module,) = graphs
    targets = {str(node.target) for node in graph_module.graph.nodes if node.op in ("call_function", "call_method")}
    assert targets and not any(name in target for target in targets for name in ("matmul", "mm")), targets
