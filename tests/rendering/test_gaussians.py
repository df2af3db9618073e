"""Gaussian rasterization, PyTorch path: closed forms, a dense reference, gradcheck, errors."""
from __future__ import annotations

import math

import pytest
import torch

from geo3d.rendering import RenderOutput, rasterize
from tests.rendering.reference import (dense_render, intrinsics, look_at, quat_to_matrix,
                                       random_scene)

F64 = torch.float64
W, H = 40, 28  # not multiples of the tile size: partial tiles on the right and bottom


def _cam(eye=(0.3, -3.0, 0.4), target=(0.0, 0.0, 0.0), width=W, height=H, dtype=F64):
    return look_at(list(eye), list(target), dtype)[None], intrinsics(width, height, 60.0,
                                                                      dtype)[None]


def _one(mean, quat=(1.0, 0, 0, 0), scale=(0.2, 0.2, 0.2), opacity=0.8, color=(1.0, 0.5, 0.2)):
    t = lambda v: torch.tensor(v, dtype=F64)  # noqa: E731
    return dict(means=t([mean]), quats=t([quat]), scales=t([scale]), opacities=t([opacity]),
                colors=t([color]))


def test_single_gaussian_matches_closed_form() -> None:
    vm, K = _cam()
    g = _one([0.1, 0.2, -0.15], quat=(0.9, 0.3, -0.2, 0.1), scale=(0.3, 0.1, 0.2), opacity=0.7)
    out = rasterize(**g, viewmats=vm, Ks=K, width=W, height=H)
    assert isinstance(out, RenderOutput) and out.meta['backend'] == 'torch'
    assert out.rgb.shape == (1, H, W, 3) and out.depth.shape == out.alpha.shape == (1, H, W, 1)

    R, t = vm[0, :3, :3], vm[0, :3, 3]
    mu_c = R @ g['means'][0] + t
    mean2d = (K[0] @ mu_c)[:2] / mu_c[2]
    rot = quat_to_matrix(g['quats'])[0]
    sigma3 = rot @ torch.diag(g['scales'][0] ** 2) @ rot.T
    fx, fy = K[0, 0, 0], K[0, 1, 1]
    x, y, z = mu_c
    J = torch.tensor([[fx / z, 0, -fx * x / z ** 2], [0, fy / z, -fy * y / z ** 2]], dtype=F64)
    cov2d = J @ R @ sigma3 @ R.T @ J.T + 0.3 * torch.eye(2, dtype=F64)
    inv = torch.linalg.inv(cov2d)
    torch.testing.assert_close(out.meta['means2d'][0], mean2d)
    torch.testing.assert_close(out.meta['depths'][0], z)
    torch.testing.assert_close(out.meta['conics'][0], torch.stack([inv[0, 0], inv[0, 1],
                                                                   inv[1, 1]]))
    # 3.33 sigma box (opacity 0.7: sqrt(2 log(0.7 * 255)) = 3.22 sigma)
    ext = min(3.33, math.sqrt(2 * math.log(0.7 * 255)))
    assert out.meta['radii'][0].tolist() == [math.ceil(ext * cov2d[0, 0].sqrt()),
                                             math.ceil(ext * cov2d[1, 1].sqrt())]
    for row, col in [(14, 20), (10, 17), (20, 25), (3, 30)]:
        d = torch.tensor([col + 0.5, row + 0.5], dtype=F64) - mean2d
        a = 0.7 * torch.exp(-0.5 * d @ inv @ d)
        a = a if a >= 1 / 255 else torch.zeros((), dtype=F64)
        torch.testing.assert_close(out.alpha[0, row, col, 0], a)
        torch.testing.assert_close(out.rgb[0, row, col], a * g['colors'][0])
        if a > 0:  # one Gaussian: the expected depth is its z
            torch.testing.assert_close(out.depth[0, row, col, 0], z)


def test_fronto_parallel_plane_depth_is_its_z() -> None:
    # a grid of flat, overlapping Gaussians on the camera plane z_cam = 2.5 (tilted camera)
    vm, K = _cam(eye=(1.0, -2.0, 1.5), target=(0.0, 0.5, 0.0))
    cam_to_world = torch.linalg.inv(vm[0])
    u, v = torch.meshgrid(torch.linspace(-0.6, 0.6, 6, dtype=F64),
                          torch.linspace(-0.4, 0.4, 5, dtype=F64), indexing='ij')
    pts_c = torch.stack([u.reshape(-1), v.reshape(-1), torch.full((30,), 2.5, dtype=F64),
                         torch.ones(30, dtype=F64)], -1)
    means = (pts_c @ cam_to_world.T)[:, :3]
    # flat in camera z: rotation = the camera's, scale z tiny
    from scipy.spatial.transform import Rotation
    q_xyzw = Rotation.from_matrix(cam_to_world[:3, :3].numpy()).as_quat()
    quat = torch.tensor([q_xyzw[3], *q_xyzw[:3]], dtype=F64).expand(30, 4)
    scales = torch.tensor([0.12, 0.12, 1e-4], dtype=F64).expand(30, 3)
    out = rasterize(means, quat, scales, torch.full((30,), 0.6, dtype=F64),
                    torch.rand(30, 3, dtype=F64), vm, K, W, H)
    hit = out.alpha[..., 0] > 0
    assert hit.float().mean() > 0.3
    torch.testing.assert_close(out.depth[..., 0][hit], torch.full_like(out.depth[..., 0][hit],
                                                                       2.5))
    assert (out.depth[..., 0][~hit] == 0).all()


def test_two_overlapping_gaussians_composite_front_to_back() -> None:
    vm = torch.eye(4, dtype=F64)[None]
    K = torch.tensor([[[20.0, 0, 10.0], [0, 20.0, 8.0], [0, 0, 1]]], dtype=F64)
    # both centred on pixel (row 8, col 10)'s centre (10.5, 8.5): x/z = 0.5/20
    def at(z: float) -> list[float]:
        return [0.5 / 20 * z, 0.5 / 20 * z, z]
    front = _one(at(2.0), opacity=0.5, color=(1.0, 0.0, 0.0))
    back = _one(at(3.0), opacity=0.6, color=(0.0, 0.0, 1.0))
    for first, second in ((back, front), (front, back)):  # input order must not matter
        g = {k: torch.cat([first[k], second[k]]) for k in first}
        out = rasterize(**g, viewmats=vm, Ks=K, width=20, height=16)
        rgb, alpha, depth = out.rgb[0, 8, 10], out.alpha[0, 8, 10, 0], out.depth[0, 8, 10, 0]
        # w_front = 0.5, w_back = (1 - 0.5) * 0.6 = 0.3
        torch.testing.assert_close(rgb, torch.tensor([0.5, 0.0, 0.3], dtype=F64))
        torch.testing.assert_close(alpha, torch.tensor(0.8, dtype=F64))
        torch.testing.assert_close(depth, torch.tensor((0.5 * 2 + 0.3 * 3) / 0.8, dtype=F64))


@pytest.mark.parametrize('chunk', [1, 32])
def test_saturated_pixel_stops_before_the_gaussian_that_empties_it(chunk: int) -> None:
    vm = torch.eye(4, dtype=F64)[None]
    K = torch.tensor([[[20.0, 0, 10.0], [0, 20.0, 8.0], [0, 0, 1]]], dtype=F64)
    gs = [_one([0.5 / 20 * z, 0.5 / 20 * z, z], opacity=1.0, color=col)
          for z, col in ((2.0, (1.0, 0, 0)), (3.0, (0, 1.0, 0)), (4.0, (0, 0, 1.0)))]
    g = {k: torch.cat([x[k] for x in gs]) for k in gs[0]}
    out = rasterize(**g, viewmats=vm, Ks=K, width=20, height=16, chunk=chunk)
    # alpha clamps to 0.999: T = 1e-3 after the first; the second would take T to 1e-6 <= 1e-4,
    # so the pixel stops there and neither the second nor the third is drawn
    torch.testing.assert_close(out.rgb[0, 8, 10], torch.tensor([0.999, 0, 0], dtype=F64))
    torch.testing.assert_close(out.alpha[0, 8, 10, 0], torch.tensor(0.999, dtype=F64))
    torch.testing.assert_close(out.depth[0, 8, 10, 0], torch.tensor(2.0, dtype=F64))


def _loss_weights(shape_rgb, shape_1, seed=3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape_rgb, generator=g, dtype=F64),
            torch.randn(shape_1, generator=g, dtype=F64), torch.randn(shape_1, generator=g,
                                                                       dtype=F64))


@pytest.mark.parametrize('tile_size,chunk', [(16, 32), (8, 3)])
def test_matches_dense_reference_images_and_gradients(tile_size: int, chunk: int) -> None:
    scene = {k: v.requires_grad_() for k, v in random_scene(50, seed=1, opaque_share=0.5,
                                                           max_scale=0.45).items()}
    cams = [_cam(eye=(0.4, -3.2, 0.6)), _cam(eye=(-2.5, -1.5, 1.2), target=(0.1, 0.0, -0.1))]
    vm, K = torch.cat([c[0] for c in cams]), torch.cat([c[1] for c in cams])
    out = rasterize(**scene, viewmats=vm, Ks=K, width=W, height=H, tile_size=tile_size,
                    chunk=chunk)
    refs = [dense_render(**scene, viewmat=vm[i], K=K[i], width=W, height=H) for i in range(2)]
    ref_rgb, ref_depth, ref_alpha, stopped = (torch.stack([r[j] for r in refs])
                                              for j in range(4))
    # the scene exercises empty pixels and pixels that stop at T <= 1e-4
    assert (out.alpha == 0).any() and stopped.sum() > 20
    torch.testing.assert_close(out.rgb, ref_rgb, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(out.depth, ref_depth, atol=1e-9, rtol=1e-7)
    torch.testing.assert_close(out.alpha, ref_alpha, atol=1e-9, rtol=1e-7)

    wr, wd, wa = _loss_weights(out.rgb.shape, out.depth.shape)
    params = list(scene.values())
    grads = torch.autograd.grad((out.rgb * wr).sum() + (out.depth * wd).sum()
                                + (out.alpha * wa).sum(), params)
    ref_grads = torch.autograd.grad((ref_rgb * wr).sum() + (ref_depth * wd).sum()
                                    + (ref_alpha * wa).sum(), params)
    for name, gr, rg in zip(scene, grads, ref_grads):
        assert rg.abs().sum() > 0, name
        torch.testing.assert_close(gr, rg, atol=1e-7, rtol=1e-5, msg=f'gradient of {name}')


def test_float32_agrees_with_float64() -> None:
    scene = random_scene(200, seed=2)
    vm, K = _cam(eye=(0.2, -2.6, 0.3), width=320, height=240)
    o64 = rasterize(**scene, viewmats=vm, Ks=K, width=320, height=240)
    o32 = rasterize(**{k: v.float() for k, v in scene.items()}, viewmats=vm.float(),
                    Ks=K.float(), width=320, height=240)
    for a, b in ((o32.rgb, o64.rgb), (o32.alpha, o64.alpha)):
        assert (a.double() - b).abs().mean() < 1e-5
        # pixels on the 1/255 or 1e-4 thresholds may flip; all others agree closely
        assert ((a.double() - b).abs() < 1e-4).float().mean() > 0.999


def test_gradcheck_tiny_scene() -> None:
    # 4 large Gaussians cover the whole 8x8 image with 1/255 < alpha < 0.999, T stays > 1e-4
    vm = look_at([0.0, -3.0, 0.0], [0.0, 0.0, 0.0])[None]
    K = intrinsics(8, 8, 50.0)[None]
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.5, 0.1], [-0.15, -0.4, -0.1],
                          [0.1, 0.9, 0.15]], dtype=F64)
    quats = torch.randn(4, 4, generator=g, dtype=F64)
    scales = torch.tensor([[0.9, 0.7, 0.8], [0.8, 0.9, 0.6], [0.7, 0.8, 0.9],
                           [1.0, 0.6, 0.7]], dtype=F64)
    opac = torch.tensor([0.5, 0.4, 0.6, 0.3], dtype=F64)
    colors = torch.rand(4, 3, generator=g, dtype=F64)
    inputs = tuple(t.clone().requires_grad_() for t in (means, quats, scales, opac, colors,
                                                         vm))

    def fn(m, q, s, o, c, v):
        out = rasterize(m, q, s, o, c, v, K, 8, 8, tile_size=4, chunk=2)
        return out.rgb, out.depth, out.alpha

    rgb, _, alpha = fn(*inputs)
    assert alpha.min() > 1 / 255 and alpha.max() < 0.999
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, fast_mode=True)


def test_culled_gaussians_contribute_nothing() -> None:
    vm, K = _cam()
    visible = _one([0.0, 0.0, 0.0], quat=(0.9, 0.2, 0.3, -0.1), scale=(0.3, 0.1, 0.2))
    behind = _one([0.0, -5.0, 0.0], scale=(2.0, 2.0, 2.0), opacity=0.9)  # behind the camera
    aside = _one([0.0, 0.0, 8.0], opacity=0.9)  # far above the view
    faint = _one([0.1, 0.1, 0.1], opacity=0.5 / 255)  # below the 1/255 alpha threshold
    g = {k: torch.cat([x[k] for x in (visible, behind, aside, faint)]).requires_grad_()
         for k in visible}
    out = rasterize(**g, viewmats=vm, Ks=K, width=W, height=H)
    ref = rasterize(**visible, viewmats=vm, Ks=K, width=W, height=H)
    assert out.meta['gaussian_ids'].tolist() == [0]
    for a, b in ((out.rgb, ref.rgb), (out.depth, ref.depth), (out.alpha, ref.alpha)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    (out.rgb.sum() + out.depth.sum()).backward()
    for name, t in g.items():
        assert t.grad[1:].abs().max() == 0, name
        assert t.grad[0].abs().max() > 0, name


def test_backgrounds_fill_the_transmittance() -> None:
    scene = random_scene(30, seed=4)
    vm, K = _cam()
    vm2, K2 = torch.cat([vm, _cam(eye=(2.0, -2.0, 0.5))[0]]), K.expand(2, 3, 3)
    bg = torch.tensor([[0.2, 0.4, 0.9], [1.0, 0.0, 0.5]], dtype=F64)
    plain = rasterize(**scene, viewmats=vm2, Ks=K2, width=W, height=H)
    out = rasterize(**scene, viewmats=vm2, Ks=K2, width=W, height=H, backgrounds=bg)
    torch.testing.assert_close(out.rgb, plain.rgb + (1 - plain.alpha) * bg[:, None, None])
    torch.testing.assert_close(out.depth, plain.depth)  # the background has no depth
    one = rasterize(**scene, viewmats=vm2, Ks=K2, width=W, height=H, backgrounds=bg[0])
    torch.testing.assert_close(one.rgb[0], out.rgb[0])


def test_cameras_render_independently_and_per_camera_colors() -> None:
    scene = random_scene(40, seed=5)
    cams = [_cam(), _cam(eye=(2.5, -1.0, 1.0)), _cam(eye=(-1.0, -2.0, -1.5))]
    vm, K = torch.cat([c[0] for c in cams]), torch.cat([c[1] for c in cams])
    per_cam = torch.rand(3, 40, 3, dtype=F64)
    both = rasterize(**{**scene, 'colors': per_cam}, viewmats=vm, Ks=K, width=W, height=H)
    for i in range(3):
        single = rasterize(**{**scene, 'colors': per_cam[i]}, viewmats=vm[i:i + 1],
                           Ks=K[i:i + 1], width=W, height=H)
        torch.testing.assert_close(both.rgb[i], single.rgb[0], atol=1e-12, rtol=0)
        torch.testing.assert_close(both.depth[i], single.depth[0], atol=1e-12, rtol=0)


def test_sh_degree_one_colours() -> None:
    scene = random_scene(20, seed=6)
    coeffs = torch.randn(20, 4, 3, dtype=torch.float64) * 0.3
    cams = [_cam(), _cam(eye=(2.0, -2.0, 1.0))]
    vm, K = torch.cat([c[0] for c in cams]), torch.cat([c[1] for c in cams])
    out = rasterize(**{**scene, 'colors': coeffs}, viewmats=vm, Ks=K, width=W, height=H,
                    sh_degree=1)
    # independent: real SH of degree 1 (C0, C1 of the 3DGS code), + 0.5, clamped at 0
    centers = torch.linalg.inv(vm)[:, :3, 3]
    dirs = scene['means'][None] - centers[:, None]
    x, y, z = (dirs / dirs.norm(dim=-1, keepdim=True)).unbind(-1)
    c0, c1 = 0.28209479177387814, 0.4886025119029199
    col = (c0 * coeffs[None, :, 0] - c1 * y[..., None] * coeffs[None, :, 1]
           + c1 * z[..., None] * coeffs[None, :, 2] - c1 * x[..., None] * coeffs[None, :, 3])
    ref = rasterize(**{**scene, 'colors': (col + 0.5).clamp(min=0)}, viewmats=vm, Ks=K,
                    width=W, height=H)
    torch.testing.assert_close(out.rgb, ref.rgb)


def test_tile_size_and_chunk_do_not_change_the_image() -> None:
    scene = random_scene(60, seed=8)
    vm, K = _cam()
    base = rasterize(**scene, viewmats=vm, Ks=K, width=W, height=H)
    for ts, ch in ((8, 1), (4, 7), (32, 64)):
        o = rasterize(**scene, viewmats=vm, Ks=K, width=W, height=H, tile_size=ts, chunk=ch)
        torch.testing.assert_close(o.rgb, base.rgb, atol=1e-12, rtol=0)
        torch.testing.assert_close(o.alpha, base.alpha, atol=1e-12, rtol=0)


def test_no_visible_gaussian_gives_an_empty_image() -> None:
    vm, K = _cam()
    for g in (_one([0.0, -5.0, 0.0]), {k: v[:0] for k, v in _one([0.0, 0.0, 0.0]).items()}):
        out = rasterize(**g, viewmats=vm, Ks=K, width=W, height=H,
                        backgrounds=torch.ones(3, dtype=F64))
        assert (out.alpha == 0).all() and (out.depth == 0).all() and (out.rgb == 1).all()
        assert out.meta['n_isects'] == 0


def _good() -> dict:
    vm, K = _cam()
    return dict(**_one([0.0, 0.0, 0.0]), viewmats=vm, Ks=K, width=W, height=H)


@pytest.mark.parametrize('change,error,match', [
    (dict(means=torch.zeros(1, 2, dtype=F64)), ValueError, r'means must have shape \(N, 3\)'),
    (dict(quats=torch.zeros(2, 4, dtype=F64)), ValueError, r'quats must have shape \(N, 4\)'),
    (dict(scales=torch.zeros(1, 3)), TypeError, 'scales has dtype torch.float32'),
    (dict(opacities=torch.zeros(1, 1, dtype=F64)), ValueError, 'opacities must have shape'),
    (dict(colors=torch.zeros(2, 3, dtype=F64)), ValueError, r'colors must have shape \(N, D\)'),
    (dict(colors=torch.zeros(1, 3, dtype=torch.int64)), TypeError, 'colors must be a floating'),
    (dict(viewmats=torch.eye(3, dtype=F64)[None]), ValueError, r'viewmats must have shape'),
    (dict(Ks=torch.eye(3, dtype=F64)), ValueError, r'Ks must have shape \(C, 3, 3\)'),
    (dict(means=[[0.0, 0.0, 0.0]]), TypeError, 'means must be a torch.Tensor'),
    (dict(width=0), ValueError, 'width must be a positive int'),
    (dict(height=2.5), ValueError, 'height must be a positive int'),
    (dict(near_plane=2.0, far_plane=1.0), ValueError, 'near_plane < far_plane'),
    (dict(eps2d=-1.0), ValueError, 'eps2d must be >= 0'),
    (dict(backend='cuda'), ValueError, 'backend must be one of'),
    (dict(backgrounds=torch.zeros(4, dtype=F64)), ValueError, 'backgrounds must have shape'),
    (dict(sh_degree=1), ValueError, 'with sh_degree=1 colors must be SH coefficients'),
    (dict(chunk=0), ValueError, 'chunk must be a positive int'),
])
def test_bad_input_raises_a_clear_error(change: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        rasterize(**{**_good(), **change})


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only error')
def test_gsplat_backend_on_cpu_tensors_says_why() -> None:
    with pytest.raises(RuntimeError, match="backend='gsplat' needs CUDA tensors"):
        rasterize(**_good(), backend='gsplat')
    assert rasterize(**_good(), backend='auto').meta['backend'] == 'torch'
