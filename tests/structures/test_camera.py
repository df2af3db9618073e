"""Camera geometry: intrinsics scaling, (back)projection, poses, disparity, warping."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from geo3d.structures.camera import (axis_angle_to_matrix, backproject, depth_to_disp,
                                     disp_to_depth, intrinsics_pyramid, matrix_to_axis_angle,
                                     matrix_to_pose_vec, pose_vec_to_matrix, project,
                                     scale_intrinsics, warp)
from tests.structures.synthetic_views import pixel_intrinsics, render_plane, rigid

KITTI_K = torch.tensor([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                       dtype=torch.float64)


def test_scale_intrinsics_closed_form() -> None:
    K = scale_intrinsics(KITTI_K.expand(2, 4, 4), 192, 640, scale=1)
    assert K.shape == (2, 4, 4)
    expected = torch.tensor([[0.58 * 320, 0, 0.5 * 320, 0], [0, 1.92 * 96, 0.5 * 96, 0],
                             [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(K[1], expected)
    # a 3x3 normalised K gives the same 4x4; odd sizes use floor division like Monodepth2
    torch.testing.assert_close(scale_intrinsics(KITTI_K[:3, :3], 192, 640, 1), expected)
    K3 = scale_intrinsics(KITTI_K, 25, 33, 2)
    assert K3[0, 0] == pytest.approx(0.58 * 8) and K3[1, 2] == pytest.approx(0.5 * 6)
    pyr = intrinsics_pyramid(KITTI_K, 192, 640, scales=(0, 3))
    assert set(pyr) == {('K', 0), ('inv_K', 0), ('K', 3), ('inv_K', 3)}
    torch.testing.assert_close(pyr[('K', 3)] @ pyr[('inv_K', 3)], torch.eye(4, dtype=torch.float64))
    assert pyr[('K', 3)][0, 0] == pytest.approx(0.58 * 80)


@pytest.mark.parametrize('align_corners', [True, False])
def test_backproject_project_identity_is_pixel_grid(align_corners: bool) -> None:
    b, h, w = 2, 5, 7
    K = pixel_intrinsics(h, w).expand(b, 4, 4)
    depth = torch.rand(b, 1, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    points = backproject(depth + 0.5, torch.linalg.inv(K))
    assert points.shape == (b, 4, h * w)
    torch.testing.assert_close(points[:, 2], (depth + 0.5).reshape(b, -1))  # z = depth
    grid = project(points, K, torch.eye(4, dtype=torch.float64).expand(b, 4, 4), h, w,
                   align_corners=align_corners)
    assert grid.shape == (b, h, w, 2)
    # pixel grid in grid_sample coordinates, written out independently
    u = np.arange(w, dtype=np.float64)
    v = np.arange(h, dtype=np.float64)
    if align_corners:
        xs, ys = 2 * u / (w - 1) - 1, 2 * v / (h - 1) - 1
    else:
        xs, ys = (2 * u + 1) / w - 1, (2 * v + 1) / h - 1
    expected = np.stack(np.meshgrid(xs, ys), -1)
    np.testing.assert_allclose(grid[1].numpy(), expected, atol=1e-6)  # 1e-7 depth guard
    # sampling with that grid under the same convention reproduces the image exactly
    img = torch.rand(b, 3, h, w, dtype=torch.float64)
    out = F.grid_sample(img, grid, align_corners=align_corners, padding_mode='border')
    torch.testing.assert_close(out, img, atol=1e-5, rtol=0)  # up to the 1e-7 depth guard


@pytest.mark.parametrize('align_corners', [True, False])
def test_warp_known_motion_matches_direct_render(align_corners: bool) -> None:
    h, w = 24, 32
    K = pixel_intrinsics(h, w)
    T = rigid((0.01, -0.03, 0.015), (0.12, -0.03, 0.08))  # target -> source
    tgt, tgt_depth = render_plane(K, torch.eye(4, dtype=torch.float64), h, w)
    src, _ = render_plane(K, T, h, w)
    Kb, inv_Kb = K[None], torch.linalg.inv(K)[None]
    warped, valid = warp(src[None], tgt_depth[None], T[None], Kb, inv_Kb,
                         align_corners=align_corners)
    assert warped.shape == (1, 3, h, w) and valid.dtype == torch.bool
    inner = valid.clone()
    inner[..., :1, :] = inner[..., -1:, :] = inner[..., :, :1] = inner[..., :, -1:] = False
    assert inner.sum() > 0.6 * h * w
    err = (warped - tgt[None]).abs().amax(1, keepdim=True)
    assert float(err[inner].max()) < 0.02  # bilinear interpolation of a smooth texture
    # the valid mask is exactly "projects inside the source image", computed independently
    pts = torch.linalg.inv(K[:3, :3]) @ torch.stack(
        [torch.arange(w).repeat(h), torch.arange(h).repeat_interleave(w),
         torch.ones(h * w)]).double() * tgt_depth.reshape(1, -1)
    cam = K[:3, :3] @ (T[:3, :3] @ pts + T[:3, 3:])
    uv = cam[:2] / cam[2:]
    inside = ((uv[0] >= 0) & (uv[0] <= w - 1) & (uv[1] >= 0) & (uv[1] <= h - 1)).reshape(h, w)
    assert torch.equal(valid[0, 0], inside)
    assert not bool(inside.all())  # the motion really moves pixels out of view
    # a wrong pose or a wrong depth does not reproduce the target
    wrong, _ = warp(src[None], tgt_depth[None], torch.eye(4, dtype=torch.float64)[None], Kb,
                    inv_Kb, align_corners=align_corners)
    assert float((wrong - tgt[None]).abs()[inner.expand(-1, 3, -1, -1)].mean()) > 0.03
    wrong, _ = warp(src[None], 0.5 * tgt_depth[None], T[None], Kb, inv_Kb,
                    align_corners=align_corners)
    assert float((wrong - tgt[None]).abs()[inner.expand(-1, 3, -1, -1)].mean()) > 0.03


def test_axis_angle_matches_scipy_and_rodrigues() -> None:
    rng = np.random.default_rng(0)
    vecs = np.concatenate([rng.normal(size=(6, 3)), [[0, 0, 0], [1e-9, 0, 0], [0, 0, math.pi]]])
    R = axis_angle_to_matrix(torch.from_numpy(vecs))
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(vecs).as_matrix(), atol=1e-9)
    torch.testing.assert_close(R[0], rigid(tuple(vecs[0]), (0, 0, 0))[:3, :3])
    # round trip for angles below pi
    back = matrix_to_axis_angle(R[:6])
    np.testing.assert_allclose(Rotation.from_rotvec(back.numpy()).as_matrix(),
                               R[:6].numpy(), atol=1e-9)
    small = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.01, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(matrix_to_axis_angle(axis_angle_to_matrix(small)), small)


def test_pose_vec_semantics_and_round_trip() -> None:
    gen = torch.Generator().manual_seed(1)
    a = 0.3 * torch.randn(3, 1, 3, dtype=torch.float64, generator=gen)
    t = torch.randn(3, 1, 3, dtype=torch.float64, generator=gen)
    M = pose_vec_to_matrix(a, t)
    # Monodepth2: invert=False is translation @ rotation, i.e. [R | t]
    for i in range(3):
        torch.testing.assert_close(M[i], rigid(tuple(a[i, 0].tolist()), tuple(t[i, 0].tolist())))
    Minv = pose_vec_to_matrix(a, t, invert=True)
    torch.testing.assert_close(Minv @ M, torch.eye(4, dtype=torch.float64).expand(3, 4, 4))
    torch.testing.assert_close(Minv, torch.linalg.inv(M))
    a2, t2 = matrix_to_pose_vec(M)
    torch.testing.assert_close(a2, a)
    torch.testing.assert_close(t2, t)
    # (B, 3) is accepted like (B, 1, 3)
    torch.testing.assert_close(pose_vec_to_matrix(a[:, 0], t[:, 0]), M)


def test_disp_to_depth_closed_form() -> None:
    disp = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    scaled, depth = disp_to_depth(disp, 0.1, 100.0)
    torch.testing.assert_close(depth[[0, 2]], torch.tensor([100.0, 0.1], dtype=torch.float64))
    assert float(scaled[1]) == pytest.approx(0.01 + 0.5 * (10 - 0.01))
    torch.testing.assert_close(scaled * depth, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(depth_to_disp(depth, 0.1, 100.0), disp)
    with pytest.raises(ValueError, match='min_depth'):
        disp_to_depth(disp, 1.0, 0.5)


def test_gradcheck_warp_wrt_depth_and_pose() -> None:
    h, w = 5, 6
    gen = torch.Generator().manual_seed(3)
    K = pixel_intrinsics(h, w)[None]
    inv_K = torch.linalg.inv(K)
    src = torch.rand(1, 2, h, w, dtype=torch.float64, generator=gen)
    depth = (2 + torch.rand(1, 1, h, w, dtype=torch.float64, generator=gen)).requires_grad_()
    a = torch.tensor([[[0.01, -0.02, 0.015]]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[[0.05, 0.02, -0.03]]], dtype=torch.float64, requires_grad=True)

    def fn(depth, a, t):
        return warp(src, depth, pose_vec_to_matrix(a, t, invert=True), K, inv_K)[0]

    assert torch.autograd.gradcheck(fn, (depth, a, t), eps=1e-6, atol=1e-5)
    for align in (True, False):
        def fn_pts(depth, K):
            pts = backproject(depth, torch.linalg.inv(K))
            return project(pts, K, pose_vec_to_matrix(a.detach(), t.detach()), h, w, align)
        assert torch.autograd.gradcheck(fn_pts, (depth, K.clone().requires_grad_()), eps=1e-6,
                                        atol=1e-5)


def test_bad_shapes_raise_clear_errors() -> None:
    K = torch.eye(4)[None]
    with pytest.raises(ValueError,
                       match=r'depth must have shape \(\*, 1, \*, \*\), got \(1, 3, 4, 5\)'):
        backproject(torch.ones(1, 3, 4, 5), K)
    with pytest.raises(ValueError, match=r'inv_K must have shape \(\*, 4, 4\)'):
        backproject(torch.ones(1, 1, 4, 5), torch.eye(3)[None])
    with pytest.raises(ValueError, match='batch sizes differ'):
        backproject(torch.ones(2, 1, 4, 5), K)
    with pytest.raises(ValueError, match='height \\* width'):
        project(torch.ones(1, 4, 20), K, K, 4, 6)
    with pytest.raises(ValueError, match='K_norm'):
        scale_intrinsics(torch.eye(2), 10, 10)
    with pytest.raises(ValueError, match='too deep'):
        scale_intrinsics(torch.eye(4), 4, 4, 3)
    with pytest.raises(ValueError, match='axisangle'):
        pose_vec_to_matrix(torch.zeros(2, 2, 3), torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match='translation'):
        pose_vec_to_matrix(torch.zeros(2, 1, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match='axis_angle'):
        axis_angle_to_matrix(torch.zeros(4))
    with pytest.raises(ValueError, match='same height and width'):
        warp(torch.ones(1, 3, 4, 5), torch.ones(1, 1, 4, 6), K, K, K)
    with pytest.raises(ValueError, match='T_tgt_to_src'):
        warp(torch.ones(1, 3, 4, 5), torch.ones(1, 1, 4, 5), torch.eye(3)[None], K, K)
