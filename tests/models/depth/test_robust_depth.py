"""RobustDepth: semi-augmented warping, pseudo-supervision masks and stop-gradients, training,
configs."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from geo3d.datasets.transforms.weather import GreyscaleCorruption
from geo3d.models.depth.monodepth import MonoDepth
from geo3d.models.depth.robust_depth import (RobustDepth, masked_mean, pose_consistency_loss,
                                             pseudo_depth_loss, ramp_depth)
from geo3d.registry import MODELS
from tests.models.depth.test_monodepth import batch, intrinsics, pyramid

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
H, W = 64, 96
FRAME_IDS = (0, -1, 1)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@MODELS.register_module(name='TinyTestDepthEncoder', force=True)
class TinyDepthEncoder(torch.nn.Module):
    """A 5-level strided conv encoder (maps at 1/2 .. 1/32) standing in for ResNet-18 where
    only the training mechanics are tested (10 steps in well under a second each)."""

    def __init__(self, num_input_images: int = 1, pretrained: bool = False) -> None:
        super().__init__()
        self.num_ch_enc = (8, 8, 16, 16, 16)
        chans = (3 * num_input_images,) + self.num_ch_enc
        self.stages = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1),
                                torch.nn.ELU()) for i in range(5))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - 0.45) / 0.225
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def make_model(**kwargs) -> RobustDepth:
    torch.manual_seed(0)
    kwargs.setdefault('loss', dict(identity_noise=0.0))
    kwargs.setdefault('corruption_seed', 0)
    return RobustDepth(**kwargs)


# ---------------------------------------------------------------------- pseudo depth loss
def hand_case():
    """Errors on a 1 x 1 x 2 x 3 grid: clean wins, aug wins, identity wins, tie, ..."""
    err_c = torch.tensor([[[[0.1, 0.5, 0.3], [0.2, 0.4, 0.05]]]])
    err_a = torch.tensor([[[[0.2, 0.1, 0.4], [0.2, 0.3, 0.5]]]])
    ident = torch.tensor([[[[0.9, 0.9, 0.1], [0.9, 0.2, 0.9]]]])
    return err_c, err_a, ident


def test_choice_mask_picks_the_lower_error_per_pixel():
    err_c, err_a, ident = hand_case()
    d = torch.rand(1, 1, 2, 3)
    _, clean_better, aug_better = pseudo_depth_loss(d, d, err_c, err_a, ident)
    # (0,0) clean; (0,1) aug; (0,2) identity beats both; (1,0) tie; (1,1) identity; (1,2) clean
    assert clean_better[0, 0].tolist() == [[True, False, False], [False, False, True]]
    assert aug_better[0, 0].tolist() == [[False, True, False], [False, False, False]]
    _, clean_better, aug_better = pseudo_depth_loss(d, d, err_c, err_a, None)
    assert clean_better[0, 0].tolist() == [[True, False, True], [False, False, True]]
    assert aug_better[0, 0].tolist() == [[False, True, False], [False, True, False]]


def test_pseudo_loss_closed_form_and_zero_when_branches_agree():
    err_c, err_a, ident = hand_case()
    g = torch.Generator().manual_seed(0)
    dc = torch.rand(1, 1, 2, 3, generator=g, dtype=torch.float64)
    da = torch.rand(1, 1, 2, 3, generator=g, dtype=torch.float64)
    loss, _, _ = pseudo_depth_loss(dc, da, err_c.double(), err_a.double(), ident.double())
    x = np.log1p(np.abs(da.numpy() - dc.numpy()))[0, 0]
    want = (x[0, 0] + x[1, 2]) / 2 + x[0, 1] / 1
    assert float(loss) == pytest.approx(want, rel=1e-12)
    same, _, _ = pseudo_depth_loss(dc, dc.clone(), err_c.double(), err_a.double(), ident.double())
    assert float(same) == 0.0
    # nobody teaches: 0, not NaN
    none, _, _ = pseudo_depth_loss(dc, da, err_c.double(), err_a.double(),
                                   torch.zeros_like(dc))
    assert float(none) == 0.0
    assert float(masked_mean(torch.ones(3), torch.zeros(3, dtype=torch.bool))) == 0.0


def test_pseudo_loss_gradients_reach_the_taught_branch_only():
    err_c, err_a, ident = hand_case()
    dc = torch.full((1, 1, 2, 3), 0.3, requires_grad=True)
    da = torch.full((1, 1, 2, 3), 0.6, requires_grad=True)
    loss, clean_better, aug_better = pseudo_depth_loss(dc, da, err_c, err_a, ident)
    loss.backward()
    # D_a is pulled to sg(D_c) where the clean branch wins, D_c to sg(D_a) where aug wins
    assert torch.equal(da.grad != 0, clean_better) and torch.equal(dc.grad != 0, aug_better)
    assert float(da.grad[clean_better].min()) > 0  # da > dc: decreasing da lowers the loss
    assert float(dc.grad[aug_better].max()) < 0


def test_pseudo_loss_gradcheck():
    """float64 gradcheck of each direction (the other direction's mask empty, so the
    stop-gradient does not hide a dependence from the numerical derivative)."""
    g = torch.Generator().manual_seed(5)
    low = torch.rand(1, 1, 2, 3, generator=g, dtype=torch.float64) * 0.1
    high = low + 0.5
    dc = torch.tensor([[[[0.2, 0.7, 0.1], [0.4, 0.3, 0.9]]]], dtype=torch.float64)
    da = torch.tensor([[[[0.5, 0.2, 0.6], [0.1, 0.8, 0.3]]]], dtype=torch.float64)
    # clean reprojects better everywhere: the loss is a function of D_a only
    assert torch.autograd.gradcheck(
        lambda a: pseudo_depth_loss(dc, a, low, high)[0], (da.clone().requires_grad_(),))
    # the augmented branch better everywhere: a function of D_c only
    assert torch.autograd.gradcheck(
        lambda c: pseudo_depth_loss(c, da, high, low)[0], (dc.clone().requires_grad_(),))


def test_pose_loss_is_l1_to_the_stopped_clean_pose():
    g = torch.Generator().manual_seed(2)
    a_aug, t_aug, a_c, t_c = (torch.randn(2, 1, 3, generator=g, dtype=torch.float64,
                                          requires_grad=True) for _ in range(4))
    loss = pose_consistency_loss(a_aug, t_aug, a_c, t_c)
    want = 0.5 * ((a_aug - a_c).abs().mean() + (t_aug - t_c).abs().mean())
    assert float(loss.detach()) == pytest.approx(float(want.detach()))
    loss.backward()
    assert a_c.grad is None and t_c.grad is None and float(a_aug.grad.abs().sum()) > 0
    assert torch.autograd.gradcheck(lambda a, t: pose_consistency_loss(a, t, a_c, t_c),
                                    (a_aug, t_aug))
    with pytest.raises(ValueError, match='translation_aug'):
        pose_consistency_loss(a_aug, t_aug[:, :, :2], a_c, t_c)


# ---------------------------------------------------------------------------- the model
def test_augmented_branch_uses_clean_pose_clean_sources_and_clean_target():
    model = make_model(corruptions=['greyscale'], severities=(5,)).eval()
    inputs = batch(b=2, aug_shift=0.1)
    calls = {'loss': [], 'pose': [], 'disp': []}
    loss_fn, pose_fn, disp_fn = (model.loss.forward_with_visuals, model.predict_pose_params,
                                 model.predict_disparities)

    def rec_loss(disps, colors, poses, K, inv_K):
        calls['loss'].append((disps, colors, poses))
        return loss_fn(disps, colors, poses, K, inv_K)

    def rec_pose(frames):
        out = pose_fn(frames)
        calls['pose'].append((frames, out))
        return out

    def rec_disp(images):
        out = disp_fn(images)
        calls['disp'].append((images, out))
        return out

    model.loss.forward_with_visuals = rec_loss
    model.predict_pose_params = rec_pose
    model.predict_disparities = rec_disp
    with torch.no_grad():
        out = model(inputs, None, 'loss')
    assert len(calls['loss']) == len(calls['pose']) == len(calls['disp']) == 2
    aug0 = inputs['color_aug'][0][:, 0]
    # clean pass on color_aug, augmented pass on its greyscale version
    assert torch.equal(calls['disp'][0][0], aug0)
    assert torch.allclose(calls['disp'][1][0], GreyscaleCorruption()(aug0, None, 5))
    for f in (-1, 1):
        assert not torch.equal(calls['pose'][1][0][f], calls['pose'][0][0][f])
    (d_c, col_c, pose_c), (d_a, col_a, pose_a) = calls['loss']
    # both photometric terms: the clean poses (the augmented pose is never used to warp) ...
    clean_T = {f: calls['pose'][0][1][f][2] for f in (-1, 1)}
    aug_T = {f: calls['pose'][1][1][f][2] for f in (-1, 1)}
    for f in (-1, 1):
        assert pose_a[('T', f)] is clean_T[f] and pose_c[('T', f)] is clean_T[f]
        assert not torch.allclose(aug_T[f], clean_T[f])
    # ... the clean images (un-jittered color, not the network inputs)
    for i, f in enumerate(FRAME_IDS):
        assert torch.equal(col_a[('color', f, 0)], inputs['color'][0][:, i])
    assert col_a is col_c
    # ... and each branch's own disparities
    assert d_c[('disp', 0)] is calls['disp'][0][1][0]
    assert d_a[('disp', 0)] is calls['disp'][1][1][0]
    expected = (out['clean_photometric'] + out['aug_photometric'] + 0.01 * out['pseudo_depth']
                + 0.01 * out['pseudo_pose'])
    torch.testing.assert_close(out['loss'], expected)


def test_loss_terms_and_gradients_reach_all_networks():
    model = make_model(corruptions=['fog', 'night'], physics_depth='ramp')
    out = model(batch(b=2, aug_shift=0.05), None, 'loss')
    assert set(out) == {'loss', 'clean_photometric', 'aug_photometric', 'pseudo_depth',
                        'pseudo_pose', 'clean_teaches'}
    assert all(not v.requires_grad for k, v in out.items() if k != 'loss')
    assert float(out['pseudo_depth']) > 0 and float(out['pseudo_pose']) > 0
    assert 0 < float(out['clean_teaches']) < 1
    out['loss'].backward()
    for name in ('encoder', 'depth_decoder', 'pose_encoder', 'pose_decoder'):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


def test_corrupt_frames_one_effect_per_sample_for_all_its_frames():
    model = make_model(corruptions=['greyscale', dict(type='ChannelDropCorruption', channel='r')],
                       severities=(5,), frame_ids=(0, -1, 1, 's'))
    g = torch.Generator().manual_seed(4)
    frames = {f: torch.rand(6, 3, 8, 8, generator=g) + 0.0 for f in (0, -1, 1, 's')}
    frames = {f: x.clamp(0, 1) for f, x in frames.items()}
    out = model.corrupt_frames(frames, None, torch.Generator().manual_seed(1))
    assert set(out) == {0, -1, 1}  # the stereo partner only enters the clean loss
    kinds = []
    for i in range(6):
        per_frame = []
        for f in (0, -1, 1):
            x = out[f][i]
            per_frame.append('grey' if torch.allclose(x[0], x[1]) and torch.allclose(x[1], x[2])
                             else 'red' if float(x[0].abs().max()) == 0 else '?')
        assert len(set(per_frame)) == 1 and per_frame[0] != '?', per_frame
        kinds.append(per_frame[0])
    assert set(kinds) == {'grey', 'red'}


def test_physics_depth_sources():
    model = make_model(physics_median_depth=12.0, physics_depth_range=(1.0, 200.0))
    disp = torch.rand(2, 1, 16, 24) * 0.2 + 0.01
    d = model.physics_depth_of(disp)
    assert d.shape == disp.shape
    torch.testing.assert_close(d.flatten(1).median(1).values, torch.full((2,), 12.0))
    # nearer where the disparity is larger
    for i in range(2):
        assert float(d[i].flatten()[disp[i].flatten().argmax()]) == float(d[i].min())
    ramp = ramp_depth(1, 5, 3, 2.0, 100.0, disp)
    assert float(ramp[0, 0, 0, 0]) == pytest.approx(100.0) and \
        float(ramp[0, 0, -1, 0]) == pytest.approx(2.0)
    assert torch.all(ramp[0, 0, 1:, 0] < ramp[0, 0, :-1, 0])


def textured_sequence(b: int = 2) -> dict:
    g = torch.Generator().manual_seed(3)
    tex = torch.nn.functional.interpolate(torch.rand(b, 3, H // 4, W // 4 + 4, generator=g),
                                          size=(H, W + 16), mode='bilinear', align_corners=False)
    frames = torch.stack([tex[..., 8 + 2 * f:8 + 2 * f + W] for f in FRAME_IDS], 1)
    K, inv_K = intrinsics(b, H, W)
    return {'color': pyramid(frames), 'color_aug': pyramid(frames), 'K': K, 'inv_K': inv_K}


def test_overfitting_a_fixed_batch_lowers_the_loss():
    tiny = dict(type='TinyTestDepthEncoder')
    model = make_model(corruptions=['fog', 'greyscale', 'gaussian_noise'], severities=(1, 2),
                       encoder=tiny, pose_encoder=tiny)
    inputs = textured_sequence()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(10):
        loss = model(inputs, None, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    assert all(np.isfinite(history))
    assert np.mean(history[-3:]) < 0.5 * np.mean(history[:2]), history


def test_checkpoints_are_interchangeable_with_monodepth():
    robust = make_model()
    mono = MonoDepth(loss=dict(identity_noise=0.0))
    assert robust.state_dict().keys() == mono.state_dict().keys()
    mono.load_state_dict(robust.state_dict())
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(mono.eval()(x), robust.eval()(x))


def test_errors():
    with pytest.raises(ValueError, match='needs temporal source frames'):
        RobustDepth(frame_ids=(0, 's'))
    with pytest.raises(ValueError, match="physics_depth must be 'prediction' or 'ramp'"):
        make_model(physics_depth='lidar')
    with pytest.raises(ValueError, match="unknown corruption 'hail'"):
        make_model(corruptions=['fog', 'hail'])
    with pytest.raises(ValueError, match='physics_depth_range'):
        make_model(physics_depth_range=(10.0, 1.0))


@pytest.mark.parametrize('name', ['robust_depth_kitti.py', 'robust_depth_kitti_demo.py'])
def test_configs_build(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    model = MODELS.build(cfg.model)
    assert isinstance(model, RobustDepth) and model.pseudo_depth_weight == 0.01
    assert len(model.corruption.corruptions) == 20
    if name == 'robust_depth_kitti.py':
        assert (model.min_depth, model.max_depth) == (0.1, 80.0)
        assert cfg.train_dataloader.batch_size == 12 and cfg.randomness.seed == 42
        assert (cfg.train_dataloader.dataset.height, cfg.train_dataloader.dataset.width) == \
            (192, 640)
        assert cfg.train_cfg.max_epochs == 30 and cfg.optim_wrapper.optimizer.lr == 1e-4
        assert cfg.param_scheduler[0].milestones == [20, 25, 29]
        assert model._imagenet == {'encoder': None, 'pose_encoder': None}
    else:  # everything but the model as the MonoDepth demo, on the dynamic drives
        mono = Config.fromfile(osp.join(ROOT, 'configs', 'monodepth_kitti_demo.py'))
        for key in ('train_cfg', 'optim_wrapper', 'param_scheduler', 'randomness'):
            assert cfg[key] == mono[key], key
        for key in ('train_dataloader', 'test_dataloader'):
            a, b = cfg[key].to_dict(), mono[key].to_dict()
            assert a['dataset'].pop('data_root') == 'data/kitti_dyn'
            b['dataset'].pop('data_root')
            assert a == b, key
        assert model.frame_ids == (0, -1, 1, 's')


def test_monodepth_loss_visuals_hold_the_per_pixel_errors():
    """RobustDepth's choice masks read the per-source errors from MonocularDepthLoss."""
    from geo3d.models.depth.losses import MonocularDepthLoss
    from geo3d.models.depth.photometric import photometric_error
    g = torch.Generator().manual_seed(0)
    img = {f: torch.rand(1, 3, 32, 48, generator=g) for f in FRAME_IDS}
    K, inv_K = intrinsics(1, 32, 48, 1)
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = 0.1
    loss = MonocularDepthLoss(scales=(0,), identity_noise=0.0)
    _, vis = loss.forward_with_visuals({('disp', 0): torch.full((1, 1, 32, 48), 0.3)},
                                       {('color', f, 0): x for f, x in img.items()},
                                       {('T', -1): T, ('T', 1): T}, K[:, 0], inv_K[:, 0])
    for k, f in enumerate((-1, 1)):
        torch.testing.assert_close(vis['identity'][:, k:k + 1], photometric_error(img[f], img[0]))
        torch.testing.assert_close(vis[('reprojection', 0)][:, k:k + 1],
                                   photometric_error(vis[('warped', f, 0)], img[0]))
