"""Gaussian2Scene stage 2: head, camera conventions, losses, training, checkpoints, configs."""
from __future__ import annotations

import copy
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint

from geo3d.models.backbones.spunet import SpUNet
from geo3d.models.pretrain3d.gaussian2scene import (Gaussian2Scene, GaussianHead,
                                                    align_depth_to_color, chamfer_distance,
                                                    nearest_neighbors, point_to_set_distance,
                                                    render_intrinsics, voxel_anchors)
from geo3d.models.pretrain3d.gaussian2scene.gaussian_head import rgb_to_sh_dc, sh_dc_to_rgb
from geo3d.models.pretrain3d.gaussian2scene.stage2 import frustum_mask, select_rows
from geo3d.models.probes import load_backbone_weights
from geo3d.registry import MODELS
from geo3d.rendering import rasterize
from tests.helpers.gaussian_scenes import constant, plane_batch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SMALL = dict(type='SpUNet', in_channels=6, base_channels=8, channels=(8, 16, 16, 16),
             layers=(1, 1, 1, 1), stem_kernel_size=3)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_model(**kw) -> Gaussian2Scene:
    torch.manual_seed(0)
    kw.setdefault('render', dict(backend='torch'))
    return Gaussian2Scene(backbone=SMALL, **kw)


def total_loss(out: dict) -> torch.Tensor:
    return sum(v for k, v in out.items() if k.startswith('loss'))


# ---------------------------------------------------------------------------------- head
def test_head_ranges_shapes_and_init() -> None:
    torch.manual_seed(0)
    head = GaussianHead(16, hidden_channels=8, offset_scale=1.5, scale_init=0.75,
                        scale_range=(0.05, 4.0), opacity_init=0.8)
    n, voxel = 500, 0.1
    anchors = torch.randn(n, 3)
    with torch.no_grad():
        g = head(torch.randn(n, 16), anchors, voxel)
    assert g.means.shape == (n, 3) and g.quats.shape == (n, 4) and g.scales.shape == (n, 3)
    assert g.opacities.shape == (n,) and g.colors.shape == (n, 3) and g.sh_degree is None
    # initial values: small offsets, std ~ 0.75 voxel, opacity ~ 0.8, grey, unit quaternions
    assert float((g.means - anchors).abs().max()) < 0.05 * voxel * 1.5 * 10
    assert torch.allclose(g.scales, torch.full_like(g.scales, 0.075), rtol=0.15)
    assert torch.allclose(g.opacities, torch.full_like(g.opacities, 0.8), atol=0.05)
    assert torch.allclose(g.colors, torch.full_like(g.colors, 0.5), atol=0.05)
    assert torch.allclose(g.quats.norm(dim=1), torch.ones(n), atol=1e-6)
    assert float(g.quats[:, 0].min()) > 0.9
    # bounds hold for any features (large weights saturate every activation)
    torch.nn.init.normal_(head.out.weight, 0.0, 30.0)
    with torch.no_grad():
        g = head(torch.randn(n, 16), anchors, voxel)
    assert float((g.means - anchors).abs().max()) <= 1.5 * voxel + 1e-6
    assert float(g.scales.min()) >= 0.05 * voxel * (1 - 1e-6)
    assert float(g.scales.max()) <= 4.0 * voxel * (1 + 1e-6)
    assert float(g.opacities.min()) >= 0 and float(g.opacities.max()) <= 1
    assert float(g.colors.min()) >= 0 and float(g.colors.max()) <= 1
    assert torch.allclose(g.quats.norm(dim=1), torch.ones(n), atol=1e-5)


def test_head_color_modes() -> None:
    torch.manual_seed(0)
    rgb = torch.rand(50, 3)
    assert torch.allclose(sh_dc_to_rgb(rgb_to_sh_dc(rgb)), rgb, atol=1e-6)
    feat, anchors = torch.randn(50, 8), torch.zeros(50, 3)
    res = GaussianHead(8, hidden_channels=0, color_residual=True, init_std=0.0)
    assert torch.allclose(res(feat, anchors, 0.05, rgb.clamp(0.01, 0.99)).colors,
                          rgb.clamp(0.01, 0.99), atol=1e-5)
    sh = GaussianHead(8, hidden_channels=0, color_mode='sh_dc', color_residual=True,
                      init_std=0.0)
    g = sh(feat, anchors, 0.05, rgb)
    assert g.colors.shape == (50, 1, 3) and g.sh_degree == 0
    assert torch.allclose(g.rgb(), rgb, atol=1e-5)
    with pytest.raises(ValueError, match='input_rgb'):
        res(feat, anchors, 0.05)
    with pytest.raises(ValueError, match='feat must be'):
        res(torch.randn(50, 7), anchors, 0.05, rgb)
    with pytest.raises(ValueError, match='color_mode'):
        GaussianHead(8, color_mode='sh3')
    with pytest.raises(ValueError, match='scale_init'):
        GaussianHead(8, scale_init=10.0)


# ---------------------------------------------------------------------------------- geometry
def test_voxel_anchors_and_frustum_mask() -> None:
    coord = torch.tensor([[0.01, 0.26, -0.04], [0.49, 0.0, 1.0]])
    expect = torch.tensor([[0.05, 0.25, -0.05], [0.45, 0.05, 1.05]])
    assert torch.allclose(voxel_anchors(coord, 0.1), expect, atol=1e-6)
    assert torch.equal(voxel_anchors(coord, 0.1, 'point'), coord)
    K = torch.tensor([[[10.0, 0.0, 9.5], [0.0, 10.0, 4.5], [0.0, 0.0, 1.0]]])  # 20 x 10 image
    c2w = torch.eye(4)[None]
    # x/z = (u - 9.5) / 10: u = 19.4 inside, u = 20.5 just outside, u = 21.4 inside the margin
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0], [0.99, 0.0, 1.0], [1.1, 0.0, 1.0],
                        [1.19, 0.0, 1.0], [0.0, 0.56, 1.0]])
    assert frustum_mask(pts, c2w, K, (10, 20), margin=0.0).tolist() == [
        True, False, True, False, False, False]
    assert frustum_mask(pts, c2w, K, (10, 20), margin=0.1).tolist() == [
        True, False, True, True, True, True]
    inp = plane_batch(num_scenes=2, frames=1, points=800)
    pb = inp['points']
    keep = torch.arange(pb.num_points) % 3 != 0
    sub = select_rows(pb, keep)
    assert sub.num_points == int(keep.sum()) and sub.batch_size == 2
    assert torch.equal(sub.coord, pb.coord[keep]) and torch.equal(sub['color'], pb['color'][keep])
    assert torch.equal(sub.batch, pb.batch[keep]) and sub.grid_size == pb.grid_size


def test_render_intrinsics_put_points_on_their_pixel() -> None:
    K = torch.tensor([[30.0, 0.0, 11.5], [0.0, 32.0, 7.5], [0.0, 0.0, 1.0]])
    Kg = render_intrinsics(K, (16, 24), (8, 12))
    assert torch.allclose(Kg, torch.tensor([[15.0, 0.0, 6.0], [0.0, 16.0, 4.0], [0, 0, 1.0]]))
    # a point that K (pixel centres at integers) sends to pixel (row 5, col 17) is drawn there
    X = torch.tensor([(17 - 11.5) / 30.0 * 2.0, (5 - 7.5) / 32.0 * 2.0, 2.0])
    out = rasterize(X[None], torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.004),
                    torch.tensor([0.9]), torch.ones(1, 3), torch.eye(4)[None],
                    render_intrinsics(K, (16, 24), (16, 24))[None], 24, 16, backend='torch')
    a = out.alpha[0, ..., 0]
    assert divmod(int(a.argmax()), 24) == (5, 17)


def test_align_depth_to_color() -> None:
    h, w = 6, 8
    depth = (1.0 + torch.arange(h * w, dtype=torch.float64) / 100).reshape(1, 1, h, w)
    K = torch.tensor([[[8.0, 0, 3.5], [0, 8.0, 2.5], [0, 0, 1.0]]], dtype=torch.float64)
    assert torch.equal(align_depth_to_color(depth, K, K), depth)
    Kd = K.clone()
    Kd[0, 0, 0] = Kd[0, 1, 1] = 4.0            # the depth camera sees twice the field of view
    got = align_depth_to_color(depth, Kd, K)
    for v in range(h):
        for u in range(w):
            qu, qv = round(3.5 + (u - 3.5) / 2), round(2.5 + (v - 2.5) / 2)
            assert float(got[0, 0, v, u]) == float(depth[0, 0, qv, qu])
    Kd[0, 0, 0] = Kd[0, 1, 1] = 12.0           # a narrower depth camera: the border is missing
    got = align_depth_to_color(depth, Kd, K)    # u = 3 -> 3.5 - 0.75 = 2.75 -> 3, v = 2 -> 2
    assert float(got[0, 0, 0, 0]) == 0.0 and float(got[0, 0, 2, 3]) == float(depth[0, 0, 2, 3])
    assert float(got[0, 0, 1, 1]) == float(depth[0, 0, 0, 0])  # 3.5 - 3.75 -> 0, 2.5 - 2.25 -> 0


def test_nearest_neighbors_and_distances_vs_float64_brute_force() -> None:
    gen = torch.Generator().manual_seed(3)
    q, r = torch.rand(300, 3, generator=gen), torch.rand(200, 3, generator=gen)
    qb = torch.randint(0, 3, (300,), generator=gen)
    rb = torch.randint(0, 3, (200,), generator=gen)
    d64 = torch.cdist(q.double(), r.double())
    d64[qb[:, None] != rb[None, :]] = float('inf')
    ref_idx = d64.argmin(1)
    ref_d = d64.min(1).values
    for backend in ('kdtree', 'cdist'):
        idx = nearest_neighbors(q, r, qb, rb, backend=backend, chunk=64)
        assert torch.equal(idx, ref_idx)
        d = point_to_set_distance(q, r, qb, rb, backend=backend)
        assert torch.allclose(d.double(), ref_d, atol=1e-6)
        d2 = point_to_set_distance(q, r, qb, rb, squared=True, backend=backend)
        assert torch.allclose(d2.double(), ref_d ** 2, atol=1e-6)
    dT = d64.T.min(1).values
    ch = chamfer_distance(q, r, qb, rb)
    assert math.isclose(float(ch), float(ref_d.mean() + dT.mean()), rel_tol=1e-5)
    # gradients: d|q - r*| / dq = (q - r*) / |q - r*| (neighbour fixed), float64 gradcheck
    qd = q[:20].double().requires_grad_()
    rd = r.double().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: point_to_set_distance(a, b, backend='cdist'), (qd, rd))
    with pytest.raises(ValueError, match='no ref points'):
        nearest_neighbors(q, r, qb, torch.zeros_like(rb))
    with pytest.raises(ValueError, match='query must be'):
        nearest_neighbors(q[:, :2], r)
    with pytest.raises(ValueError, match='backend'):
        nearest_neighbors(q, r, backend='faiss')


def test_geometry_loss_modes_vs_brute_force() -> None:
    inp = plane_batch(num_scenes=2, frames=1, points=1500)
    model = make_model()
    pb = inp['points']
    with torch.no_grad():
        g = model.predict_gaussians(pb)
    vox = pb.grid_size
    d = torch.cdist(g.means.double(), pb.coord.double())
    d[pb.batch[:, None] != pb.batch[None, :]] = float('inf')
    near = d.min(1).values
    assert math.isclose(float(model.geometry_loss(g, pb, vox)), float(near.mean() / vox),
                        rel_tol=1e-5)
    model.geometry.update(mode='chamfer')
    expect = (near.mean() + d.min(0).values.mean()) / vox
    assert math.isclose(float(model.geometry_loss(g, pb, vox)), float(expect), rel_tol=1e-5)
    model.geometry.update(mode='own_point')
    own = (g.means.double() - pb.coord.double()).norm(dim=1).mean() / vox
    assert math.isclose(float(model.geometry_loss(g, pb, vox)), float(own), rel_tol=1e-5)
    model.geometry.update(mode='nearest', target='origin_coord')
    with pytest.raises(KeyError, match='origin_coord'):
        model.geometry_loss(g, pb, vox)


# ---------------------------------------------------------------------------------- model
def test_initial_gaussians_render_the_plane() -> None:
    rgb = (0.8, 0.3, 0.2)
    inp = plane_batch(num_scenes=1, frames=2, color=constant(rgb), depth=2.02)
    model = make_model(head=dict(color_residual=True), anchor='point').eval()
    pred = model(inp, [{'name': 'plane'}], mode='predict')[0]
    assert pred['name'] == 'plane' and pred['pred_rgb'].shape == (2, 3, 24, 32)
    alpha = pred['alpha'][:, 0]
    assert float((alpha > 0.95).float().mean()) > 0.9
    solid = alpha > 0.95
    colour = pred['pred_rgb'].permute(0, 2, 3, 1)[solid]
    assert torch.allclose(colour, torch.tensor(rgb).expand_as(colour), atol=0.05)
    depth = pred['pred_depth'][:, 0][solid]
    real = pred['gt_depth'][:, 0][solid]
    assert float((depth - real).abs().max()) < 0.03
    assert torch.allclose(pred['gt_rgb'], inp['images'][0])


def test_loss_decreases_psnr_rises_and_backbone_gets_gradients() -> None:
    inp = plane_batch(num_scenes=1, frames=2, points=2000)
    model = make_model()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses, psnrs = [], []
    for it in range(10):
        out = model(inp, mode='loss')
        assert {'loss_rgb_l1', 'loss_rgb_ssim', 'loss_depth', 'loss_geometry', 'psnr',
                'alpha'} <= set(out)
        loss = total_loss(out)
        opt.zero_grad()
        loss.backward()
        if it == 0:
            for name in ('stem.conv.weight', 'dec.0.0.conv2.weight', 'enc.1.0.conv1.weight'):
                grad = model.backbone.get_parameter(name).grad
                assert grad is not None and bool(torch.isfinite(grad).all())
                assert float(grad.abs().max()) > 0, name
        opt.step()
        losses.append(float(loss.detach()))
        psnrs.append(float(out['psnr']))
    assert losses[-1] < 0.8 * losses[0]
    assert psnrs[-1] > psnrs[0] + 1.0


def test_predict_and_loss_agree_with_crop_and_resize() -> None:
    inp = plane_batch(num_scenes=1, frames=2, h=24, w=32, points=1500)
    model = make_model(crop='frustum', render=dict(backend='torch', width=16, height=12))
    pred = model(inp, mode='predict')[0]
    assert pred['pred_rgb'].shape == (2, 3, 12, 16) and pred['gt_depth'].shape == (2, 1, 12, 16)
    # 2x2 area-averaged targets, depth by the nearest pixel
    avg = torch.nn.functional.avg_pool2d(inp['images'][0], 2)
    assert torch.allclose(pred['gt_rgb'], avg, atol=1e-6)
    cropped = model.crop_to_frustums(inp['points'], inp, (24, 32))
    assert 0 < cropped.num_points < inp['points'].num_points
    assert pred['num_gaussians'] == cropped.num_points


def test_checkpoint_keys_load_from_stage1_and_probe(tmp_path) -> None:
    model = make_model()
    keys = model.state_dict().keys()
    bb = [k for k in keys if k.startswith('backbone.')]
    assert len(bb) == len(model.backbone.state_dict())
    assert all(k.startswith(('backbone.', 'head.')) for k in keys)
    # a stage-1-like checkpoint: the same backbone under 'backbone.', plus stage-1-only modules
    torch.manual_seed(7)
    other = SpUNet(**{k: v for k, v in SMALL.items() if k != 'type'})
    state = {f'backbone.{k}': v for k, v in other.state_dict().items()}
    state['image_mae.encoder.cls'] = torch.zeros(3)
    state['point_head.heads.color.weight'] = torch.zeros(3, 8)
    path = str(tmp_path / 'stage1.pth')
    torch.save({'meta': {}, 'state_dict': state}, path)
    head_before = copy.deepcopy(model.head.state_dict())
    load_checkpoint(model, path, map_location='cpu', strict=False)  # what load_from does
    for k, v in other.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    for k, v in head_before.items():
        assert torch.equal(model.head.state_dict()[k], v), k
    # a stage-2 checkpoint feeds tools/linear_probe.py (load_backbone_weights, 'backbone.')
    path2 = str(tmp_path / 'stage2.pth')
    torch.save({'state_dict': model.state_dict()}, path2)
    probe = SpUNet(**{k: v for k, v in SMALL.items() if k != 'type'})
    assert load_backbone_weights(probe, path2) == 'backbone.'
    for k, v in probe.state_dict().items():
        assert torch.equal(v, other.state_dict()[k])


def test_bad_inputs_and_arguments() -> None:
    inp = plane_batch(num_scenes=1, frames=1, points=500)
    model = make_model()
    with pytest.raises(KeyError, match="inputs\\['points'\\]"):
        model({k: v for k, v in inp.items() if k != 'points'}, mode='loss')
    with pytest.raises(ValueError, match="inputs\\['depth'\\]"):
        model(dict(inp, depth=inp['depth'][:, :, :, :5]), mode='loss')
    with pytest.raises(KeyError, match="inputs\\['camera_to_world'\\]"):
        model({k: v for k, v in inp.items() if k != 'camera_to_world'}, mode='predict')
    pb = copy.copy(inp['points'])
    pb.grid_size = None
    with pytest.raises(ValueError, match='voxel size'):
        model(dict(inp, points=pb), mode='loss')
    res = make_model(head=dict(color_residual=True), color_key='rgb_in')
    with pytest.raises(KeyError, match='rgb_in'):
        res(inp, mode='loss')
    with pytest.raises(ValueError, match='unknown keys'):
        make_model(loss_weights=dict(rgb_l2=1.0))
    with pytest.raises(ValueError, match='render.width and render.height'):
        make_model(render=dict(width=32))
    with pytest.raises(ValueError, match='geometry.mode'):
        make_model(geometry=dict(mode='icp'))
    with pytest.raises(ValueError, match='crop'):
        make_model(crop='sphere')
    with pytest.raises(ValueError, match='unknown mode'):
        model(inp, mode='render')


def test_configs_build() -> None:
    import geo3d.evaluation  # noqa: F401  (registers RenderMetric)
    from geo3d.registry import HOOKS, METRICS
    for name in ('gaussian2scene_scannet.py', 'gaussian2scene_scannet_demo.py'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
        model = MODELS.build(cfg.model)
        assert isinstance(model, Gaussian2Scene)
        assert cfg.val_dataloader.dataset.frame_set == 'holdout'
        assert cfg.train_dataloader.dataset.frame_set == 'train'
        assert cfg.train_dataloader.dataset.load_points
        assert METRICS.get(cfg.val_evaluator.type) is not None
        assert [h['type'] for h in cfg.custom_hooks] == ['ValidateBeforeTrainHook']
        assert HOOKS.get('ValidateBeforeTrainHook') is not None
        if name.endswith('_demo.py'):
            assert cfg.model.render.backend == 'torch' and cfg.load_from is None
            assert cfg.val_dataloader.dataset.image_size == (60, 80)
    stage1 = osp.join(ROOT, 'configs', 'gaussian2scene_stage1_scannet_demo.py')
    if osp.isfile(stage1):  # the stage-1 demo backbone must be stage 2's (load_from by name)
        s1 = MODELS.build(Config.fromfile(stage1).model.backbone)
        s2 = Config.fromfile(osp.join(ROOT, 'configs', 'gaussian2scene_scannet_demo.py'))
        s2 = MODELS.build(s2.model.backbone)
        assert {k: v.shape for k, v in s1.state_dict().items()} == \
            {k: v.shape for k, v in s2.state_dict().items()}


@pytest.mark.gpu
def test_render_gsplat_matches_torch_path() -> None:
    from geo3d.rendering import gsplat_cuda_available
    if not gsplat_cuda_available():
        pytest.skip('gsplat CUDA kernels are not usable here')
    inp = plane_batch(num_scenes=1, frames=2, points=1500)
    model = make_model(head=dict(color_residual=True))
    with torch.no_grad():
        g = model.gaussians(inp['points'])[0]
    g = type(g)(**{k: getattr(g, k).cuda() for k in ('means', 'quats', 'scales', 'opacities',
                                                       'colors')})
    model = model.cuda()
    outs = {}
    for backend in ('gsplat', 'torch'):
        model.render_cfg['backend'] = backend
        outs[backend] = model.render(g, inp['camera_to_world'][0].cuda(),
                                     inp['intrinsics'][0].cuda(), (24, 32))
        assert outs[backend].meta['backend'] == backend
    for key in ('rgb', 'alpha', 'depth'):
        assert torch.allclose(getattr(outs['gsplat'], key), getattr(outs['torch'], key),
                              atol=2e-3), key


def test_gaussians_and_renders_stay_float32_under_autocast() -> None:
    from types import SimpleNamespace
    inp = plane_batch(num_scenes=1, frames=1, points=800)
    model = make_model()
    pts = inp['points']
    with torch.no_grad():
        feat = model.backbone(pts)[-1].feat
        g = model.predict_gaussians(pts)
        ref = model.render(g, inp['camera_to_world'][0], inp['intrinsics'][0], (24, 32))
        # spconv has no CPU bf16 kernels: feed the head half-precision features directly
        model.backbone.forward = lambda points: [SimpleNamespace(feat=feat.bfloat16())]
        with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
            g16 = model.predict_gaussians(pts)
            out = model.render(g16, inp['camera_to_world'][0], inp['intrinsics'][0], (24, 32))
    assert g16.means.dtype == torch.float32 and g16.colors.dtype == torch.float32
    assert out.rgb.dtype == torch.float32
    assert torch.allclose(out.rgb, ref.rgb, atol=0.05) and torch.allclose(out.depth, ref.depth,
                                                                          atol=0.05)
