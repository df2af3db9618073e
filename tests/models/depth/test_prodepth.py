"""ProDepth: auxiliary depth, static probability, PCVM feed, W-weighted loss, uncertainty head."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from geo3d.models.depth.manydepth import ManyDepth
from geo3d.models.depth.monodepth import MonoDepth
from geo3d.models.depth.prodepth import ProDepth
from geo3d.structures.camera import disp_to_depth
from tests.helpers.tiny_depth_encoder import TINY_DECODER_CHANNELS
from tests.models.depth.test_monodepth import batch, samples, textured_sequence

H, W = 64, 96
BINS = 8
TINY = dict(type='TinyDepthEncoder')
DEC = dict(type='DepthDecoder', decoder_channels=TINY_DECODER_CHANNELS)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make(**kw) -> ProDepth:
    torch.manual_seed(0)
    kw.setdefault('teacher', dict(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC,
                                  loss=dict(identity_noise=0.0)))
    kw.setdefault('encoder', dict(encoder=TINY, cost_volume=dict(
        type='PlaneSweepCostVolume', num_bins=BINS, binning='log')))
    kw.setdefault('depth_decoder', DEC)
    kw.setdefault('aux_depth', dict(decoder=DEC))
    kw.setdefault('uncertainty_decoder', DEC)
    kw.setdefault('static_camera_prob', 0.0)
    kw.setdefault('zero_cost_volume_prob', 0.0)
    kw.setdefault('freeze_teacher', True)
    kw.setdefault('bin_warm_start', True)
    return ProDepth(**kw)


@pytest.fixture(scope='module')
def base() -> ProDepth:
    return make()


def fresh(base: ProDepth, **attrs) -> ProDepth:
    model = copy.deepcopy(base)
    for k, v in attrs.items():
        setattr(model, k, v)
    return model


def capture(model: ProDepth) -> dict:
    """Record the multi-frame loss's arguments, the fused cost and the aux output."""
    seen: dict = {}
    model.loss.register_forward_hook(
        lambda m, args, out: seen.update(disps=args[0], mask=args[5], teacher=args[6]))
    model.aux_depth.register_forward_hook(lambda m, args, out: seen.update(aux=out[0]))
    fuse = model.encoder.fuse
    model.encoder.fuse = lambda feats, cost: seen.update(cost=cost) or fuse(feats, cost)
    return seen


def test_structure_and_output_shapes(base):
    model = fresh(base).eval()
    assert isinstance(model, ManyDepth)
    assert model.mono_uncert.num_output_channels == 1 and model.mono_uncert.scales == (0,)
    assert model.encoder.cost_volume.binning == 'log'
    assert (model.loss.consistency_weight, model.loss.consistency_on,
            model.loss.consistency_scales) == (0.1, 'disparity', 'first')
    seen = capture(model)
    with torch.no_grad():
        losses = model(batch(), samples(2), mode='loss')
        preds = model(batch(frame_ids=(0, -1)), samples(2, (0, -1)), mode='predict')
        disps = model(batch(), samples(2), mode='tensor')
    assert {'loss', 'loss_aux', 'loss_uncertainty', 'aux_reprojection_s0',
            'static_fraction'} <= set(losses)
    assert 'loss_teacher' not in losses  # frozen teacher
    assert seen['aux'].shape == (2, 1, H, W) and seen['mask'].shape == (2, 1, H, W)
    assert seen['cost'].shape == (2, BINS, H // 4, W // 4)
    assert preds[0]['pred_disp'].shape == (1, H, W)
    assert sorted(disps) == [0, 1, 2, 3] and disps[3].shape == (2, 1, H // 8, W // 8)


def test_static_probability_mask_is_the_w_weighted_hand_computation(base):
    """M = W [W > 0.4] (1 - aug) with W = exp(-2/3 |D_cv - D_mono|) exp(-2/3 |s_cv - s_mono|)."""
    model = fresh(base, zero_cost_volume_prob=0.5).eval()
    seen = capture(model)
    torch.manual_seed(1)  # the per-sample augmentation draw
    with torch.no_grad():
        losses = model(batch(), samples(2), mode='loss')
    torch.manual_seed(1)
    r = torch.rand(2)
    aug = ((r >= 0.0) & (r < 0.5)).float().view(2, 1, 1, 1)
    s_cv, d_cv = disp_to_depth(seen['aux'], 0.1, 100.0)
    s_t, d_t = disp_to_depth(seen['teacher'][('disp', 0)], 0.1, 100.0)
    Wp = torch.exp(-2 / 3 * (d_cv - d_t).abs()) * torch.exp(-2 / 3 * (s_cv - s_t).abs())
    M = Wp * (Wp > 0.4).float() * (1 - aug)
    torch.testing.assert_close(seen['mask'], M)
    torch.testing.assert_close(losses['static_fraction'], (Wp > 0.4).float().mean())
    # and the loss is sum(pe M) / sum(M) + 0.1 * consistency on (1 - M): see
    # test_multiframe_loss.py; here the consistency on the scale-0 scaled disparity
    s_m, _ = disp_to_depth(seen['disps'][('disp', 0)], 0.1, 100.0)
    torch.testing.assert_close(losses['consistency_s2'], ((s_m - s_t).abs() * (1 - M)).mean())


def test_pcvm_modulates_the_volume_fed_to_reduce_conv(base):
    # a steep static probability: most pixels count as dynamic (W <= 0.4, not gated), so the
    # modulated volume differs from the cost volume
    alpha = 20.0
    model = fresh(base, static_alpha=alpha).eval()
    seen = capture(model)
    inputs = batch()
    with torch.no_grad():
        model(inputs, samples(2), mode='loss')
        img = inputs['color_aug'][0][:, 0]
        m = model.encoder.match(img, inputs['color_aug'][0][:, 1:2],
                                seen_poses(model, inputs), inputs['K'][:, 0])
        feats = model.teacher.encoder(img)
        t_disp = model.teacher.depth_decoder(feats)[0]
        sigma = model.mono_uncert(feats)[0]
        size = m.cost.cost.shape[-2:]
        aux_q = F.interpolate(seen['aux'], size, mode='bilinear', align_corners=False)
        t_q = F.interpolate(t_disp, size, mode='bilinear', align_corners=False)
        (s_a, d_a), (s_b, d_b) = disp_to_depth(aux_q, 0.1, 100), disp_to_depth(t_q, 0.1, 100)
        W_q = torch.exp(-alpha * ((d_a - d_b).abs() + (s_a - s_b).abs()))
        sigma_q = F.interpolate(sigma, size, mode='bilinear', align_corners=False)
        ref = model.pcvm(m.cost.cost, d_b, sigma_q, W_q, m.cost.bins)
    torch.testing.assert_close(seen['cost'], ref)
    assert float((W_q <= 0.4).float().mean()) > 0.2
    assert not torch.allclose(ref, m.cost.cost * m.cost.confidence)  # not ManyDepth's feed


def seen_poses(model: ProDepth, inputs: dict) -> torch.Tensor:
    frames = {f: inputs['color_aug'][0][:, i] for i, f in enumerate((0, -1, 1))}
    return model.teacher.predict_poses(frames, None, (-1,))[('T', -1)].unsqueeze(1)


def test_overfitting_a_fixed_batch_lowers_the_losses():
    """ProDepth with the teacher and pose net trained jointly (a random frozen pose net could
    not explain the motion of the scene), every loss term summed as mmengine does."""
    model = make(freeze_teacher=False).train()
    inputs = textured_sequence()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hist: dict[str, list[float]] = {'loss': [], 'loss_aux': [], 'loss_uncertainty': []}
    for _ in range(10):
        losses = model(inputs, None, mode='loss')
        opt.zero_grad()
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        opt.step()
        for k in hist:
            hist[k].append(float(losses[k].detach()))
    assert np.isfinite(sum(hist.values(), [])).all()
    for k in ('loss', 'loss_aux'):  # about 0.15 -> 0.02 and 0.04 -> 0.005
        assert np.mean(hist[k][-3:]) < 0.5 * hist[k][0], (k, hist[k])
    assert hist['loss_uncertainty'][-1] < hist['loss_uncertainty'][0] - 0.3


def test_gradients_go_where_prodepth_sends_them(base):
    model = fresh(base).train()
    losses = model(batch(b=2), samples(2), mode='loss')

    def grads(module: torch.nn.Module) -> float:
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    losses['loss_aux'].backward(retain_graph=True)
    assert grads(model.aux_depth) > 0
    assert grads(model.encoder) == 0  # the aux net sees detached matching features
    model.zero_grad()
    losses['loss_uncertainty'].backward(retain_graph=True)
    assert grads(model.mono_uncert) > 0
    assert grads(model.teacher) == 0 and grads(model.encoder) == 0
    model.zero_grad()
    losses['loss'].backward()
    assert grads(model.encoder) > 0 and grads(model.depth_decoder) > 0
    assert grads(model.aux_depth) == 0 and grads(model.mono_uncert) == 0
    assert all(not p.requires_grad for p in model.teacher.parameters())


def test_without_uncertainty_loss_the_head_is_frozen():
    model = make(uncertainty_loss=None)
    assert all(not p.requires_grad for p in model.mono_uncert.parameters())
    with torch.no_grad():
        assert 'loss_uncertainty' not in model(batch(), samples(2), mode='loss')


def test_predict_uses_the_teacher_and_falls_back_to_zero_pose(base):
    model = fresh(base).eval()
    full = batch(frame_ids=(0, -1))
    only0 = {k: ([x[:, :1] for x in v] if k in ('color', 'color_aug') else v)
             for k, v in full.items()}
    with torch.no_grad():
        multi = model(full, samples(2, (0, -1)), mode='predict')
        single = model(only0, samples(2, (0,)), mode='predict')
        img = full['color'][0][:, 0]
        teacher = model._teacher_forward({0: img}, None, (), False)
        zero = model._multi_frame(img, torch.zeros(2, 1, 3, H, W), torch.zeros(2, 1, 4, 4),
                                  full['K'][:, 0], teacher).disps[0]
        with pytest.raises(ValueError, match='needs the teacher outputs'):
            model._multi_frame(img, torch.zeros(2, 1, 3, H, W), torch.zeros(2, 1, 4, 4),
                               full['K'][:, 0], None)
    for i in range(2):
        torch.testing.assert_close(single[i]['pred_disp'],
                                   disp_to_depth(zero, 0.1, 100.0)[0][i])
        assert not torch.allclose(multi[i]['pred_disp'], single[i]['pred_disp'])


def test_teacher_checkpoint_with_an_uncertainty_head(tmp_path, base):
    mono = MonoDepth(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC)
    path = tmp_path / 'mono.pth'
    torch.save({'state_dict': mono.state_dict()}, path)
    model = fresh(base)
    head = copy.deepcopy(model.mono_uncert.state_dict())
    model.load_teacher(str(path))  # a MonoDepth checkpoint: the head stays as it was
    assert all(torch.equal(v, model.mono_uncert.state_dict()[k]) for k, v in head.items())
    other = fresh(base)
    for p in other.parameters():
        p.data.add_(1.0)
    pro = tmp_path / 'pro.pth'
    torch.save({'state_dict': other.state_dict()}, pro)
    model.load_teacher(str(pro))  # a ProDepth checkpoint: teacher and head
    for k, v in other.mono_uncert.state_dict().items():
        assert torch.equal(model.mono_uncert.state_dict()[k], v), k
    assert torch.equal(model.teacher.encoder.levels[0][0].weight,
                       other.teacher.encoder.levels[0][0].weight)
    # the range of a ProDepth checkpoint is in its state dict
    assert 'encoder.cost_volume.max_depth_bin' in other.state_dict()


def test_lite_mono_backbone_with_three_scales():
    lite = dict(type='LiteMonoEncoder', variant='lite-mono-tiny', height=H, width=W,
                drop_path_rate=0.0)
    model = make(teacher=dict(encoder=lite, pose_encoder=TINY, depth_decoder=DEC),
                 encoder=dict(encoder=lite, cost_volume=dict(type='PlaneSweepCostVolume',
                                                             num_bins=BINS)),
                 scales=(0, 1, 2)).eval()
    assert type(model.aux_depth.encoder).__name__ == 'LiteMonoEncoder'
    with torch.no_grad():
        losses = model(batch(), samples(2), mode='loss')
        preds = model(batch(frame_ids=(0, -1)), samples(2, (0, -1)), mode='predict')
    assert math.isfinite(float(losses['loss'])) and 'reprojection_s3' not in losses
    assert preds[0]['pred_disp'].shape == (1, H, W)


def test_clear_errors():
    with pytest.raises(ValueError, match='static_gate in \\[0, 1\\]'):
        make(static_gate=1.5)
    with pytest.raises(ValueError, match='uncertainty_decoder.scales must contain 0'):
        make(uncertainty_decoder=dict(DEC, scales=(1,)))
    with pytest.raises(ValueError, match="uncertainty_decoder.num_output_channels=2 disagrees"):
        make(uncertainty_decoder=dict(DEC, num_output_channels=2))


@pytest.mark.parametrize('name', ['prodepth_kitti', 'prodepth_kitti_demo', 'prodepth_cityscapes'])
def test_configs_build(name):
    from mmengine.config import Config

    from geo3d.registry import MODELS
    cfg = Config.fromfile(f'configs/{name}.py')
    model = MODELS.build(cfg.model)
    assert isinstance(model, ProDepth) and model.teacher_frozen
    cv = model.encoder.cost_volume
    assert (cv.num_bins, cv.binning) == (128, 'log')
    assert tuple(cfg.test_dataloader.dataset.frame_ids) == (0, -1)
    assert model.aux_weight == 0.3 and model.pcvm.var_scale == 20.0
    if name == 'prodepth_kitti_demo':
        assert cfg.test_evaluator.regions == ('dynamic',)
        assert model.scales == (0, 1, 2, 3) and cv.adaptive_range and model.init_from_teacher
    else:
        assert type(model.encoder.encoder).__name__ == 'LiteMonoEncoder'
        assert model.encoder.encoder.variant == 'lite-mono-8m' and model.scales == (0, 1, 2)
        assert not cv.adaptive_range
        want = (0.12, 6.92) if name == 'prodepth_kitti' else (0.13, 5.17)
        assert (float(cv.min_depth_bin), float(cv.max_depth_bin)) == pytest.approx(want)


def test_init_from_teacher_gives_a_static_start(tmp_path):
    torch.manual_seed(3)
    mono = MonoDepth(encoder=TINY, pose_encoder=TINY, depth_decoder=DEC)
    path = tmp_path / 'mono.pth'
    torch.save({'state_dict': mono.state_dict()}, path)
    model = make(teacher_checkpoint=str(path), init_from_teacher=True)
    model.init_weights()
    model.eval()
    seen = capture(model)
    with torch.no_grad():
        losses = model(batch(), samples(2), mode='loss')
    torch.testing.assert_close(seen['aux'], seen['teacher'][('disp', 0)])
    torch.testing.assert_close(seen['disps'][('disp', 0)], seen['teacher'][('disp', 0)])
    assert float(losses['static_fraction']) == 1.0  # W = 1: every pixel starts static
