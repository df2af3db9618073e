"""Plane-sweep cost volume: bins, matching on a synthetic plane, masking, averaging, gradients."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geo3d.models.depth.cost_volume import PlaneSweepCostVolume, depth_bins
from geo3d.registry import MODELS

F64 = torch.float64


def intrinsics(h: int, w: int, f: float) -> torch.Tensor:
    """(1, 4, 4) pixel intrinsics with the principal point at the image centre."""
    K = torch.eye(4, dtype=F64)
    K[0, 0] = K[1, 1] = f
    K[0, 2], K[1, 2] = (w - 1) / 2, (h - 1) / 2
    return K[None]


def translation(tx: float, ty: float, tz: float) -> torch.Tensor:
    T = torch.eye(4, dtype=F64)
    T[:3, 3] = torch.tensor([tx, ty, tz], dtype=F64)
    return T


def plane_scene(t: tuple[float, float, float], depth: float, h: int = 24, w: int = 48,
                f: float = 20.0, channels: int = 8):
    """Target features = smooth random texture; source = the same texture seen after moving the
    camera by ``t`` (target->source, pure translation) with a fronto-parallel plane at ``depth``.

    Source pixel p' sees the plane point ``X_src = (depth + tz) K^-1 p'``, i.e. the target pixel
    ``K (X_src - t)``; the texture is evaluated there analytically (no resampling).
    """
    gen = torch.Generator().manual_seed(1)
    ang = torch.rand(channels, generator=gen, dtype=F64) * 2 * math.pi
    mag = 0.3 + 0.3 * torch.rand(channels, generator=gen, dtype=F64)
    phase = torch.rand(channels, generator=gen, dtype=F64) * 2 * math.pi

    def tex(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = (mag * torch.cos(ang)).view(-1, 1, 1), (mag * torch.sin(ang)).view(-1, 1, 1)
        return torch.sin(a * x + b * y + phase.view(-1, 1, 1))

    K = intrinsics(h, w, f)
    cx, cy = K[0, 0, 2], K[0, 1, 2]
    v, u = torch.meshgrid(torch.arange(h, dtype=F64), torch.arange(w, dtype=F64), indexing='ij')
    zs = depth + t[2]
    X, Y, Z = zs * (u - cx) / f - t[0], zs * (v - cy) / f - t[1], zs - t[2]
    src = tex(f * X / Z + cx, f * Y / Z + cy)
    return (tex(u, v)[None], src[None, None], translation(*t)[None, None], K,
            torch.linalg.inv(K))


def flow(t: tuple[float, float, float], depth: torch.Tensor, h: int, w: int,
         f: float) -> torch.Tensor:
    """(..., h, w, 2) source pixel of every target pixel for plane depth(s) ``depth`` (...)."""
    v, u = torch.meshgrid(torch.arange(h, dtype=F64), torch.arange(w, dtype=F64), indexing='ij')
    d = depth.reshape(*depth.shape, 1, 1)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    X, Y, Z = d * (u - cx) / f + t[0], d * (v - cy) / f + t[1], d + t[2]
    return torch.stack([f * X / Z + cx, f * Y / Z + cy], -1)


# --------------------------------------------------------------------------- bins


@pytest.mark.parametrize('binning', ['linear', 'log', 'inverse'])
def test_depth_bins_closed_form(binning: str) -> None:
    lo, hi, d = 0.1, 20.0, 7
    i = np.arange(d) / (d - 1)
    want = {'linear': lo + (hi - lo) * i,
            'log': np.exp(np.log(lo) + np.log(hi / lo) * i),
            'inverse': 1 / (1 / lo + (1 / hi - 1 / lo) * i)}[binning]
    got = depth_bins(torch.tensor(lo, dtype=F64), torch.tensor(hi, dtype=F64), d, binning)
    assert got.shape == (d,) and got.dtype == F64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert got[0] == lo and got[-1] == hi and bool((got.diff() > 0).all())
    f32 = depth_bins(lo, hi, d, binning)
    assert f32.dtype == torch.float32 and f32.shape == (d,)
    # per-sample ranges -> (B, D)
    los, his = torch.tensor([0.1, 1.0], dtype=F64), torch.tensor([20.0, 5.0], dtype=F64)
    batched = depth_bins(los, his, d, binning)
    assert batched.shape == (2, d)
    for b in range(2):
        torch.testing.assert_close(batched[b], depth_bins(los[b], his[b], d, binning))
    if binning == 'log':  # log-uniform: constant ratio between neighbours
        ratios = got[1:] / got[:-1]
        torch.testing.assert_close(ratios, torch.full_like(ratios, (hi / lo) ** (1 / (d - 1))))


def test_depth_bins_bad_arguments() -> None:
    with pytest.raises(ValueError, match='binning'):
        depth_bins(0.1, 10.0, 8, 'sid')
    with pytest.raises(ValueError, match='num_bins'):
        depth_bins(0.1, 10.0, 1)
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        depth_bins(2.0, 1.0, 8)
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        depth_bins(torch.tensor([0.1, 0.0]), torch.tensor([1.0, 1.0]), 8)
    with pytest.raises(ValueError, match='scalars or'):
        depth_bins(torch.ones(2, 2) * 0.1, 1.0, 8)


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize('binning,lo,hi,num_bins,depth', [
    ('linear', 1.0, 10.0, 10, 3.05), ('log', 1.0, 16.0, 9, 4.1)])
@pytest.mark.parametrize('t', [(0.5, 0.0, 0.0), (0.0, 0.0, 3.0), (0.3, -0.1, 2.0)],
                         ids=['stereo_x', 'forward', 'mixed'])
def test_minimum_at_the_true_depth(binning: str, lo: float, hi: float, num_bins: int,
                                   depth: float, t: tuple[float, float, float]) -> None:
    h, w, f = 24, 48, 20.0
    tgt, src, poses, K, inv_K = plane_scene(t, depth, h, w, f)
    cv = PlaneSweepCostVolume(num_bins=num_bins, binning=binning, min_depth_bin=lo,
                              max_depth_bin=hi).double()
    out = cv(tgt, src, poses, K, inv_K)
    assert out.cost.shape == out.raw.shape == (1, num_bins, h, w)
    assert out.confidence.shape == (1, 1, h, w)
    bins = out.bins
    k = int((bins - depth).abs().argmin())
    # pixels where every other bin moves the sample by > 0.4 px: the match is unambiguous
    # (near the epipole of a forward motion no bin can be told apart)
    pix = flow(t, bins, h, w, f)
    shift = (pix - pix[k]).norm(dim=-1)  # (D, h, w)
    shift[k] = float('inf')
    informative = (shift.amin(0) > 0.4) & out.confidence[0, 0].bool()
    assert informative.float().mean() > 0.3
    best = PlaneSweepCostVolume.argmin_depth(out.cost, bins)[0, 0]
    assert bool((best[informative] == bins[k]).all())
    # far from the true bin the cost is clearly larger than at it
    assert float(out.cost[0, k][informative].mean()) < 0.3 * float(
        out.cost[0, [0, -1]][:, informative].mean())


# --------------------------------------------------------------------------- slow reference


def bilinear_zeros(feat: np.ndarray, x: float, y: float) -> np.ndarray:
    """(C, H, W) sampled at pixel (x, y), align_corners=True, zero padding."""
    c, h, w = feat.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = np.zeros(c)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= xx < w and 0 <= yy < h:
                out += wx * wy * feat[:, yy, xx]
    return out


def reference_volume(tgt, srcs, poses, K, bins, border):
    """Obvious per-pixel, per-bin, per-source loops for one sample (numpy float64)."""
    c, h, w = tgt.shape
    d = len(bins)
    Kinv = np.linalg.inv(K)
    total, count = np.zeros((d, h, w)), np.zeros((d, h, w))
    for s in range(len(srcs)):
        if not np.any(poses[s]):
            continue
        for k in range(d):
            for v in range(h):
                for u in range(w):
                    if not (border <= u < w - border and border <= v < h - border):
                        continue
                    X = np.append(bins[k] * (Kinv[:3, :3] @ np.array([u, v, 1.0])), 1.0)
                    p = (K @ poses[s] @ X)[:3]
                    if p[2] <= 1e-7:
                        continue
                    x, y = p[0] / (p[2] + 1e-7), p[1] / (p[2] + 1e-7)
                    if not (border <= x <= w - 1 - border and border <= y <= h - 1 - border):
                        continue
                    total[k, v, u] += np.abs(bilinear_zeros(srcs[s], x, y) - tgt[:, v, u]).mean()
                    count[k, v, u] += 1
    raw = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    cost = np.where(count > 0, raw, raw.max(0, keepdims=True))
    return cost, raw, (count > 0).all(0).astype(float)


def random_pose(gen: torch.Generator, scale: float = 0.3) -> torch.Tensor:
    from geo3d.structures.camera import pose_vec_to_matrix
    aa = (torch.rand(1, 3, generator=gen, dtype=F64) - 0.5) * 0.1
    t = (torch.rand(1, 3, generator=gen, dtype=F64) - 0.5) * 2 * scale
    return pose_vec_to_matrix(aa, t)[0]


def test_matches_slow_reference_with_masking_and_missing_source() -> None:
    gen = torch.Generator().manual_seed(0)
    b, n, c, h, w = 2, 3, 3, 7, 9
    tgt = torch.rand(b, c, h, w, generator=gen, dtype=F64)
    src = torch.rand(b, n, c, h, w, generator=gen, dtype=F64)
    poses = torch.stack([torch.stack([random_pose(gen) for _ in range(n)]) for _ in range(b)])
    poses[0, 1] = 0  # missing source of sample 0
    poses[1, 0, :3, 3] = torch.tensor([1.5, 0.0, 0.0])  # large x-shift: many samples leave
    K = intrinsics(h, w, 6.0).expand(b, 4, 4)
    cv = PlaneSweepCostVolume(num_bins=5, binning='inverse', min_depth_bin=0.5,
                              max_depth_bin=4.0).double()
    out = cv(tgt, src, poses, K, torch.linalg.inv(K))
    for i in range(b):
        cost, raw, conf = reference_volume(tgt[i].numpy(), src[i].numpy(), poses[i].numpy(),
                                           K[i].numpy(), out.bins.numpy(), border=2)
        np.testing.assert_allclose(out.raw[i].numpy(), raw, atol=1e-12)
        np.testing.assert_allclose(out.cost[i].numpy(), cost, atol=1e-12)
        np.testing.assert_array_equal(out.confidence[i, 0].numpy(), conf)
    # the test exercises partly-empty pixels: some bins empty, others not
    empty = out.raw == 0
    partial = empty.any(1) & ~empty.all(1)
    assert bool(partial.any())
    # a partly-empty pixel has confidence 0 and its empty bins hold its largest cost
    bi, vi, ui = [int(x[0]) for x in partial.nonzero(as_tuple=True)]
    pixel = out.cost[bi, :, vi, ui]
    assert out.confidence[bi, 0, vi, ui] == 0
    assert bool((pixel[empty[bi, :, vi, ui]] == out.raw[bi, :, vi, ui].max()).all())
    # the border frame of the target is empty in every bin
    assert bool((out.raw[..., :2, :] == 0).all() and (out.raw[..., -2:] == 0).all())
    assert bool((out.confidence[..., :2, :] == 0).all())
    # the chunking is a memory knob only
    small = PlaneSweepCostVolume(num_bins=5, binning='inverse', min_depth_bin=0.5,
                                 max_depth_bin=4.0, chunk_elements=1).double()
    out1 = small(tgt, src, poses, K, torch.linalg.inv(K))
    torch.testing.assert_close(out1.cost, out.cost, rtol=0, atol=1e-14)


def test_pixel_projecting_outside_everywhere() -> None:
    """Sideways shift larger than the image: no bin of any pixel has a valid sample."""
    tgt, src, poses, K, inv_K = plane_scene((0.5, 0.0, 0.0), 3.0, 12, 16, 20.0, 2)
    poses = poses.clone()
    poses[..., 0, 3] = 100.0
    out = PlaneSweepCostVolume(num_bins=4, min_depth_bin=1.0, max_depth_bin=4.0).double()(
        tgt, src, poses, K, inv_K)
    assert bool((out.raw == 0).all() and (out.cost == 0).all() and (out.confidence == 0).all())


def test_missing_sources_and_averaging() -> None:
    gen = torch.Generator().manual_seed(2)
    c, h, w = 4, 10, 14
    tgt = torch.rand(1, c, h, w, generator=gen, dtype=F64)
    src = torch.rand(1, 2, c, h, w, generator=gen, dtype=F64)
    poses = torch.stack([random_pose(gen, 0.2), random_pose(gen, 0.2)])[None]
    K = intrinsics(h, w, 8.0)
    inv_K = torch.linalg.inv(K)
    cv = PlaneSweepCostVolume(num_bins=6, binning='log', min_depth_bin=0.5,
                              max_depth_bin=8.0).double()
    both = cv(tgt, src, poses, K, inv_K)
    one = [cv(tgt, src[:, i:i + 1], poses[:, i:i + 1], K, inv_K) for i in range(2)]
    # where both sources are valid, the volume is the mean of the single-source volumes
    valid = [o.raw > 0 for o in one]
    both_valid = valid[0] & valid[1]
    assert both_valid.float().mean() > 0.2
    torch.testing.assert_close(both.raw[both_valid],
                               ((one[0].raw + one[1].raw) / 2)[both_valid])
    # where only one is valid, it is that source's cost
    only0 = valid[0] & ~valid[1]
    assert bool(only0.any())
    torch.testing.assert_close(both.raw[only0], one[0].raw[only0])
    # an all-zero pose is a missing source: same as not passing it
    skipped = poses.clone()
    skipped[0, 1] = 0
    out = cv(tgt, src, skipped, K, inv_K)
    torch.testing.assert_close(out.raw, one[0].raw)
    torch.testing.assert_close(out.cost, one[0].cost)
    # every source missing (first frame of a video): an all-zero volume, as ManyDepth
    out = cv(tgt, src, torch.zeros_like(poses), K, inv_K)
    assert bool((out.cost == 0).all() and (out.raw == 0).all() and (out.confidence == 0).all())


def test_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    c, h, w = 2, 6, 7
    tgt = torch.rand(1, c, h, w, generator=gen, dtype=F64).requires_grad_()
    src = torch.rand(1, 2, c, h, w, generator=gen, dtype=F64).requires_grad_()
    poses = torch.stack([random_pose(gen, 0.1), random_pose(gen, 0.1)])[None]
    K = intrinsics(h, w, 5.0)
    cv = PlaneSweepCostVolume(num_bins=3, min_depth_bin=1.0, max_depth_bin=3.0, border=1).double()

    def f(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = cv(t, s, poses, K, torch.linalg.inv(K))
        return out.raw

    assert torch.autograd.gradcheck(f, (tgt, src))
    assert torch.autograd.gradcheck(lambda t, s: cv(t, s, poses, K, torch.linalg.inv(K)).cost,
                                    (tgt, src))


# --------------------------------------------------------------------------- range, API


def test_update_range_ema() -> None:
    cv = PlaneSweepCostVolume(min_depth_bin=0.1, max_depth_bin=10.0, momentum=0.99,
                              min_floor=0.1)
    depth = torch.ones(2, 1, 3, 4)
    depth[0, 0, 0, 0], depth[0, 0, 1, 1] = 2.0, 30.0  # image 0: min 1 (ones), max 30
    depth[1] = 5.0
    depth[1, 0, 2, 3] = 0.5  # image 1: min 0.5, max 5
    cv.update_range(depth)
    new_min = max(0.1, 0.9 * (1.0 + 0.5) / 2)
    new_max = 1.1 * (30.0 + 5.0) / 2
    assert float(cv.min_depth_bin) == pytest.approx(0.99 * 0.1 + 0.01 * new_min, rel=1e-6)
    assert float(cv.max_depth_bin) == pytest.approx(0.99 * 10.0 + 0.01 * new_max, rel=1e-6)
    # the floor
    cv2 = PlaneSweepCostVolume(min_depth_bin=0.1, max_depth_bin=10.0, min_floor=0.2)
    cv2.update_range(torch.full((1, 1, 2, 2), 0.01))
    assert float(cv2.min_depth_bin) == pytest.approx(0.99 * 0.1 + 0.01 * 0.2, rel=1e-6)
    # the bins follow the buffers; the range is saved in checkpoints
    torch.testing.assert_close(cv.bins(), depth_bins(cv.min_depth_bin, cv.max_depth_bin, 96))
    state = cv.state_dict()
    assert set(state) == {'min_depth_bin', 'max_depth_bin'}
    fresh = PlaneSweepCostVolume()
    fresh.load_state_dict(state)
    assert float(fresh.min_depth_bin) == float(cv.min_depth_bin)
    # fixed range: a no-op
    fixed = PlaneSweepCostVolume(adaptive_range=False, min_depth_bin=0.12, max_depth_bin=6.92)
    fixed.update_range(depth)
    assert float(fixed.min_depth_bin) == pytest.approx(0.12)
    assert float(fixed.max_depth_bin) == pytest.approx(6.92)


def test_argmin_depth_and_registry() -> None:
    cost = torch.tensor([[3.0, 1.0, 2.0], [0.5, 4.0, 1.0]]).reshape(2, 3, 1, 1)
    bins = torch.tensor([1.0, 2.0, 4.0])
    assert PlaneSweepCostVolume.argmin_depth(cost, bins).flatten().tolist() == [2.0, 1.0]
    per_sample = torch.tensor([[1.0, 2.0, 4.0], [10.0, 20.0, 40.0]])
    assert PlaneSweepCostVolume.argmin_depth(cost, per_sample).flatten().tolist() == [2.0, 10.0]
    cv = MODELS.build(dict(type='PlaneSweepCostVolume', num_bins=8, binning='log'))
    assert isinstance(cv, PlaneSweepCostVolume) and cv.bins().shape == (8,)
    # per-sample bins passed to forward
    tgt, src, poses, K, inv_K = plane_scene((0.5, 0.0, 0.0), 3.0, 8, 12, 10.0, 2)
    out = cv.double()(tgt, src, poses, K, inv_K, bins=per_sample[:1].double())
    assert out.bins.shape == (1, 3) and out.cost.shape == (1, 3, 8, 12)


def test_bad_input() -> None:
    cv = PlaneSweepCostVolume(num_bins=4)
    tgt, src = torch.rand(2, 3, 6, 8), torch.rand(2, 2, 3, 6, 8)
    poses, K = torch.eye(4).expand(2, 2, 4, 4), intrinsics(6, 8, 5.0).float().expand(2, 4, 4)
    with pytest.raises(ValueError, match='target_feat must be'):
        cv(tgt[0], src, poses, K, K)
    with pytest.raises(ValueError, match='source_feats must be'):
        cv(tgt, src[:, :, :2], poses, K, K)
    with pytest.raises(ValueError, match='source_feats must be'):
        cv(tgt, src[:1], poses, K, K)
    with pytest.raises(ValueError, match='poses must be'):
        cv(tgt, src, poses[:, :1], K, K)
    with pytest.raises(ValueError, match='inv_K must be'):
        cv(tgt, src, poses, K, K[:, :3, :3])
    with pytest.raises(ValueError, match='bins must be'):
        cv(tgt, src, poses, K, K, bins=torch.rand(3, 4))
    with pytest.raises(ValueError, match='teacher_depth'):
        cv.update_range(torch.rand(2, 6, 8))
    with pytest.raises(ValueError, match='cost must be'):
        PlaneSweepCostVolume.argmin_depth(torch.rand(4, 6, 8), torch.rand(4))
    with pytest.raises(ValueError, match='bins must be'):
        PlaneSweepCostVolume.argmin_depth(torch.rand(2, 4, 6, 8), torch.rand(5))
    with pytest.raises(ValueError, match='momentum'):
        PlaneSweepCostVolume(momentum=1.5)
    with pytest.raises(ValueError, match='min_depth < max_depth'):
        PlaneSweepCostVolume(min_depth_bin=5.0, max_depth_bin=1.0)
