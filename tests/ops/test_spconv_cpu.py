"""spconv layers on CPU (with geo3d's fixes) against dense PyTorch references, 2 threads.

Each check runs several times: the unfixed scatter-add races under OpenMP and gives different
wrong answers from run to run.
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from geo3d.ops.sparse import spconv, to_sparse_tensor
from geo3d.ops.spconv_cpu import apply_spconv_cpu_fixes

B, S, CI, CO = 2, 12, 5, 7
RUNS = 5


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def random_voxels(n: int, size: int = S, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Unique random voxels: grid (M, 3) int64 in [0, size), batch (M,) int64 in [0, B)."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.randint(0, size, (n, 3), generator=gen)
    b = torch.randint(0, B, (n,), generator=gen)
    key = ((b * size + g[:, 0]) * size + g[:, 1]) * size + g[:, 2]
    _, inv = torch.unique(key, return_inverse=True)
    first = torch.full((int(inv.max()) + 1,), n).scatter_reduce(0, inv, torch.arange(n), 'amin')
    perm = torch.randperm(first.numel(), generator=gen)  # unsorted row order
    return g[first[perm]], b[first[perm]]


def to_dense(feat: Tensor, grid: Tensor, batch: Tensor, size: int) -> Tensor:
    """(M, C) rows -> (B, C, size, size, size) dense volume, zeros elsewhere (differentiable)."""
    d = feat.new_zeros(B, size, size, size, feat.shape[1])
    d = d.index_put((batch, grid[:, 0], grid[:, 1], grid[:, 2]), feat)
    return d.permute(0, 4, 1, 2, 3)


def at_sites(dense: Tensor, grid: Tensor, batch: Tensor) -> Tensor:
    """(B, C, X, Y, Z) -> (M, C) values at the given sites."""
    return dense.permute(0, 2, 3, 4, 1)[batch, grid[:, 0], grid[:, 1], grid[:, 2]]


def compare(sparse_fn: Callable[[Tensor], tuple[Tensor, Tensor]],
            dense_fn: Callable[[Tensor], Tensor], x: Tensor, weight: Tensor) -> None:
    """Forward and backward (dx, dW) of sparse vs dense, ``RUNS`` times.

    sparse_fn(x) -> (out_feat (M, C), out_indices (M, 4)); dense_fn(x) -> dense output volume.
    """
    x = x.detach().requires_grad_()
    ref = None
    for run in range(RUNS):
        out, idx = sparse_fn(x)
        if ref is None:
            gen = torch.Generator().manual_seed(1)
            grad_out = torch.randn(out.shape, generator=gen, dtype=out.dtype)
            g, b = idx[:, 1:].long(), idx[:, 0].long()
            exp = at_sites(dense_fn(x), g, b)
            dx_ref, dw_ref = torch.autograd.grad((exp * grad_out).sum(), (x, weight))
            ref = exp.detach()
        dx, dw = torch.autograd.grad((out * grad_out).sum(), (x, weight))
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-10, msg=f'forward, run {run}')
        torch.testing.assert_close(dx, dx_ref, rtol=0, atol=1e-10, msg=f'dx, run {run}')
        torch.testing.assert_close(dw, dw_ref, rtol=0, atol=1e-10, msg=f'dW, run {run}')


def test_fixes_idempotent() -> None:
    import spconv.pytorch.ops as ops
    before = ops.SpconvOps
    apply_spconv_cpu_fixes()
    apply_spconv_cpu_fixes()
    assert ops.SpconvOps is before
    assert type(before).__name__ == '_CpuSafeSpconvOps'


def test_stream_lookup_without_cuda() -> None:
    import spconv.pytorch.cppcore as cppcore
    import spconv.pytorch.ops as ops
    assert ops.get_current_stream is cppcore.get_current_stream
    if torch.cuda.is_available():
        assert ops.get_current_stream() == torch.cuda.current_stream().cuda_stream
    else:
        assert ops.get_current_stream() == 0


def test_submconv3d_matches_dense() -> None:
    g, b = random_voxels(900)
    torch.manual_seed(0)
    conv = spconv.SubMConv3d(CI, CO, 3, padding=1, bias=False, indice_key='s').double()
    x = torch.randn(g.shape[0], CI, dtype=torch.float64)

    def sparse_fn(x: Tensor) -> tuple[Tensor, Tensor]:
        t = to_sparse_tensor(x, g, b, B, [S] * 3)
        y = conv(t)
        assert torch.equal(y.indices, t.indices)  # SubM keeps the input sites and order
        return y.features, y.indices

    def dense_fn(x: Tensor) -> Tensor:  # spconv weight (Co, k, k, k, Ci) -> (Co, Ci, k, k, k)
        return F.conv3d(to_dense(x, g, b, S), conv.weight.permute(0, 4, 1, 2, 3), padding=1)

    compare(sparse_fn, dense_fn, x, conv.weight)


def test_sparseconv3d_k2s2_matches_dense() -> None:
    g, b = random_voxels(900)
    torch.manual_seed(0)
    conv = spconv.SparseConv3d(CI, CO, 2, stride=2, bias=False).double()
    x = torch.randn(g.shape[0], CI, dtype=torch.float64)

    def sparse_fn(x: Tensor) -> tuple[Tensor, Tensor]:
        y = conv(to_sparse_tensor(x, g, b, B, [S] * 3))
        # output sites are exactly the unique (batch, floor(grid / 2))
        key = lambda bb, gg: set(zip(bb.tolist(), *gg.T.tolist()))  # noqa: E731
        half = torch.div(g, 2, rounding_mode='floor')
        assert key(y.indices[:, 0], y.indices[:, 1:]) == key(b, half)
        assert y.indices.shape[0] == len(key(y.indices[:, 0], y.indices[:, 1:]))
        return y.features, y.indices

    def dense_fn(x: Tensor) -> Tensor:
        return F.conv3d(to_dense(x, g, b, S), conv.weight.permute(0, 4, 1, 2, 3), stride=2)

    compare(sparse_fn, dense_fn, x, conv.weight)


def test_sparse_inverse_conv3d_matches_dense() -> None:
    g, b = random_voxels(900)
    torch.manual_seed(0)
    down = spconv.SparseConv3d(CI, CO, 2, stride=2, bias=False, indice_key='d').double()
    up = spconv.SparseInverseConv3d(CO, CI, 2, bias=False, indice_key='d').double()
    x0 = torch.randn(g.shape[0], CI, dtype=torch.float64)
    with torch.no_grad():
        coarse = down(to_sparse_tensor(x0, g, b, B, [S] * 3))
    gc, bc = coarse.indices[:, 1:].long(), coarse.indices[:, 0].long()
    x = torch.randn(gc.shape[0], CO, dtype=torch.float64)

    def sparse_fn(x: Tensor) -> tuple[Tensor, Tensor]:
        y = up(coarse.replace_feature(x))
        # the inverse conv restores the fine sites in their original row order
        assert torch.equal(y.indices, torch.cat([b[:, None], g], 1).int())
        return y.features, y.indices

    def dense_fn(x: Tensor) -> Tensor:  # (Co', k, k, k, Ci') -> conv_transpose (Ci', Co', k, k, k)
        return F.conv_transpose3d(to_dense(x, gc, bc, S // 2), up.weight.permute(4, 0, 1, 2, 3),
                                  stride=2)

    compare(sparse_fn, dense_fn, x, up.weight)


def test_maxpool_matches_dense() -> None:
    """SparseMaxPool3d's CPU kernels have no thread race (positive inputs; see below)."""
    g, b = random_voxels(6000, size=24)
    x0 = torch.rand(g.shape[0], 16, dtype=torch.float64) + 0.1
    pool = spconv.SparseMaxPool3d(2, 2)
    x = x0.clone().requires_grad_()
    for run in range(RUNS):
        y = pool(to_sparse_tensor(x, g, b, B, [24] * 3))
        gy, by = y.indices[:, 1:].long(), y.indices[:, 0].long()
        grad_out = torch.randn(y.features.shape, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(run))
        dx, = torch.autograd.grad((y.features * grad_out).sum(), x)
        ref = at_sites(F.max_pool3d(to_dense(x, g, b, 24), 2, 2), gy, by)
        dx_ref, = torch.autograd.grad((ref * grad_out).sum(), x)
        torch.testing.assert_close(y.features, ref, rtol=0, atol=0, msg=f'run {run}')
        torch.testing.assert_close(dx, dx_ref, rtol=0, atol=0, msg=f'run {run}')


def test_maxpool_starts_from_zero() -> None:
    """Documented quirk (CPU and GPU alike): spconv's max-pool returns max(0, inputs)."""
    g = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])
    x = -torch.rand(8, 1) - 0.1
    y = spconv.SparseMaxPool3d(2, 2)(to_sparse_tensor(x, g, torch.zeros(8, dtype=torch.long), 1))
    assert y.features.item() == 0.0


def test_to_sparse_tensor_shape_and_errors() -> None:
    g = torch.tensor([[0, 1, 2], [4, 0, 1]])
    b = torch.tensor([0, 1])
    t = to_sparse_tensor(torch.zeros(2, 3), g, b, 2)
    assert t.spatial_shape == [5, 2, 3] and t.indices.dtype == torch.int32
    assert t.indices.tolist() == [[0, 0, 1, 2], [1, 4, 0, 1]]
    assert to_sparse_tensor(torch.zeros(2, 3), g, b, 2, shape_multiple=4).spatial_shape == [8, 4, 4]
    with pytest.raises(ValueError, match='non-negative'):
        to_sparse_tensor(torch.zeros(2, 3), -g, b, 2)
    with pytest.raises(ValueError, match='spatial_shape'):
        to_sparse_tensor(torch.zeros(2, 3), g, b, 2, spatial_shape=[4, 4, 4])
