"""SpUNet: level layout, voxel hierarchy, alignment, gradients, determinism, CPU vs CUDA."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor

from geo3d.models.backbones.spunet import SpUNet
from geo3d.ops.sparse import SparseLevel
from geo3d.registry import MODELS
from geo3d.structures import PointBatch, pooling_map

SMALL = dict(base_channels=8, channels=(8, 16, 24, 24, 16, 8), layers=(1, 1, 1, 1, 1, 1),
             stem_kernel_size=3)


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def surface_sample(n: int, seed: int, c: int = 4) -> dict[str, Tensor]:
    """Points on a floor, two walls and a box (metres), with random features (n, c)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, generator=gen)
    which = torch.randint(0, 4, (n,), generator=gen)
    z = torch.zeros(n)
    pts = torch.stack([
        torch.stack([u[:, 0] * 2, u[:, 1] * 2, z], 1),            # floor 2 x 2
        torch.stack([u[:, 0] * 2, z, u[:, 1]], 1),                # wall y = 0
        torch.stack([z, u[:, 0] * 2, u[:, 1]], 1),                # wall x = 0
        torch.stack([0.8 + u[:, 0] * 0.4, 0.8 + u[:, 1] * 0.4, z + 0.4], 1),  # box top
    ], 0)[which, torch.arange(n)]
    pts = pts + 0.3 * seed  # samples at different places
    return {'coord': pts, 'feat': torch.randn(n, c, generator=gen)}


def make_batch(sizes: tuple[int, ...] = (1500, 1000), seed: int = 0, c: int = 4,
               shuffle: bool = True) -> PointBatch:
    """Voxelized (5 cm) batch; rows of each sample shuffled so the input is not sorted."""
    raw = PointBatch.collate([surface_sample(n, seed + i, c) for i, n in enumerate(sizes)])
    vox, _ = raw.grid_sample(0.05, mode='mean')
    if not shuffle:
        return vox
    gen = torch.Generator().manual_seed(seed + 100)
    samples = []
    for d in vox.split():
        perm = torch.randperm(d['coord'].shape[0], generator=gen)
        samples.append({k: v[perm] for k, v in d.items()})
    return PointBatch.collate(samples)


def sort_key(level: SparseLevel) -> Tensor:
    idx = level.indices.long()
    return ((idx[:, 0] * 2 ** 16 + idx[:, 1]) * 2 ** 16 + idx[:, 2]) * 2 ** 16 + idx[:, 3]


def sorted_level(level: SparseLevel) -> tuple[Tensor, Tensor]:
    order = torch.argsort(sort_key(level))
    return level.indices[order].cpu(), level.feat[order].cpu()


def test_levels_shapes_strides_channels() -> None:
    pb = make_batch()
    model = SpUNet(4, **SMALL)
    levels = model(pb)
    assert model.out_channels == [24, 24, 16, 8]
    assert model.out_strides == [8, 4, 2, 1]
    assert len(levels) == 4
    for lvl, c, s in zip(levels, model.out_channels, model.out_strides):
        assert isinstance(lvl, SparseLevel)
        assert lvl.stride == s
        assert lvl.feat.shape == (lvl.indices.shape[0], c)
        assert lvl.indices.shape[1] == 4 and lvl.indices.dtype == torch.int32
        assert lvl.grid_coord.dtype == torch.int64 and lvl.batch.dtype == torch.int64
        assert torch.isfinite(lvl.feat).all()
    counts = [lvl.num_voxels for lvl in levels]
    assert counts == sorted(counts) and counts[-1] == pb.num_points


def test_finest_level_aligned_with_input_rows() -> None:
    pb = make_batch(shuffle=True)
    levels = SpUNet(4, **SMALL)(pb)
    finest = levels[-1]
    assert torch.equal(finest.grid_coord, pb.grid_coord)
    assert torch.equal(finest.batch, pb.batch)


def test_level_voxels_are_floor_of_grid() -> None:
    pb = make_batch()
    levels = SpUNet(4, **SMALL)(pb)
    for lvl in levels:
        pm = pooling_map(pb.grid_coord, pb.batch, lvl.stride)
        for b in range(pb.batch_size):
            expected = {tuple(r) for r in pm.coarse_coord[pm.coarse_batch == b].tolist()}
            got_rows = lvl.grid_coord[lvl.batch == b].tolist()
            got = {tuple(r) for r in got_rows}
            assert len(got) == len(got_rows), f'stride {lvl.stride}: duplicate voxels'
            assert got == expected, f'stride {lvl.stride}, sample {b}'


def test_gradients_reach_every_parameter() -> None:
    pb = make_batch()
    model = SpUNet(4, **SMALL)
    levels = model(pb)
    gen = torch.Generator().manual_seed(0)
    loss = sum((lvl.feat * torch.randn(lvl.feat.shape, generator=gen)).sum() for lvl in levels)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_with_two_threads() -> None:
    pb = make_batch()
    model = SpUNet(4, **SMALL)
    a, b = model(pb), model(pb)
    for la, lb in zip(a, b):
        assert torch.equal(la.indices, lb.indices)
        assert torch.equal(la.feat, lb.feat)


def test_batch_independence_eval() -> None:
    both = make_batch((1200, 900), seed=3)
    alone = PointBatch.collate([both.split()[0]])
    model = SpUNet(4, **SMALL).double().eval()
    with torch.no_grad():
        lb = model(PointBatch(both.coord, both.feat.double(), both.offset, both.grid_coord))
        la = model(PointBatch(alone.coord, alone.feat.double(), alone.offset, alone.grid_coord))
    n0 = int(both.offset[0])
    torch.testing.assert_close(lb[-1].feat[:n0], la[-1].feat, rtol=0, atol=1e-12)
    for x, y in zip(lb, la):
        keep = x.batch == 0
        xi, xf = sorted_level(SparseLevel(x.feat[keep], x.indices[keep], x.stride))
        yi, yf = sorted_level(y)
        assert torch.equal(xi, yi)
        torch.testing.assert_close(xf, yf, rtol=0, atol=1e-12)


def test_duplicate_voxels_raise() -> None:
    pb = make_batch(shuffle=False)
    g = pb.grid_coord.clone()
    g[1] = g[0]  # same sample, same voxel
    dup = PointBatch(pb.coord, pb.feat, pb.offset, g)
    with pytest.raises(ValueError, match='voxelized'):
        SpUNet(4, **SMALL)(dup)
    with pytest.raises(ValueError, match='grid_coord is None'):
        SpUNet(4, **SMALL)(PointBatch(pb.coord, pb.feat, pb.offset))


def test_same_voxel_in_two_samples_is_fine() -> None:
    pb = make_batch(shuffle=False)
    n0 = int(pb.offset[0])
    g = pb.grid_coord.clone()
    g[n0] = g[0]  # different samples may share a grid coordinate
    levels = SpUNet(4, **SMALL)(PointBatch(pb.coord, pb.feat, pb.offset, g))
    assert torch.equal(levels[-1].grid_coord, g)


def test_bad_config_raises() -> None:
    with pytest.raises(ValueError):
        SpUNet(4, channels=(8, 16, 8))
    with pytest.raises(ValueError):
        SpUNet(4, channels=(8, 16, 16, 8), layers=(1, 1, 1))
    with pytest.raises(ValueError):
        SpUNet(4, channels=(8, 16, 16, 8), layers=(1, 1, 0, 1))


def test_default_config_smoke_via_registry() -> None:
    pb = make_batch((600, 400), c=6)
    model = MODELS.build(dict(type='SpUNet', in_channels=6))
    assert isinstance(model, SpUNet)
    assert model.out_channels == [256, 256, 128, 96, 96]
    assert model.out_strides == [16, 8, 4, 2, 1]
    levels = model(pb)
    assert [lvl.feat.shape[1] for lvl in levels] == model.out_channels
    assert [lvl.stride for lvl in levels] == model.out_strides
    assert torch.equal(levels[-1].grid_coord, pb.grid_coord)
    levels[-1].feat.sum().backward()
    assert model.stem.conv.weight.grad is not None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cpu_and_cuda_agree() -> None:
    torch.manual_seed(0)
    pb = make_batch((3000, 2000), c=6)
    cpu = SpUNet(6, base_channels=16, channels=(16, 32, 64, 64, 32, 16),
                 layers=(1, 2, 2, 1, 1, 1)).eval()
    # non-trivial BN statistics, so eval mode is not the identity
    for m in cpu.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    gpu = copy.deepcopy(cpu).cuda()
    with torch.no_grad():
        lc = cpu(pb)
        lg = gpu(pb.to('cuda'))
    # the finest level keeps the input row order on both devices
    assert torch.equal(lg[-1].indices.cpu(), lc[-1].indices)
    for a, b in zip(lc, lg):
        ai, af = sorted_level(a)
        bi, bf = sorted_level(b)
        assert torch.equal(ai, bi), f'stride {a.stride}: different voxels'
        torch.testing.assert_close(bf, af, rtol=1e-3, atol=1e-4, msg=f'stride {a.stride}')


def test_bn_momentum_is_configurable():
    from torch import nn

    from geo3d.models.backbones.spunet import SpUNet
    net = SpUNet(in_channels=3, channels=(8, 8), layers=(1, 1), bn_momentum=0.1)
    moms = {m.momentum for m in net.modules() if isinstance(m, nn.BatchNorm1d)}
    assert moms == {0.1}
    import pytest
    with pytest.raises(ValueError, match='bn_momentum'):
        SpUNet(in_channels=3, channels=(8, 8), layers=(1, 1), bn_momentum=0.0)
