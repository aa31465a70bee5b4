"""Equivariant layers on features (N, K, (L+1)^2): K channels of the natural irreps 0e + 1o + ... + L.

The layout is that of :mod:`nnip.nn.irreps`. Couplings are fused: one dense Clebsch-Gordan
table per layer turns the product of two features into all allowed output components at
once (a few batched matrix products instead of one small kernel per coupling path), which
is what keeps small molecules fast on a CPU.

Under torch.compile the edge convolution is traced in another form (:meth:`Convolution.unrolled`):
a sum over the nonzero Clebsch-Gordan coefficients (:func:`sparse_couplings`), 86 multiply-adds
per edge and channel for l1 <= 1, l2 <= 3 where the dense tables do 352. The compiler fuses them
into elementwise loops without the (edges x components x channels) intermediates and the small
batched matrix products (one per input degree) of the dense form. Eager PyTorch would run each term as its own
kernel, so eager (and torch.export) keep the tables. The per-atom products stay dense when
compiled too: measured on 512 Cu atoms, unrolling them was slower and compiled 2.6x longer.

Only natural couplings (l1, l2) -> l3 with l1 + l2 + l3 even are kept: the product of two
natural irreps is natural exactly then. Shapes use N rows (atoms or edges), K channels and
D = (L+1)^2 components.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nnip.nn.execution import row_chunks
from nnip.nn.irreps import clebsch_gordan

__all__ = ["components", "natural_paths", "path_scales", "sparse_couplings", "ExactConstants",
           "Coupling", "Convolution", "IrrepsLinear", "ElementIrrepsLinear"]

#: the couplings into one output component: (path p, ((m1, ((m2, c), ...)), ...)), ...
ComponentCouplings = tuple[tuple[int, tuple[tuple[int, tuple[tuple[int, float], ...]], ...]], ...]


def components(l_max: int) -> int:
    """(l_max + 1)^2, the number of components of 0e + 1o + ... + l_max."""
    return (l_max + 1) ** 2


def natural_paths(l1_max: int, l2_max: int, l_out_max: int) -> list[tuple[int, int, int]]:
    """Couplings (l1, l2, l3) with |l1 - l2| <= l3 <= min(l1 + l2, l_out_max) and l1 + l2 + l3 even."""
    return [(l1, l2, l3) for l1 in range(l1_max + 1) for l2 in range(l2_max + 1)
            for l3 in range(abs(l1 - l2), min(l1 + l2, l_out_max) + 1) if (l1 + l2 + l3) % 2 == 0]


def path_scales(paths: list[tuple[int, int, int]]) -> list[float]:
    """sqrt((2 l3 + 1) / P_l3) per path, P_l3 the paths into l3: unit-variance inputs give outputs of order one."""
    fan_in = {l3: sum(p[2] == l3 for p in paths) for _, _, l3 in paths}
    return [math.sqrt((2 * l3 + 1) / fan_in[l3]) for _, _, l3 in paths]


def sparse_couplings(paths: list[tuple[int, int, int]], l_out_max: int) -> list[ComponentCouplings]:
    """The nonzero scaled coefficients into each output component (index l3^2 + m3 of 0e + ... + l_out_max).

    Component d gets (p, ((m1, ((m2, c), ...)), ...)) per path p into it, so that
    out[d] = sum_p w_p sum_m1 x[m1] (sum_m2 c y[m2]); m1 and m2 index the whole input layouts
    and c includes the path scale (:func:`path_scales`).
    """
    out: list[list] = [[] for _ in range(components(l_out_max))]
    for p, ((l1, l2, l3), scale) in enumerate(zip(paths, path_scales(paths))):
        cg = clebsch_gordan(l1, l2, l3)
        for m3 in range(2 * l3 + 1):
            by_m1 = []
            for a in range(2 * l1 + 1):
                pairs = tuple((l2**2 + b, float(scale * cg[a, b, m3])) for b in range(2 * l2 + 1)
                              if abs(cg[a, b, m3]) > 1e-12)
                if pairs:
                    by_m1.append((l1**2 + a, pairs))
            if by_m1:
                out[l3**2 + m3].append((p, tuple(by_m1)))
    return [tuple(component) for component in out]


class ExactConstants(nn.Module):
    """A module whose constant tables are kept exact in every dtype.

    A float32 buffer converted to float64 keeps its float32 rounding (~1e-8), which shows in
    float64 equivariance tests. Tables registered with :meth:`register_constant` are kept
    out of the state dict and re-copied from float64 masters after every dtype or device change.
    """

    def __init__(self):
        super().__init__()
        self._masters: dict[str, torch.Tensor] = {}

    def register_constant(self, name: str, value: torch.Tensor) -> None:
        self._masters[name] = value.detach().to(torch.float64)
        dtype = torch.get_default_dtype() if value.is_floating_point() else value.dtype
        self.register_buffer(name, value.detach().to(dtype), persistent=False)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        with torch.no_grad():
            for name, master in self._masters.items():
                getattr(self, name).copy_(master)
        return self


class Coupling(ExactConstants):
    """Channel-wise product x_k (x) y_k coupled to l3 <= l_out_max, one weight per path and channel.

    out[n, k, l3 block] = sum over paths (l1, l2, l3) of w[n, path, k] sqrt((2l3+1) / P_l3)
    (C^{l1 l2 l3} . x[n, k, l1 block] (x) y[n, k, l2 block]), P_l3 = paths into l3, so unit-variance
    inputs give outputs of order one.
    Shapes: x (N, K, D1), y (N, K, D2), weights (N, len(paths), K) -> (N, K, D_out).
    """

    def __init__(self, l1_max: int, l2_max: int, l_out_max: int):
        super().__init__()
        self.paths = natural_paths(l1_max, l2_max, l_out_max)
        if not self.paths:
            raise ValueError(f"no natural coupling of l <= {l1_max} and l <= {l2_max} reaches l <= {l_out_max}")
        d1, d2, d_out = components(l1_max), components(l2_max), components(l_out_max)
        width = sum(2 * l3 + 1 for _, _, l3 in self.paths)
        table = torch.zeros(d1, d2, width, dtype=torch.float64)
        path_of_column = torch.zeros(width, dtype=torch.long)
        to_output = torch.zeros(width, d_out, dtype=torch.float64)
        column = 0
        for k, ((l1, l2, l3), scale) in enumerate(zip(self.paths, path_scales(self.paths))):
            n = 2 * l3 + 1
            table[l1**2:(l1 + 1) ** 2, l2**2:(l2 + 1) ** 2, column:column + n] = scale * clebsch_gordan(l1, l2, l3)
            path_of_column[column:column + n] = k
            to_output[column:column + n, l3**2:(l3 + 1) ** 2] = torch.eye(n, dtype=torch.float64)
            column += n
        self.register_constant("table", table)
        self.register_constant("to_output", to_output)
        self.register_buffer("path_of_column", path_of_column, persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The product, on the CPU in chunks of rows whose outer product x (x) y holds at most
        nnip.nn.execution.CHUNK_BYTES (hundreds of atoms would otherwise need fresh pages from the kernel
        in every call under glibc malloc); one chunk while compiling or exporting, where the number of
        chunks would depend on the size, and on other devices, whose caching allocators reuse memory."""
        if torch.compiler.is_compiling() or x.device.type != "cpu":
            return self._product(x, y, weights)
        rows = row_chunks(x.shape[0], x.shape[1] * x.shape[2] * y.shape[2] * x.element_size())
        if x.shape[0] <= rows:
            return self._product(x, y, weights)
        return torch.cat([self._product(*part) for part in zip(x.split(rows), y.split(rows), weights.split(rows))])

    def _product(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        n, channels, _ = x.shape
        outer = (x.unsqueeze(-1) * y.unsqueeze(-2)).reshape(n, channels, -1)
        coupled = outer @ self.table.reshape(-1, self.table.shape[-1])
        column_weights = weights.index_select(1, self.path_of_column).transpose(1, 2)
        return (coupled * column_weights) @ self.to_output


class Convolution(ExactConstants):
    """Weighted coupling of a feature with one vector per row (spherical harmonics of an edge).

    The same map as :class:`Coupling` with a one-channel y, computed in the order that keeps
    the per-row intermediates smallest, as an edge convolution needs (rows are edges, the
    largest dimension of the model). With m1 the components of input degree l1 and p the paths from l1:

        M[n, :, (m1, p)] = sum_m2 C_p[m1, m2, :] y[n, m2]       one table product for all l1
        z[n, (m1, p), k] = w[n, p, k] x[n, m1, k]               one product per l1, C_l1 = (2 l1 + 1) P_l1 rows
        out[n, :, k]    += M[n, :, (m1, p)] z[n, (m1, p), k]    a batched (D_out x C_l1) (C_l1 x K) product per l1

    so the largest intermediates are (N, D_out, K) and (N, C_l1, K) (18 rows for l1 = 1, l2 <= 3),
    where :class:`Coupling` forms all path outputs (N, K, 40 columns for l1 <= 1, l2 <= 3) before
    summing them. Rows keep their
    components before their channels (the transpose of the (N, K, D) layout elsewhere), so that
    the radial weights (N, paths, K) and every operand are used without a copy.
    Shapes: x (N, D1, K), y (N, D2), weights (N, len(paths), K) -> (N, D_out, K).
    """

    def __init__(self, l1_max: int, l2_max: int, l_out_max: int):
        super().__init__()
        self.paths = natural_paths(l1_max, l2_max, l_out_max)
        if not self.paths:
            raise ValueError(f"no natural coupling of l <= {l1_max} and l <= {l2_max} reaches l <= {l_out_max}")
        d2, d_out = components(l2_max), components(l_out_max)
        scales = path_scales(self.paths)
        # natural_paths orders the paths by l1 first: those from one degree are consecutive
        self.paths_per_degree = [sum(p[0] == l1 for p in self.paths) for l1 in range(l1_max + 1)]
        # columns of M per input degree l1: (m1, path) m1-major, as z is laid out in dense()
        self.columns_per_degree = [(2 * l1 + 1) * self.paths_per_degree[l1] for l1 in range(l1_max + 1)]
        table = torch.zeros(d2, d_out, sum(self.columns_per_degree), dtype=torch.float64)
        column = 0
        for m1, l1 in ((m1, l1) for l1 in range(l1_max + 1) for m1 in range(l1**2, (l1 + 1) ** 2)):
            for (_, l2, l3), scale in ((p, s) for p, s in zip(self.paths, scales) if p[0] == l1):
                cg = clebsch_gordan(l1, l2, l3)[m1 - l1**2]  # (m2, m3)
                table[l2**2:(l2 + 1) ** 2, l3**2:(l3 + 1) ** 2, column] = scale * cg
                column += 1
        self.columns, self.d_out = column, d_out
        self.register_constant("table", table.reshape(d2, d_out * column))
        self.couplings = sparse_couplings(self.paths, l_out_max)

    def forward(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """:meth:`unrolled` when TorchDynamo traces the layer (torch.compile), :meth:`dense` otherwise."""
        form = self.unrolled if torch.compiler.is_dynamo_compiling() else self.dense
        return form(x, y, weights)

    def dense(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The product through the table M and batched matrix products (eager PyTorch and torch.export)."""
        # split (not sliced) operands: the backward of one split is one concatenation, where every slice
        # would add a zero-filled gradient of the whole tensor
        m = (y @ self.table).view(y.shape[0], self.d_out, self.columns).split(self.columns_per_degree, dim=2)
        w = weights.split(self.paths_per_degree, dim=1)  # (N, paths from l1, K)
        xs = x.split([2 * l1 + 1 for l1 in range(len(w))], dim=1)  # (N, 2 l1 + 1, K)
        out = None
        for l1, (m_l1, w_l1, x_l1) in enumerate(zip(m, w, xs)):
            if not self.paths_per_degree[l1]:
                continue
            # z[n, (m1, p), k] = w[n, p, k] x[n, m1, k]: one product per degree, the columns of m_l1
            z = (w_l1.unsqueeze(1) * x_l1.unsqueeze(2)).flatten(1, 2)
            # in place: a new sum would copy out once more (bmm's backward does not need its output)
            out = torch.bmm(m_l1, z) if out is None else out.baddbmm_(m_l1, z)
        return out

    def unrolled(self, x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """:meth:`dense` as a sum over the nonzero coefficients (the form torch.compile traces)."""
        xs, ys, ws = x.unbind(1), y.unsqueeze(-1).unbind(1), weights.unbind(1)  # ys: (N, 1) per component
        return torch.stack([_coupled(component, xs, ys, ws) for component in self.couplings], dim=1)


def _coupled(component: ComponentCouplings, xs, ys, ws) -> torch.Tensor:
    """One output component, sum_p ws[p] sum_m1 xs[m1] (sum_m2 c ys[m2]); zeros where no path reaches it."""
    total = None
    for p, by_m1 in component:
        inner = sum(xs[m1] * sum(c * ys[m2] for m2, c in pairs) for m1, pairs in by_m1)
        total = ws[p] * inner if total is None else total + ws[p] * inner
    return torch.zeros_like(xs[0]) if total is None else total


class IrrepsLinear(nn.Module):
    """Mix channels within each degree l (one K_in x K_out matrix per l; no bias, so equivariant).

    Degrees l <= min(l_in, l_out) are mapped; higher output degrees are zero.
    Shapes: (N, K_in, (l_in+1)^2) -> (N, K_out, (l_out+1)^2).
    """

    def __init__(self, k_in: int, k_out: int, l_in: int, l_out: int):
        super().__init__()
        self.l_common, self.l_out = min(l_in, l_out), l_out
        self.weight = nn.Parameter(torch.randn(self.l_common + 1, k_in, k_out) / math.sqrt(k_in))
        degree = torch.cat([torch.full((2 * l + 1,), l) for l in range(self.l_common + 1)])
        self.register_buffer("degree_of_component", degree, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = components(self.l_common)
        weight = self.weight.index_select(0, self.degree_of_component)  # (d, K_in, K_out)
        out = torch.einsum("nkd,dkj->njd", x[:, :, :d], weight)
        missing = components(self.l_out) - d
        return torch.nn.functional.pad(out, (0, missing)) if missing else out


class ElementIrrepsLinear(nn.Module):
    """:class:`IrrepsLinear` with its own weights for each element (a linear map of x (x) onehot(Z)).

    Shapes: x (N, K_in, (l_in+1)^2), species (N,) -> (N, K_out, (l_out+1)^2).
    """

    def __init__(self, k_in: int, k_out: int, l_in: int, l_out: int, n_elements: int):
        super().__init__()
        self.n_elements = n_elements
        self.linear = IrrepsLinear(k_in * n_elements, k_out, l_in, l_out)
        with torch.no_grad():  # each atom sees one element's block: keep the output scale of IrrepsLinear
            self.linear.weight.mul_(math.sqrt(n_elements))

    def forward(self, x: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        onehot = torch.nn.functional.one_hot(species, self.n_elements).to(x.dtype)
        expanded = (x.unsqueeze(2) * onehot[:, None, :, None]).reshape(x.shape[0], -1, x.shape[2])
        return self.linear(expanded)
