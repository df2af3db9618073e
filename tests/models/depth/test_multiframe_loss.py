"""MultiFrameDepthLoss: masked reprojection + consistency, against hand computations."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geo3d.models.depth.multiframe_loss import (MASK_EPS, MultiFrameDepthLoss, masked_mean,
                                                reprojection_error)
from geo3d.models.depth.photometric import photometric_error
from geo3d.models.depth.smoothness import edge_aware_smoothness
from geo3d.structures.camera import disp_to_depth, warp

H, W = 16, 24


def setup(b: int = 2, dtype=torch.float32, seed: int = 0, size: tuple = (H, W)) -> dict:
    H, W = size
    g = torch.Generator().manual_seed(seed)
    K = torch.tensor([[0.6 * W, 0, W / 2, 0], [0, 1.9 * H, H / 2, 0], [0, 0, 1, 0],
                      [0, 0, 0, 1]], dtype=dtype).expand(b, 4, 4).clone()
    poses = {}
    for f, tx in ((-1, 0.1), (1, -0.08)):
        T = torch.eye(4, dtype=dtype).repeat(b, 1, 1)
        T[:, 0, 3], T[:, 2, 3] = tx, -0.2 * f
        poses[('T', f)] = T
    colors = {('color', f, 0): torch.rand(b, 3, H, W, generator=g, dtype=dtype)
              for f in (0, -1, 1)}
    disps = {('disp', s): torch.rand(b, 1, H >> s, W >> s, generator=g, dtype=dtype) * 0.5 + 0.1
             for s in (0, 1)}
    teacher = {('disp', s): torch.rand(b, 1, H >> s, W >> s, generator=g, dtype=dtype) * 0.5
               + 0.1 for s in (0, 1)}
    mask = torch.rand(b, 1, H, W, generator=g, dtype=dtype)
    return dict(disps=disps, colors=colors, poses=poses, K=K, inv_K=torch.linalg.inv(K),
                mask=mask, teacher=teacher)


def slow_min_pe(disp: torch.Tensor, d: dict) -> torch.Tensor:
    """Per-pixel min over sources of the photometric error, written out."""
    up = F.interpolate(disp, (H, W), mode='bilinear', align_corners=False)
    _, depth = disp_to_depth(up, 0.1, 100.0)
    errs = []
    for f in (-1, 1):
        warped, _ = warp(d['colors'][('color', f, 0)], depth, d['poses'][('T', f)], d['K'],
                         d['inv_K'])
        errs.append(photometric_error(warped, d['colors'][('color', 0, 0)]))
    return torch.minimum(errs[0], errs[1])


def test_masked_mean_is_sum_over_mask_sum():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    m = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    torch.testing.assert_close(masked_mean(x, m), torch.tensor(2.0 / (1.5 + MASK_EPS)))
    per_sample = torch.ones(1, 1, 1, 1)  # broadcast: every pixel of the sample counts
    torch.testing.assert_close(masked_mean(x, per_sample), torch.tensor(10.0 / (4 + MASK_EPS)))
    assert float(masked_mean(x, torch.zeros(1, 1, 1, 1))) == 0.0


def test_prodepth_weighted_loss_equals_the_hand_computation():
    """M = W [W > 0.4] (1 - aug); reprojection sum(pe M) / sum(M); 0.1 |s - s_t| on (1 - M)
    with the scale-0 scaled disparities, added at every scale; smoothness 1e-3 / 2^s."""
    d = setup()
    W_static = d['mask']
    aug = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    M = W_static * (W_static > 0.4).float() * (1 - aug)
    loss = MultiFrameDepthLoss(scales=(0, 1), consistency_weight=0.1,
                               consistency_on='disparity', consistency_scales='first')
    out = loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'], M, d['teacher'])
    s_m, _ = disp_to_depth(d['disps'][('disp', 0)], 0.1, 100.0)
    s_t, _ = disp_to_depth(d['teacher'][('disp', 0)], 0.1, 100.0)
    cons = ((s_m - s_t).abs() * (1 - M)).mean()
    total = 0.0
    for s in (0, 1):
        pe = slow_min_pe(d['disps'][('disp', s)], d)
        reproj = (pe * M).sum() / (M.sum() + 1e-7)
        torch.testing.assert_close(out[f'reprojection_s{s}'], reproj)
        img = d['colors'][('color', 0, 0)]
        if s:
            img = F.interpolate(img, (H >> s, W >> s), mode='bilinear', align_corners=False,
                                antialias=True)
        smooth = edge_aware_smoothness(d['disps'][('disp', s)], img)
        total = total + reproj + 0.1 * cons + 1e-3 * smooth / 2 ** s
    torch.testing.assert_close(out['loss'], total / 2)
    torch.testing.assert_close(out['consistency_s1'], cons)


def test_manydepth_consistency_is_on_depth_at_each_scale():
    d = setup()
    M = (d['mask'] > 0.5).float()
    loss = MultiFrameDepthLoss(scales=(0, 1), disparity_smoothness=0.0)
    out = loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'], M, d['teacher'])
    for s in (0, 1):
        up = {k: F.interpolate(v[('disp', s)], (H, W), mode='bilinear', align_corners=False)
              for k, v in (('m', d['disps']), ('t', d['teacher']))}
        ref = ((disp_to_depth(up['m'], 0.1, 100)[1] - disp_to_depth(up['t'], 0.1, 100)[1]).abs()
               * (1 - M)).mean()
        torch.testing.assert_close(out[f'consistency_s{s}'], ref)
    assert 'smoothness_s0' not in out


def test_a_fully_masked_batch_has_zero_reprojection_loss():
    d = setup()
    loss = MultiFrameDepthLoss(scales=(0, 1))
    out = loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'],
               torch.zeros(2, 1, 1, 1), d['teacher'])
    assert float(out['reprojection_s0']) == 0.0 and float(out['reprojection_s1']) == 0.0
    assert float(out['consistency_s0']) > 0


def test_reprojection_error_is_the_min_over_sources():
    d = setup()
    _, depth = disp_to_depth(d['disps'][('disp', 0)], 0.1, 100)
    srcs = {f: d['colors'][('color', f, 0)] for f in (-1, 1)}
    T = {f: d['poses'][('T', f)] for f in (-1, 1)}
    both = reprojection_error(depth, d['colors'][('color', 0, 0)], srcs, T, d['K'], d['inv_K'])
    one = [reprojection_error(depth, d['colors'][('color', 0, 0)], {f: srcs[f]}, {f: T[f]},
                              d['K'], d['inv_K']) for f in (-1, 1)]
    torch.testing.assert_close(both, torch.minimum(*one))


def test_gradcheck_float64():
    # 8 x 12: no sample lands exactly on a kink of the bilinear warp / border clamp
    d = setup(b=1, dtype=torch.float64, seed=3, size=(8, 12))
    loss = MultiFrameDepthLoss(scales=(0,), consistency_weight=0.5, consistency_on='disparity')
    disp = d['disps'][('disp', 0)].clone().requires_grad_(True)

    def f(x: torch.Tensor) -> torch.Tensor:
        return loss({('disp', 0): x}, d['colors'], d['poses'], d['K'], d['inv_K'], d['mask'],
                    d['teacher'])['loss']

    assert torch.autograd.gradcheck(f, (disp,), eps=1e-6, atol=1e-5)


def test_clear_errors():
    d = setup()
    loss = MultiFrameDepthLoss(scales=(0, 1))
    with pytest.raises(ValueError, match=r'mask must be \(2, 1, 16, 24\) or \(2, 1, 1, 1\)'):
        loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'], d['mask'][:, :, :8])
    with pytest.raises(ValueError, match='teacher_disps are needed'):
        loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'], d['mask'])
    del d['colors'][('color', 1, 0)]
    with pytest.raises(KeyError, match="source frame 1"):
        loss(d['disps'], d['colors'], d['poses'], d['K'], d['inv_K'], d['mask'], d['teacher'])
    with pytest.raises(ValueError, match="consistency_on must be 'depth' or 'disparity'"):
        MultiFrameDepthLoss(consistency_on='disp')
    with pytest.raises(ValueError, match='frame_ids must hold the target 0'):
        MultiFrameDepthLoss(frame_ids=(-1, 1))
