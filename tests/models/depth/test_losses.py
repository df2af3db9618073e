"""MonocularDepthLoss on an analytic rigid scene: ground truth reprojects, wrong depth does not."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geo3d.models.depth.losses import MonocularDepthLoss
from geo3d.structures.camera import depth_to_disp, pose_vec_to_matrix
from tests.structures.synthetic_views import pixel_intrinsics, render_plane

H, W = 24, 32
SCALES = (0, 1, 2, 3)
# per batch item and source frame: (axis-angle, translation) of target -> source
MOTION = {-1: [((0.0, 0.02, 0.0), (-0.1, 0.0, -0.12)), ((0.01, -0.01, 0.0), (0.08, 0.02, -0.1))],
          1: [((0.0, -0.02, 0.01), (0.1, 0.01, 0.12)), ((-0.01, 0.01, 0.0), (-0.06, 0.0, 0.1))]}


def scene(dtype: torch.dtype = torch.float32):
    """colors, GT sigmoid disparities per scale, pose parameters, K, inv_K for B = 2."""
    K = pixel_intrinsics(H, W)
    eye = torch.eye(4, dtype=torch.float64)
    tgt, depth = render_plane(K, eye, H, W)
    colors = {('color', 0, 0): torch.stack([tgt, tgt]).to(dtype)}
    params = {}
    for f, motions in MOTION.items():
        a = torch.tensor([m[0] for m in motions], dtype=dtype).view(2, 1, 3)
        t = torch.tensor([m[1] for m in motions], dtype=dtype).view(2, 1, 3)
        params[f] = (a, t)
        T = pose_vec_to_matrix(a.double(), t.double())
        colors[('color', f, 0)] = torch.stack(
            [render_plane(K, T[i], H, W)[0] for i in range(2)]).to(dtype)
    # the plane's inverse depth is affine in the pixel coordinates, so block averages
    # (area downsampling) are the exact values at each scale's pixel centres
    disp0 = depth_to_disp(depth[None].expand(2, 1, H, W), 0.1, 100.0)
    disps = {('disp', s): F.interpolate(disp0, scale_factor=0.5 ** s, mode='area').to(dtype)
             for s in SCALES}
    return colors, disps, params, K.to(dtype), torch.linalg.inv(K).to(dtype)


def poses_from(params):
    return {('T', f): pose_vec_to_matrix(a, t) for f, (a, t) in params.items()}


def test_ground_truth_reprojects_and_wrong_depth_does_not() -> None:
    torch.manual_seed(0)
    colors, disps, params, K, inv_K = scene()
    loss_fn = MonocularDepthLoss(scales=SCALES)
    gt, vis = loss_fn.forward_with_visuals(disps, colors, poses_from(params), K, inv_K)
    assert set(gt) == {'loss'} | {f'{k}_s{s}' for k in ('reprojection', 'smoothness')
                                  for s in SCALES}
    assert [k for k in gt if 'loss' in k] == ['loss']  # mmengine sums only this one
    identity = loss_fn.forward(disps, colors, {('T', f): torch.eye(4).expand(2, 4, 4)
                                               for f in (-1, 1)}, K, inv_K)
    wrong = loss_fn.forward({k: 0.6 * d for k, d in disps.items()}, colors, poses_from(params),
                            K, inv_K)
    for s in SCALES:
        # measured: GT 3.3e-4 at every scale, 0.6 x disparity 1.2e-2, identity poses 2.7e-2
        assert float(gt[f'reprojection_s{s}']) < 2e-3
        assert float(wrong[f'reprojection_s{s}']) > 10 * float(gt[f'reprojection_s{s}'])
        assert float(identity[f'reprojection_s{s}']) > 20 * float(gt[f'reprojection_s{s}'])
    assert float(gt['loss']) < 0.1 * float(wrong['loss'])
    # total = mean over scales of reprojection + 1e-3 * smoothness / 2**s
    expected = sum(gt[f'reprojection_s{s}'] + 1e-3 * gt[f'smoothness_s{s}'] / 2 ** s
                   for s in SCALES) / len(SCALES)
    torch.testing.assert_close(gt['loss'], expected)
    # with the true geometry the warped sources win almost everywhere (auto-mask keeps them)
    assert float(vis[('automask', 0)].float().mean()) > 0.8
    assert vis[('warped', -1, 0)].shape == (2, 3, H, W)
    assert vis[('depth', 2)].shape == (2, 1, H, W)
    assert vis[('valid', 1, 0)].dtype == torch.bool


def test_gradients_reach_disparities_and_poses() -> None:
    torch.manual_seed(0)
    colors, disps, params, K, inv_K = scene()
    disps = {k: (0.9 * d).requires_grad_() for k, d in disps.items()}
    params = {f: (a.clone().requires_grad_(), t.clone().requires_grad_())
              for f, (a, t) in params.items()}
    out = MonocularDepthLoss()(disps, colors, poses_from(params), K, inv_K)
    out['loss'].backward()
    for k, d in disps.items():
        assert d.grad is not None and torch.isfinite(d.grad).all() and d.grad.abs().sum() > 0, k
    for f, (a, t) in params.items():
        for p in (a, t):
            assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, f


def test_options_and_gradcheck() -> None:
    torch.manual_seed(0)
    colors, disps, params, K, inv_K = scene(torch.float64)
    # tiny float64 crop-free problem: one scale, a few pixels
    small = {k: v[:1, :, :6, :8] for k, v in colors.items()}
    K_small = K.clone()
    inv_small = torch.linalg.inv(K_small)
    disp = disps[('disp', 0)][:1, :, :6, :8].clone().requires_grad_()
    a, t = (p[:1].clone().requires_grad_() for p in params[1])
    loss_fn = MonocularDepthLoss(scales=(0,), frame_ids=(0, 1), automask=False)

    def fn(disp, a, t):
        return loss_fn({('disp', 0): disp}, small, {('T', 1): pose_vec_to_matrix(a, t)},
                       K_small, inv_small)['loss']

    assert torch.autograd.gradcheck(fn, (disp, a, t), eps=1e-6, atol=1e-5)
    # avg_reprojection averages over sources: with identical sources it equals the minimum
    same = {**colors, ('color', 1, 0): colors[('color', -1, 0)]}
    T = pose_vec_to_matrix(*params[-1])
    kw = dict(scales=(0,), automask=False)
    avg = MonocularDepthLoss(avg_reprojection=True, **kw)(disps, same, {('T', -1): T, ('T', 1): T},
                                                          K, inv_K)
    mn = MonocularDepthLoss(**kw)(disps, same, {('T', -1): T, ('T', 1): T}, K, inv_K)
    torch.testing.assert_close(avg['loss'], mn['loss'])


def test_registry_and_bad_input() -> None:
    import geo3d.models  # noqa: F401  registers MonocularDepthLoss
    from geo3d.registry import MODELS
    loss_fn = MODELS.build(dict(type='MonocularDepthLoss', scales=[0, 1]))
    assert isinstance(loss_fn, MonocularDepthLoss) and loss_fn.source_ids == [-1, 1]
    assert loss_fn.min_depth == 0.1 and loss_fn.max_depth == 100.0
    assert loss_fn.disparity_smoothness == 1e-3 and loss_fn.automask
    colors, disps, params, K, inv_K = scene()
    with pytest.raises(KeyError, match=r"disps has no \('disp', 1\) entry"):
        loss_fn({('disp', 0): disps[('disp', 0)]}, colors, poses_from(params), K, inv_K)
    with pytest.raises(KeyError, match=r"poses has no \('T', 1\) entry"):
        loss_fn(disps, colors, {('T', -1): torch.eye(4).expand(2, 4, 4)}, K, inv_K)
    with pytest.raises(KeyError, match=r"colors has no \('color', -1, 0\) entry"):
        loss_fn(disps, {('color', 0, 0): colors[('color', 0, 0)]}, poses_from(params), K, inv_K)
    with pytest.raises(ValueError, match=r"disps\[\('disp', 0\)\] must be"):
        loss_fn({('disp', 0): torch.rand(2, 3, H, W), ('disp', 1): disps[('disp', 1)]}, colors,
                poses_from(params), K, inv_K)
    with pytest.raises(ValueError, match='frame_ids'):
        MonocularDepthLoss(frame_ids=(-1, 1))
    with pytest.raises(ValueError, match='min_depth'):
        MonocularDepthLoss(min_depth=0.0)
