"""Packed EWA projection: agreement with gsplat's own PyTorch reference and a safe pre-cull."""
from __future__ import annotations

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

import geo3d.rendering.projection as projection
from geo3d.rendering import project_gaussians
from tests.rendering.reference import intrinsics, look_at, random_scene

F64 = torch.float64
W, H = 40, 28


def _cam(eye=(0.0, -2.0, 0.0)):
    return look_at(list(eye), [0.0, 0.0, 0.0])[None], intrinsics(W, H, 60.0)[None]


def test_matches_gsplat_torch_reference() -> None:
    scene = random_scene(300, seed=7)
    scene['means'] = scene['means'] * 3.0  # some behind the camera, some outside the view
    vm, K = _cam()
    proj = project_gaussians(scene['means'], scene['quats'], scene['scales'],
                             scene['opacities'], vm, K, W, H)
    covars, _ = _quat_scale_to_covar_preci(scene['quats'], scene['scales'], True, False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(scene['means'], covars, vm, K,
                                                                W, H)
    ref_valid = (radii[0] > 0).all(-1)
    assert 20 < len(proj) < int(ref_valid.sum()) < 300  # opacity-aware boxes cull a few more
    assert ref_valid[proj.gaussian_ids].all()
    gid = proj.gaussian_ids
    assert (proj.camera_ids == 0).all()
    torch.testing.assert_close(proj.means2d, means2d[0, gid])
    torch.testing.assert_close(proj.depths, depths[0, gid])
    torch.testing.assert_close(proj.conics, conics[0, gid])
    assert (proj.radii <= radii[0, gid]).all() and (proj.radii > 0).all()


def test_pre_cull_drops_only_pairs_the_exact_test_drops(monkeypatch) -> None:
    # large, elongated Gaussians close to the camera and around (not in) the view: their boxes
    # reach into the image from far outside, the case where a loose pre-cull would go wrong
    g = torch.Generator().manual_seed(3)
    n = 2000
    scene = random_scene(n, seed=9)
    scene['means'] = (torch.rand(n, 3, generator=g, dtype=F64) - 0.5) * torch.tensor(
        [8.0, 5.0, 6.0], dtype=F64)
    scene['scales'] = scene['scales'] * torch.tensor([4.0, 0.5, 1.0], dtype=F64)
    cams = [_cam(), _cam(eye=(1.5, -1.0, 0.5))]
    vm, K = torch.cat([c[0] for c in cams]), torch.cat([c[1] for c in cams])
    args = (scene['means'], scene['quats'], scene['scales'], scene['opacities'], vm, K, W, H)
    fast = project_gaussians(*args)

    def z_only(means, scales, opacities, viewmats, Ks, width, height, near, far, eps2d):
        z = means @ viewmats[:, 2, :3].T + viewmats[:, 2, 3]
        ok = (z >= near) & (z <= far) & (opacities[:, None] >= projection.ALPHA_THRESHOLD)
        return ok.nonzero(as_tuple=True)

    monkeypatch.setattr(projection, '_candidate_pairs', z_only)
    slow = project_gaussians(*args)
    assert len(fast) == len(slow) > 200
    key = lambda p: (p.camera_ids * n + p.gaussian_ids).argsort()  # noqa: E731
    for field in ('camera_ids', 'gaussian_ids', 'means2d', 'conics', 'radii'):
        torch.testing.assert_close(getattr(fast, field)[key(fast)],
                                   getattr(slow, field)[key(slow)])
    # the pre-cull does remove most of the candidates here
    z = scene['means'] @ vm[:, 2, :3].T + vm[:, 2, 3]
    assert int((z > 0.01).sum()) > 2 * len(fast)


def test_gradients_reach_means_quats_scales_viewmats() -> None:
    scene = {k: v.requires_grad_() for k, v in random_scene(20, seed=4).items()}
    vm, K = _cam()
    vm.requires_grad_()
    p = project_gaussians(scene['means'], scene['quats'], scene['scales'], scene['opacities'],
                          vm, K, W, H)
    (p.means2d.sum() + p.conics.sum() + p.depths.sum() + p.opacities.sum()).backward()
    for t in (scene['means'], scene['quats'], scene['scales'], scene['opacities'], vm):
        assert t.grad is not None and t.grad.abs().sum() > 0
