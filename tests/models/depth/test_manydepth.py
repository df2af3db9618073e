"""ManyDepth: shapes, training behaviour (freezing, augmentation, masks, bins), predict, errors."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from geo3d.models.depth.cost_volume import CostVolumeOutput
from geo3d.models.depth.manydepth import ManyDepth, MultiFrameOutput, TeacherOutput, motion_mask
from geo3d.models.depth.monodepth import MonoDepth
from geo3d.structures.camera import depth_to_disp, disp_to_depth
from tests.helpers.tiny_depth_encoder import TINY_DECODER_CHANNELS
from tests.models.depth.test_monodepth import batch, samples, textured_sequence

H, W = 64, 96
BINS = 8
TINY = dict(type='TinyDepthEncoder')  # narrow nets: a training step in milliseconds
DEC = dict(type='DepthDecoder', decoder_channels=TINY_DECODER_CHANNELS)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make(tiny: bool = True, **kw) -> ManyDepth:
    torch.manual_seed(0)
    cv = dict(type='PlaneSweepCostVolume', num_bins=BINS)
    if tiny:
        kw.setdefault('encoder', dict(encoder=TINY, cost_volume=cv))
        kw.setdefault('teacher', dict(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC,
                                      loss=dict(identity_noise=0.0)))
        kw.setdefault('depth_decoder', DEC)
    kw.setdefault('encoder', dict(cost_volume=cv))
    kw.setdefault('teacher', dict(loss=dict(identity_noise=0.0)))
    kw.setdefault('static_camera_prob', 0.0)
    kw.setdefault('zero_cost_volume_prob', 0.0)
    return ManyDepth(**kw)


@pytest.fixture(scope='module')
def base() -> ManyDepth:
    return make()


def fresh(base: ManyDepth, **attrs) -> ManyDepth:
    model = copy.deepcopy(base)
    for k, v in attrs.items():
        setattr(model, k, v)
    return model


def test_loss_predict_and_tensor_shapes():
    model = make(tiny=False).eval()  # the real ResNet-18 networks
    assert model.encoder.num_ch_enc == (64, 64, 128, 256, 512)
    with torch.no_grad():
        losses = model(batch(), samples(2), mode='loss')
        preds = model(batch(), samples(2), mode='predict')
        disps = model(batch(), samples(2), mode='tensor')
    for s in range(4):
        for k in ('reprojection', 'consistency', 'smoothness', 'teacher_reprojection'):
            assert torch.isfinite(losses[f'{k}_s{s}']), k
        assert disps[s].shape == (2, 1, H >> s, W >> s)
    assert {'loss', 'loss_teacher', 'min_depth_bin', 'max_depth_bin',
            'reprojection_mask'} <= set(losses)
    assert [k for k in losses if 'loss' in k] == ['loss_teacher', 'loss']
    assert len(preds) == 2 and preds[0]['pred_disp'].shape == (1, H, W)
    assert preds[1]['img_path'] == '/x/1_0.png'
    torch.testing.assert_close(preds[0]['pred_disp'],
                               disp_to_depth(disps[0][0], 0.1, 100.0)[0])
    assert model.mono_encoder is model.teacher.encoder
    assert model.mono_depth is model.teacher.depth_decoder


def test_overfitting_a_fixed_batch_lowers_both_losses(base):
    """Joint training (teacher + multi-frame) on a fronto-parallel textured scene; the bins
    start on the teacher's range (else the trusted mask is nearly empty at init)."""
    model = fresh(base, bin_warm_start=True).train()
    inputs = textured_sequence()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    multi, teacher = [], []
    for _ in range(10):
        losses = model(inputs, None, mode='loss')
        opt.zero_grad()
        (losses['loss'] + losses['loss_teacher']).backward()
        opt.step()
        multi.append(float(losses['loss'].detach()))
        teacher.append(float(losses['loss_teacher'].detach()))
    assert np.isfinite(multi).all() and np.isfinite(teacher).all()
    assert np.mean(multi[-3:]) < 0.5 * multi[0], multi  # about 0.14 -> 0.02
    assert np.mean(teacher[-3:]) < 0.5 * teacher[0], teacher
    assert float(losses['reprojection_mask']) > 0.3


def test_freezing_really_freezes_the_teacher_and_pose_net(base):
    model = fresh(base).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = batch(b=2)
    # one joint step first, so that Adam has momentum on the teacher
    losses = model(inputs, None, mode='loss')
    (losses['loss'] + losses['loss_teacher']).backward()
    opt.step()
    model.freeze_teacher()
    model.train()  # the runner calls train(); the teacher must stay in eval mode
    assert model.teacher_frozen and not model.teacher.training
    assert model.encoder.training and model.depth_decoder.training
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    multi_before = model.encoder.reduce_conv[0].weight.clone()
    opt.zero_grad()
    losses = model(inputs, None, mode='loss')
    assert 'loss_teacher' not in losses
    losses['loss'].backward()
    opt.step()
    for k, v in model.teacher.state_dict().items():  # parameters and BN statistics
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None and not p.requires_grad for p in model.teacher.parameters())
    assert not torch.equal(model.encoder.reduce_conv[0].weight, multi_before)


@pytest.mark.parametrize('kind', ['static_camera', 'zero_cost_volume'])
def test_augmented_samples_get_no_multi_frame_reprojection_loss(base, kind):
    model = fresh(base, bin_warm_start=True, **{f'{kind}_prob': 1.0}).eval()
    seen = {}
    match = model.encoder.match
    model.encoder.match = lambda img, look, poses, K, inv_K=None: \
        seen.update(look=look, poses=poses) or match(img, look, poses, K)
    inputs = batch(aug_shift=0.1)
    with torch.no_grad():
        losses = model(inputs, None, mode='loss')
    for s in range(4):
        assert float(losses[f'reprojection_s{s}']) == 0.0
        assert float(losses[f'consistency_s{s}']) > 0  # the teacher supervises them instead
    assert float(losses['reprojection_mask']) == 0.0
    if kind == 'static_camera':  # the lookup frame is the (un-augmented) current frame
        torch.testing.assert_close(seen['look'][:, 0], inputs['color'][0][:, 0])
        assert seen['poses'].abs().sum() > 0
    else:
        assert float(seen['poses'].abs().sum()) == 0.0
    clean = fresh(base, bin_warm_start=True).eval()  # bins on the teacher's range: M > 0
    with torch.no_grad():
        losses = clean(inputs, None, mode='loss')
    assert float(losses['reprojection_s0']) > 0 and float(losses['reprojection_mask']) > 0


def test_motion_mask_on_a_hand_made_case():
    t = torch.full((1, 1, 1, 5), 2.0)
    c = torch.tensor([1.0, 1.5, 2.0, 3.9, 4.0]).view(1, 1, 1, 5)
    # (c - t) / t < 1 and (t - c) / c < 1  <=>  1 < c < 4 for t = 2
    assert motion_mask(c, t).flatten().tolist() == [False, True, True, True, False]


def test_reprojection_mask_and_consistency_on_the_untrusted_pixels(base):
    """M = confidence * trusted * (1 - aug), and the consistency loss acts on 1 - M."""
    model = fresh(base).eval()
    bins = torch.tensor([1.0, 2.0, 4.0, 8.0])
    cost = torch.ones(2, 4, 1, 4)
    for px, k in enumerate([0, 1, 2, 3]):  # argmin bin per pixel: depths 1, 2, 4, 8
        cost[:, k, 0, px] = 0.0
    confidence = torch.ones(2, 1, 1, 4)
    confidence[0, 0, 0, 1] = 0.0
    cv = CostVolumeOutput(cost=cost, raw=cost, confidence=confidence, bins=bins)
    out = MultiFrameOutput(disps={}, match=type('M', (), {'cost': cv})())
    t_disp = depth_to_disp(torch.full((2, 1, 1, 4), 3.0), 0.1, 100.0)  # teacher depth 3
    teacher = TeacherOutput(features=None, disps={0: t_disp}, poses={})
    aug = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    mask = model._reprojection_mask(out, teacher, aug, (1, 4))
    # trusted for 1.5 < c < 6: bins 2 and 4; pixel 1 of sample 0 has no confidence
    assert mask[0].flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert mask[1].flatten().tolist() == [0.0, 0.0, 0.0, 0.0]
    # in the model: the consistency term is L1(depth, teacher depth) on 1 - M
    model.bin_warm_start = True  # bins on the teacher's range: some pixels are trusted
    seen = {}
    model.loss.register_forward_hook(
        lambda mod, args, out: seen.update(disps=args[0], mask=args[5], teacher=args[6]))
    with torch.no_grad():
        losses = model(batch(), None, mode='loss')
    _, depth = disp_to_depth(seen['disps'][('disp', 0)], 0.1, 100.0)
    _, t_depth = disp_to_depth(seen['teacher'][('disp', 0)], 0.1, 100.0)
    ref = ((depth - t_depth).abs() * (1 - seen['mask'])).mean()
    torch.testing.assert_close(losses['consistency_s0'], ref)
    assert 0 < float(seen['mask'].mean()) < 1


def test_predict_with_and_without_the_previous_frame(base):
    model = fresh(base).eval()
    full = batch(frame_ids=(0, -1))
    only0 = {k: ([x[:, :1] for x in v] if k in ('color', 'color_aug') else v)
             for k, v in full.items()}
    with torch.no_grad():
        multi = model(full, samples(2, (0, -1)), mode='predict')
        single = model(only0, samples(2, (0,)), mode='predict')
        bare = model(full['color'][0][:, 0], mode='predict')
        # the fallback is the zero-pose path of the multi-frame net
        img = full['color'][0][:, 0]
        zero = model._multi_frame(img, torch.zeros(2, 1, 3, H, W), torch.zeros(2, 1, 4, 4),
                                  full['K'][:, 0], None).disps[0]
        mixed_samples = samples(2, (0, -1))
        mixed_samples[1].set_metainfo({'missing_frames': [-1]})
        mixed = model(full, mixed_samples, mode='predict')
        teacher = model.teacher(full, samples(2, (0, -1)), mode='predict')
        model.predict_teacher = True
        as_teacher = model(full, samples(2, (0, -1)), mode='predict')
    zero_scaled = disp_to_depth(zero, 0.1, 100.0)[0]
    for i in range(2):
        torch.testing.assert_close(single[i]['pred_disp'], zero_scaled[i])
        torch.testing.assert_close(bare[i]['pred_disp'], zero_scaled[i])
        torch.testing.assert_close(as_teacher[i]['pred_disp'], teacher[i]['pred_disp'])
        assert not torch.allclose(multi[i]['pred_disp'], single[i]['pred_disp'])
    torch.testing.assert_close(mixed[0]['pred_disp'], multi[0]['pred_disp'])
    torch.testing.assert_close(mixed[1]['pred_disp'], single[1]['pred_disp'])


def test_teacher_checkpoint_is_loaded_by_init_weights_and_frozen(tmp_path):
    torch.manual_seed(5)
    mono = MonoDepth(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC)
    path = tmp_path / 'mono.pth'
    torch.save({'meta': {'epoch': 8}, 'state_dict': mono.state_dict()}, path)
    model = make(teacher_checkpoint=str(path))
    assert model.teacher_frozen
    assert not torch.equal(model.teacher.encoder.levels[0][0].weight, mono.encoder.levels[0][0].weight)
    model.init_weights()
    for k, v in mono.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[k], v), k
    # a ManyDepth checkpoint works too (its teacher.*)
    many = tmp_path / 'many.pth'
    torch.save({'state_dict': model.state_dict()}, many)
    other = make(teacher_checkpoint=str(many))
    other.init_weights()
    assert torch.equal(other.teacher.encoder.levels[0][0].weight, mono.encoder.levels[0][0].weight)
    stereo = tmp_path / 'stereo.pth'  # no pose network in it
    torch.save({'state_dict': MonoDepth(encoder=TINY, depth_decoder=DEC, frame_ids=(0, 's'))
                .state_dict()}, stereo)
    with pytest.raises(RuntimeError, match=r'stereo\.pth: not a checkpoint of the teacher.*'
                                           r'missing keys \[.pose_encoder'):
        model.load_teacher(str(stereo))
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        model.load_teacher(str(tmp_path / 'nope.pth'))


def test_state_dict_holds_the_bin_range_which_follows_the_teacher(base):
    model = fresh(base).eval()
    cv = model.encoder.cost_volume
    inputs = batch()
    with torch.no_grad():
        t_disp = model.teacher.predict_disparities(inputs['color_aug'][0][:, 0])[0]
        model(inputs, None, mode='loss')
    _, depth = disp_to_depth(t_disp, 0.1, 100.0)
    new_min = max(0.1, 0.9 * float(depth.flatten(1).amin(1).mean()))
    new_max = 1.1 * float(depth.flatten(1).amax(1).mean())
    assert float(cv.min_depth_bin) == pytest.approx(0.99 * 0.1 + 0.01 * new_min, rel=1e-5)
    assert float(cv.max_depth_bin) == pytest.approx(0.99 * 10.0 + 0.01 * new_max, rel=1e-5)
    sd = model.state_dict()
    assert 'encoder.cost_volume.min_depth_bin' in sd and 'bins_warm_started' in sd
    restored = fresh(base)
    restored.load_state_dict(sd)
    assert float(restored.encoder.cost_volume.max_depth_bin) == float(cv.max_depth_bin)
    # frozen teacher: the range stays ('until_frozen'), unless a warm start is asked for
    frozen = fresh(base).eval()
    frozen.freeze_teacher()
    with torch.no_grad():
        frozen(inputs, None, mode='loss')
    assert float(frozen.encoder.cost_volume.max_depth_bin) == 10.0
    warm = fresh(base, bin_warm_start=True).eval()
    warm.freeze_teacher()
    with torch.no_grad():
        warm(inputs, None, mode='loss')
        warm(inputs, None, mode='loss')
    assert float(warm.encoder.cost_volume.min_depth_bin) == pytest.approx(new_min, rel=1e-5)
    assert float(warm.encoder.cost_volume.max_depth_bin) == pytest.approx(new_max, rel=1e-5)
    assert bool(warm.bins_warm_started)


def test_clear_errors(base):
    model = fresh(base)
    with pytest.raises(ValueError, match=r"mode='loss' needs every loss frame \[0, -1, 1\] "
                                         r'\(matching frames \[-1\] included\)'):
        model(batch(frame_ids=(0, 1, 2)), samples(2, (0, 1, 2)), mode='loss')
    bad = batch()
    bad['color'] = [x[:, :2] for x in bad['color']]
    with pytest.raises(ValueError, match=r"inputs\['color'\]\[0\] must be \(B, 3, 3, H, W\)"):
        model(bad, None, mode='loss')
    with pytest.raises(ValueError, match=r'images must be \(B, 3, H, W\)'):
        model(torch.rand(2, 4, H, W), mode='predict')
    with pytest.raises(ValueError, match="mode must be 'loss', 'predict' or 'tensor'"):
        model(batch(), mode='train')
    with pytest.raises(ValueError, match=r'matching frames \[-2\] are not loss frames'):
        make(matching_ids=(0, -2))
    with pytest.raises(ValueError, match='matching_ids must be 0 then distinct'):
        make(matching_ids=(-1, 0))
    with pytest.raises(ValueError, match='static_camera_prob \\+ zero_cost_volume_prob'):
        make(static_camera_prob=0.6, zero_cost_volume_prob=0.6)


@pytest.mark.parametrize('name', ['manydepth_kitti', 'manydepth_kitti_demo'])
def test_configs_build(name):
    from mmengine.config import Config

    from geo3d.registry import MODELS
    cfg = Config.fromfile(f'configs/{name}.py')
    model = MODELS.build(cfg.model)
    assert isinstance(model, ManyDepth)
    cv = model.encoder.cost_volume
    assert (cv.num_bins, cv.binning) == (96, 'linear')
    assert tuple(cfg.test_dataloader.dataset.frame_ids) == (0, -1)
    assert cfg.test_dataloader.dataset.missing_frame == 'zeros'
    if name == 'manydepth_kitti':
        assert not model.teacher_frozen and cfg.custom_hooks[0]['epoch'] == 15
        from geo3d.registry import HOOKS
        assert HOOKS.build(cfg.custom_hooks[0]).epoch == 15
        assert (model.static_camera_prob, model.zero_cost_volume_prob) == (0.25, 0.25)
    else:
        assert model.teacher_frozen and model.teacher_checkpoint.endswith('epoch_8.pth')
        assert model.init_from_teacher and cfg.test_evaluator.regions == ('dynamic',)
        assert cfg.train_dataloader.dataset.frame_ids == (0, -1, 1, 's')


def test_missing_frame_metainfo_is_read_per_sample(base):
    model = fresh(base)
    frames = {0: torch.rand(2, 3, 4, 4), -1: torch.rand(2, 3, 4, 4)}
    frames[-1][0] = 0.0  # ManyDepth's black-image test
    s = [BaseDataElement(metainfo={}), BaseDataElement(metainfo={'missing_frames': [-1]})]
    assert model._missing(frames, -1, s).tolist() == [True, True]
    assert model._missing(frames, -1, None).tolist() == [True, False]


def test_init_from_teacher_starts_the_multi_frame_net_as_the_teacher(tmp_path):
    torch.manual_seed(3)
    mono = MonoDepth(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC)
    path = tmp_path / 'mono.pth'
    torch.save({'state_dict': mono.state_dict()}, path)
    model = make(teacher_checkpoint=str(path), init_from_teacher=True)
    model.init_weights()
    model.eval()
    inputs = batch(frame_ids=(0, -1))
    with torch.no_grad():
        multi = model.predict_disparities(inputs, samples(2, (0, -1)))
        teacher = mono.eval().predict_disparities(inputs['color'][0][:, 0])
    for s in range(4):
        torch.testing.assert_close(multi[s], teacher[s])
    w = model.encoder.reduce_conv[0].weight.detach()
    assert float(w[:, 8:].abs().sum()) == 0  # the cost-volume channels start at zero
    with pytest.raises(ValueError, match='init_from_teacher: encoder.encoder'):
        make(init_from_teacher=True, encoder=dict(
            encoder=dict(TINY, widths=(8, 8, 16, 16, 16)),
            cost_volume=dict(type='PlaneSweepCostVolume', num_bins=BINS))).copy_teacher_weights()
