"""Gaussian2Scene stage 1 cross-modal parts: voxel -> pixel projection with the occlusion test,
patch feature sampling, multi-positive InfoNCE (vs a slow loop and CLIP's cross-entropy)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from geo3d.models.pretrain3d.gaussian2scene import (PointPixelAlignment, PointPixelMatches,
                                                    cosine_alignment, gather_patch_features,
                                                    multi_positive_info_nce, project_to_frames,
                                                    unique_pairs)
from geo3d.models.pretrain3d.gaussian2scene.image_mae import patchify
from tests.models.pretrain3d.g2s_scenes import look_at

H, W = 24, 32
K = torch.tensor([[30.0, 0.0, 15.5], [0.0, 28.0, 11.5], [0.0, 0.0, 1.0]], dtype=torch.float64)


def _camera(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    eye = torch.rand(3, generator=g, dtype=torch.float64) * 2
    return look_at(eye, eye + torch.tensor([math.cos(seed), math.sin(seed), 0.3],
                                           dtype=torch.float64))


def _lift(c2w: torch.Tensor, u: torch.Tensor, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """World points seen at pixels (u, v) at z-depth z (closed form: z K^-1 (u, v, 1))."""
    cam = torch.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], 1)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def synthetic_scene():
    """Two scenes x two frames; every point's fate in every frame is known by construction.

    Scene 0's points are lifted from frame 0: ``seen`` at the depth map's value at their pixel,
    ``occluded`` 0.4 m behind it, ``hole`` where the depth map is 0, plus points behind the
    camera and outside the image. Frame 1 of scene 0 looks the other way (sees none of them).
    """
    g = torch.Generator().manual_seed(0)
    c2w = torch.stack([torch.stack([_camera(1), _camera(1) @ torch.diag(
        torch.tensor([-1.0, 1.0, -1.0, 1.0], dtype=torch.float64))]),
        torch.stack([_camera(2), _camera(3)])])
    depth = 1.0 + 2.0 * torch.rand(2, 2, 1, H, W, generator=g, dtype=torch.float64)
    depth[0, 0, 0, :4, :] = 0.0   # no measurement in the top rows of frame (0, 0)
    depth[0, 1] = depth[1, 0] = 50.0   # far walls: no point of the scenes matches them
    u = torch.randint(0, W, (60,), generator=g).double()
    v = torch.randint(4, H, (60,), generator=g).double()
    d = depth[0, 0, 0, v.long(), u.long()]
    seen = _lift(c2w[0, 0], u, v, d)
    occluded = _lift(c2w[0, 0], u[:20], v[:20], d[:20] + 0.4)
    uh = torch.randint(0, W, (10,), generator=g).double()
    hole = _lift(c2w[0, 0], uh, torch.randint(0, 4, (10,), generator=g).double(),
                 torch.full((10,), 2.0, dtype=torch.float64))
    behind = _lift(c2w[0, 0], u[:5], v[:5], -d[:5])
    outside = _lift(c2w[0, 0], torch.full((5,), W + 3.0, dtype=torch.float64), v[:5], d[:5])
    # scene 1: points lifted from its frame 1 (seen there, through subpixel offsets)
    u1 = torch.randint(0, W, (30,), generator=g).double()
    v1 = torch.randint(0, H, (30,), generator=g).double()
    d1 = depth[1, 1, 0, v1.long(), u1.long()]
    off = torch.rand(30, 2, generator=g, dtype=torch.float64) - 0.5   # stays in the pixel
    seen1 = _lift(c2w[1, 1], u1 + 0.98 * off[:, 0], v1 + 0.98 * off[:, 1], d1)
    coord = torch.cat([seen, occluded, hole, behind, outside, seen1])
    batch = torch.cat([torch.zeros(100, dtype=torch.long), torch.ones(30, dtype=torch.long)])
    Ks = K.expand(2, 2, 3, 3).clone()
    truth = dict(seen=(torch.arange(60), u, v, d), seen1=(torch.arange(100, 130),
                                                          u1 + 0.98 * off[:, 0],
                                                          v1 + 0.98 * off[:, 1], d1))
    return coord, batch, c2w, Ks, depth, truth


def test_projection_matches_construction_and_excludes_occluded() -> None:
    coord, batch, c2w, Ks, depth, truth = synthetic_scene()
    m = project_to_frames(coord, batch, c2w, Ks, (H, W), depth, depth_tol=0.05)
    # frame (0, 0): exactly the 60 seen points, at their pixels and depths
    f0 = m.frame == 0
    rows, u, v, d = truth['seen']
    assert torch.equal(m.point[f0], rows)
    assert torch.allclose(m.uv[f0], torch.stack([u, v], 1), atol=1e-9)
    assert torch.allclose(m.z[f0], d, atol=1e-9)
    # frame (1, 1) = flat index 3: the 30 points of scene 1 (subpixel offsets, same pixel)
    f3 = m.frame == 3
    rows1, u1, v1, d1 = truth['seen1']
    assert torch.equal(m.point[f3], rows1)
    assert torch.allclose(m.uv[f3], torch.stack([u1, v1], 1), atol=1e-9)
    assert torch.equal(m.pixel_index(W)[f3], (torch.round(v1) * W + torch.round(u1)).long())
    # nothing else: the back-facing frame (0, 1) sees none; scene-0 points never meet scene 1
    assert set(m.frame.tolist()) <= {0, 3}
    assert m.num_matches == 90
    # without the depth test the occluded points come back (holes too), still in front only
    m0 = project_to_frames(coord, batch, c2w, Ks, (H, W), None)
    f0 = m0.point[m0.frame == 0]
    assert set(range(60, 90)) <= set(f0.tolist())
    assert not set(range(90, 100)) & set(f0.tolist())      # behind the camera / outside
    # candidates restrict the projected rows
    cand = torch.zeros(130, dtype=torch.bool)
    cand[::2] = True
    mc = project_to_frames(coord, batch, c2w, Ks, (H, W), depth, candidates=cand)
    assert torch.equal(mc.point, m.point[m.point % 2 == 0])


def test_projection_agrees_with_separate_depth_intrinsics() -> None:
    """The occlusion test reads the depth map through the depth camera's intrinsics."""
    coord, batch, c2w, Ks, depth, _ = synthetic_scene()
    Kd = Ks.clone()
    Kd[..., 0, 2] += 3.0     # depth camera shifted 3 px: depth image shifted likewise
    shifted = torch.zeros_like(depth)
    shifted[..., 3:] = depth[..., :-3]
    ref = project_to_frames(coord, batch, c2w, Ks, (H, W), depth)
    got = project_to_frames(coord, batch, c2w, Ks, (H, W), shifted, depth_intrinsics=Kd)
    keep = ref.uv[:, 0] < W - 3.5    # points whose shifted depth pixel stays in the image
    assert torch.equal(got.point, ref.point[keep])


def test_projection_errors_name_the_argument() -> None:
    coord, batch, c2w, Ks, depth, _ = synthetic_scene()
    with pytest.raises(ValueError, match='intrinsics'):
        project_to_frames(coord, batch, c2w, Ks[:, :1], (H, W), depth)
    with pytest.raises(ValueError, match='depth'):
        project_to_frames(coord, batch, c2w, Ks, (H + 1, W), depth)
    with pytest.raises(ValueError, match='batch has scene index 1'):
        project_to_frames(coord, batch, c2w[:1], Ks[:1], (H, W), depth[:1])
    with pytest.raises(ValueError, match='depth_tol'):
        project_to_frames(coord, batch, c2w, Ks, (H, W), depth, depth_tol=0.0)


def _matches(uv: torch.Tensor, frame: torch.Tensor) -> PointPixelMatches:
    k = uv.shape[0]
    return PointPixelMatches(torch.arange(k), frame, uv, torch.ones(k))


def test_gather_nearest_and_bilinear() -> None:
    p, hp, wp = 4, 3, 5
    # tokens = a linear function of the patch centre: bilinear interpolation is exact inside
    i, j = torch.meshgrid(torch.arange(hp), torch.arange(wp), indexing='ij')
    cx, cy = (j + 0.5) * p - 0.5, (i + 0.5) * p - 0.5
    lin = torch.stack([cx.reshape(-1), cy.reshape(-1), torch.ones(hp * wp)], 1).double()
    tokens = torch.stack([lin, 2 * lin])                               # (2 frames, L, 3)
    uv = torch.tensor([[1.5, 1.5], [7.2, 5.9], [10.0, 3.0], [16.4, 9.4]], dtype=torch.float64)
    frame = torch.tensor([0, 1, 0, 1])
    m = _matches(uv, frame)
    feat, ids, keep = gather_patch_features(tokens, m, p, (hp, wp), 'bilinear')
    assert torch.equal(keep, torch.arange(4))
    scale = torch.tensor([1.0, 2.0, 1.0, 2.0], dtype=torch.float64)[:, None]
    assert torch.allclose(feat[:, :2], uv * scale, atol=1e-12)
    # nearest: the token of the patch holding the rounded pixel
    feat, ids, keep = gather_patch_features(tokens, m, p, (hp, wp), 'nearest')
    px = torch.floor(uv + 0.5).long()
    tok = (px[:, 1] // p) * wp + px[:, 0] // p
    assert torch.equal(ids, frame * hp * wp + tok)
    assert torch.equal(feat, tokens[frame, tok])
    # visible patches only
    visible = torch.ones(2, hp * wp, dtype=torch.bool)
    visible[1, tok[1]] = False
    feat, ids, keep = gather_patch_features(tokens, m, p, (hp, wp), 'nearest', visible)
    assert torch.equal(keep, torch.tensor([0, 2, 3]))
    with pytest.raises(ValueError, match='visible must be None'):
        gather_patch_features(tokens, m, p, (hp, wp), 'bilinear', visible)
    with pytest.raises(ValueError, match='grid_size'):
        gather_patch_features(tokens, m, p, (hp, wp + 1))


def test_nearest_patch_of_a_pixel_agrees_with_patchify() -> None:
    """Token ids follow MAE's patchify order: the patch holding pixel (u, v) contains its value."""
    img = torch.arange(2 * 12 * 16, dtype=torch.float64).reshape(2, 1, 12, 16)
    patches = patchify(img, 4)                                          # (2, 12, 16)
    uv = torch.tensor([[0.0, 0.0], [15.0, 11.0], [6.3, 9.6]], dtype=torch.float64)
    frame = torch.tensor([0, 1, 1])
    feat, _, _ = gather_patch_features(patches, _matches(uv, frame), 4, (3, 4))
    px = torch.floor(uv + 0.5).long()
    for k in range(3):
        assert img[frame[k], 0, px[k, 1], px[k, 0]] in feat[k]


def slow_mil_nce(a, b, pairs, t):
    a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
    s = a @ b.T / t
    rows, cols = [], []
    for r in range(a.shape[0]):
        pos = [c for (rr, c) in pairs if rr == r]
        if pos:
            rows.append(-torch.log(sum(torch.exp(s[r, c]) for c in pos) / torch.exp(s[r]).sum()))
    for c in range(b.shape[0]):
        pos = [r for (r, cc) in pairs if cc == c]
        if pos:
            cols.append(-torch.log(sum(torch.exp(s[r, c]) for r in pos) / torch.exp(s[:, c]).sum()))
    return 0.5 * (torch.stack(rows).mean() + torch.stack(cols).mean())


def test_multi_positive_info_nce_vs_slow_and_clip() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    pairs = [(0, 0), (1, 0), (2, 1), (3, 2), (3, 3), (5, 3)]            # row 4 has none
    rows = torch.tensor([p[0] for p in pairs])
    cols = torch.tensor([p[1] for p in pairs])
    got = multi_positive_info_nce(a, b, rows, cols, 0.07)
    ref = slow_mil_nce(a, b, pairs, 0.07)
    assert torch.allclose(got, ref, rtol=1e-10)
    ga = torch.autograd.grad(got, (a, b))
    gr = torch.autograd.grad(ref, (a, b))
    assert all(torch.allclose(x, y, rtol=1e-8, atol=1e-12) for x, y in zip(ga, gr))
    # one positive per row and column: CLIP's symmetric cross-entropy
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    idx = torch.arange(5)
    logits = F.normalize(x, dim=1) @ F.normalize(y, dim=1).T / 0.5
    clip = 0.5 * (F.cross_entropy(logits, idx) + F.cross_entropy(logits.T, idx))
    assert torch.allclose(multi_positive_info_nce(x, y, idx, idx, 0.5), clip, rtol=1e-12)
    assert torch.autograd.gradcheck(
        lambda p, q: multi_positive_info_nce(p, q, rows, cols, 0.3),
        (a.detach().requires_grad_(), b.detach().requires_grad_()))
    with pytest.raises(ValueError, match='temperature'):
        multi_positive_info_nce(a, b, rows, cols, 0.0)


def test_cosine_alignment_and_unique_pairs() -> None:
    a_id = torch.tensor([7, 3, 7, 9, 3])
    b_id = torch.tensor([1, 1, 2, 5, 5])
    a_first, b_first, rows, cols = unique_pairs(a_id, b_id)
    assert torch.equal(a_id[a_first][rows], a_id) and torch.equal(b_id[b_first][cols], b_id)
    assert torch.equal(a_first, torch.tensor([1, 0, 3]))              # ids 3, 7, 9
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    got = cosine_alignment(a, b, torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert torch.isclose(got, torch.tensor(0.5 * (1 - 1 / math.sqrt(2))))


def test_alignment_module_trains_and_handles_no_pairs() -> None:
    torch.manual_seed(0)
    align = PointPixelAlignment(8, 6, dim=4, hidden=16, max_pairs=10)
    feat = torch.randn(30, 8, requires_grad=True)
    tokens = torch.randn(2, 12, 6, requires_grad=True)               # 2 frames, 3 x 4 patches
    uv = torch.rand(40, 2) * torch.tensor([15.0, 11.0])
    m = PointPixelMatches(torch.randint(0, 30, (40,)), torch.randint(0, 2, (40,)), uv,
                          torch.ones(40))
    loss, stats = align(feat, m, tokens, 4, (3, 4))
    assert stats['align_pairs'] == 10                                 # max_pairs subset
    loss.backward()
    assert feat.grad.abs().sum() > 0 and tokens.grad.abs().sum() > 0
    empty = m.select(torch.zeros(0, dtype=torch.long))
    zero, stats = align(feat, empty, tokens, 4, (3, 4))
    assert float(zero.detach()) == 0.0 and stats['align_pairs'] == 0
    zero.backward()                                                    # graph reaches the MLPs
    assert align.point_proj.mlp[0].weight.grad is not None
    with pytest.raises(ValueError, match="align loss"):
        PointPixelAlignment(8, 6, loss='l2')
