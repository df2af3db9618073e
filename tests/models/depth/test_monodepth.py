"""MonoDepth (Monodepth2): pose pairs and inversion, clean/augmented images, modes, overfitting."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from mmengine.structures import BaseDataElement

from geo3d.evaluation.depth import DepthMetric
from geo3d.models.data_preprocessors.image import MultiFrameDataPreprocessor
from geo3d.models.depth.losses import MonocularDepthLoss
from geo3d.models.depth.monodepth import MonoDepth
from geo3d.models.depth.published_weights import MODULE_NAMES
from geo3d.structures.camera import pose_vec_to_matrix

H, W = 64, 96
FRAME_IDS = (0, -1, 1)


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def make_model(**kwargs) -> MonoDepth:
    torch.manual_seed(0)
    kwargs.setdefault('loss', dict(identity_noise=0.0))
    return MonoDepth(**kwargs)


def intrinsics(b: int, h: int = H, w: int = W, scales: int = 4
               ) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.zeros(b, scales, 4, 4)
    for s in range(scales):
        f = 2 ** s
        K[:, s] = torch.tensor([[0.6 * w / f, 0, 0.5 * w / f, 0], [0, 1.9 * h / f, 0.5 * h / f, 0],
                                [0, 0, 1, 0], [0, 0, 0, 1]])
    return K, torch.linalg.inv(K)


def pyramid(frames: torch.Tensor, scales: int = 4) -> list[torch.Tensor]:
    """(B, F, 3, H, W) -> list over scales (area downsampling)."""
    b, f = frames.shape[:2]
    out = [frames]
    for s in range(1, scales):
        x = torch.nn.functional.interpolate(frames.flatten(0, 1), scale_factor=0.5 ** s,
                                            mode='area')
        out.append(x.view(b, f, *x.shape[1:]))
    return out


def batch(b: int = 2, seed: int = 0, aug_shift: float = 0.0, frame_ids=FRAME_IDS) -> dict:
    g = torch.Generator().manual_seed(seed)
    color = torch.rand(b, len(frame_ids), 3, H, W, generator=g)
    aug = (color + aug_shift).clamp(0, 1)
    K, inv_K = intrinsics(b)
    return {'color': pyramid(color), 'color_aug': pyramid(aug), 'K': K, 'inv_K': inv_K}


def test_submodule_names_match_published_weight_layout():
    model = make_model()
    prefixes = {k.split('.', 1)[0] for k in model.state_dict()}
    assert prefixes == set(MODULE_NAMES)
    assert model.pose_encoder.conv1.in_channels == 6
    assert model.depth_decoder.num_ch_enc == model.encoder.num_ch_enc


def test_pose_pairs_are_stacked_in_temporal_order_and_inverted_for_past_frames():
    model = make_model().eval()
    seen = []
    model.pose_encoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    g = torch.Generator().manual_seed(1)
    frames = {f: torch.rand(1, 3, H, W, generator=g) for f in FRAME_IDS}
    with torch.no_grad():
        poses = model.predict_poses(frames)
    assert torch.equal(seen[0], torch.cat([frames[-1], frames[0]], 1))   # f = -1: [I_-1, I_0]
    assert torch.equal(seen[1], torch.cat([frames[0], frames[1]], 1))    # f = +1: [I_0, I_1]
    # with three identical frames both pairs are the same input; the past one is inverted, so
    # T(-1) @ T(+1) is the identity while T(+1) itself is not
    same = {f: frames[0] for f in FRAME_IDS}
    with torch.no_grad():
        poses = model.predict_poses(same)
    t_prev, t_next = poses[('T', -1)], poses[('T', 1)]
    assert not torch.allclose(t_next, torch.eye(4).expand(1, 4, 4), atol=1e-6)
    torch.testing.assert_close(t_prev @ t_next, torch.eye(4).expand(1, 4, 4), atol=1e-6,
                               rtol=0)


def test_loss_compares_clean_images_while_networks_see_augmented_ones():
    model = make_model().eval()  # eval: BatchNorm statistics do not change between calls
    inputs = batch(aug_shift=0.15)
    with torch.no_grad():
        losses = model(inputs, None, mode='loss')
        # the reference, composed by hand from the parts
        aug = {f: inputs['color_aug'][0][:, i] for i, f in enumerate(FRAME_IDS)}
        clean = {f: inputs['color'][0][:, i] for i, f in enumerate(FRAME_IDS)}
        disps = model.depth_decoder(model.encoder(aug[0]))
        poses = {}
        for f in (-1, 1):
            pair = torch.cat([aug[f], aug[0]] if f < 0 else [aug[0], aug[f]], 1)
            a, t = model.pose_decoder(model.pose_encoder(pair))
            poses[('T', f)] = pose_vec_to_matrix(a[:, 0], t[:, 0], invert=f < 0)
        ref_loss = MonocularDepthLoss(identity_noise=0.0)
        colors = {('color', f, 0): clean[f] for f in FRAME_IDS}
        colors.update({('color', 0, s): inputs['color'][s][:, 0] for s in (1, 2, 3)})
        disp_in = {('disp', s): d for s, d in disps.items()}
        K, inv_K = inputs['K'][:, 0], inputs['inv_K'][:, 0]
        ref = ref_loss(disp_in, colors, poses, K, inv_K)
        wrong = ref_loss(disp_in, {('color', f, 0): aug[f] for f in FRAME_IDS}, poses, K, inv_K)
    torch.testing.assert_close(losses['loss'], ref['loss'])
    assert not torch.allclose(losses['loss'], wrong['loss'])
    assert set(losses) == set(ref)


def test_gradients_reach_all_four_networks():
    model = make_model()
    losses = model(batch(b=1), None, mode='loss')
    losses['loss'].backward()
    for name in MODULE_NAMES:
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def textured_sequence(b: int = 1) -> dict:
    """A smooth random texture seen from three positions shifted sideways (a fronto-parallel
    scene): frame f is the target shifted by 2 f pixels."""
    g = torch.Generator().manual_seed(3)
    tex = torch.nn.functional.interpolate(torch.rand(b, 3, H // 4, W // 4 + 4, generator=g),
                                          size=(H, W + 16), mode='bilinear', align_corners=False)
    frames = torch.stack([tex[..., 8 + 2 * f:8 + 2 * f + W] for f in FRAME_IDS], 1)
    K, inv_K = intrinsics(b)
    return {'color': pyramid(frames), 'color_aug': pyramid(frames), 'K': K, 'inv_K': inv_K}


def test_overfitting_a_fixed_batch_lowers_the_loss():
    model = make_model()
    inputs = textured_sequence()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    history = []
    for _ in range(5):
        loss = model(inputs, None, mode='loss')['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    assert all(np.isfinite(history))
    assert history[-1] < 0.5 * history[0], history  # about 0.14 -> 0.02


def samples(b: int, frame_ids=FRAME_IDS) -> list[BaseDataElement]:
    out = []
    for i in range(b):
        gt = torch.zeros(1, 2 * H, 2 * W)
        gt[:, H // 2:] = torch.linspace(5, 40, H * 3 // 2).view(1, -1, 1)
        s = BaseDataElement(metainfo={'frame_ids': frame_ids, 'index': i,
                                      'image_paths': [f'/x/{i}_{f}.png' for f in frame_ids]})
        s.gt_depth = gt
        out.append(s)
    return out


def test_predict_gives_what_depth_metric_reads():
    model = make_model().eval()
    inputs, data_samples = batch(), samples(2)
    with torch.no_grad():
        preds = model(inputs, data_samples, mode='predict')
    assert len(preds) == 2
    for i, p in enumerate(preds):
        assert p['pred_disp'].shape == (1, H, W)
        assert float(p['pred_disp'].min()) >= 1 / model.max_depth - 1e-6
        assert float(p['pred_disp'].max()) <= 1 / model.min_depth + 1e-6
        assert p['gt_depth'] is data_samples[i].gt_depth
        assert p['img_path'] == f'/x/{i}_0.png' and p['index'] == i
    # the scaled disparity is disp_to_depth of the tensor-mode output of the target image
    with torch.no_grad():
        sig = model(inputs['color'][0][:, 0], mode='tensor')[0]
    torch.testing.assert_close(preds[1]['pred_disp'], model.disp_to_depth(sig)[0][1])
    metric = DepthMetric()
    metric.process({}, preds)
    out = metric.compute_metrics(metric.results)
    assert {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3'} <= set(out)
    assert out['num_images'] == 2


def test_tensor_mode_and_bare_image_predict():
    model = make_model().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, H, W), mode='tensor')
        preds = model(torch.rand(3, 3, H, W), mode='predict')
    assert sorted(out) == [0, 1, 2, 3]
    for s, d in out.items():
        assert d.shape == (2, 1, H // 2 ** s, W // 2 ** s)
        assert float(d.min()) > 0 and float(d.max()) < 1
    assert len(preds) == 3 and preds[0]['pred_disp'].shape == (1, H, W)
    assert 'gt_depth' not in preds[0]


def test_batch_frame_order_is_read_from_the_metadata():
    """A dataset with frame_ids (0, 1, -1): frames are picked by id, not by position."""
    model = make_model().eval()
    inputs = batch(aug_shift=0.1)
    swapped = {k: ([x[:, [0, 2, 1]] for x in v] if k in ('color', 'color_aug') else v)
               for k, v in inputs.items()}
    with torch.no_grad():
        a = model(inputs, samples(2), mode='loss')['loss']
        b = model(swapped, samples(2, (0, 1, -1)), mode='loss')['loss']
    torch.testing.assert_close(a, b)


def test_stereo_only_model_uses_stereo_T_and_has_no_pose_networks():
    model = make_model(frame_ids=(0, 's'))
    assert model.pose_encoder is None and model.pose_decoder is None
    inputs = batch(frame_ids=(0, 's'))
    T = torch.eye(4).repeat(2, 1, 1)
    T[:, 0, 3] = -0.1
    inputs['stereo_T'] = T
    poses = model.predict_poses({0: inputs['color'][0][:, 0]}, T)
    assert poses[('T', 's')] is T
    loss = model(inputs, None, mode='loss')['loss']
    assert torch.isfinite(loss)
    del inputs['stereo_T']
    with pytest.raises(KeyError, match='stereo_T'):
        model(inputs, None, mode='loss')


def test_data_preprocessor_stacks_pseudo_collated_batches():
    pre = MultiFrameDataPreprocessor()
    items = []
    for i in range(2):
        b = batch(b=1, seed=i)
        items.append({'inputs': {k: ([x[0] for x in v] if isinstance(v, list) else v[0])
                                 for k, v in b.items()},
                      'data_samples': samples(1)[0]})
    stacked = pre(default_collate(items))
    listed = pre(pseudo_collate(items))
    for s in range(4):
        torch.testing.assert_close(listed['inputs']['color'][s], stacked['inputs']['color'][s])
        assert listed['inputs']['color'][s].shape == (2, 3, 3, H // 2 ** s, W // 2 ** s)
    torch.testing.assert_close(listed['inputs']['K'], stacked['inputs']['K'])
    assert len(listed['data_samples']) == 2
    items[1]['inputs']['K'] = torch.eye(3)
    with pytest.raises(ValueError, match=r"inputs\['K'\]"):
        pre(pseudo_collate(items))


def test_clear_errors():
    with pytest.raises(ValueError, match='frame_ids must start with the target 0'):
        MonoDepth(frame_ids=(-1, 0, 1))
    with pytest.raises(ValueError, match='depth_decoder.scales'):
        MonoDepth(depth_decoder=dict(scales=(0,)), scales=(0, 1, 2, 3))
    model = make_model()
    with pytest.raises(ValueError, match='model was built with frame_ids'):
        model(batch(), samples(2, (0, -2, 2)), mode='loss')
    bad = batch()
    bad['color'] = [x[:, :2] for x in bad['color']]
    with pytest.raises(ValueError, match=r"inputs\['color'\]\[0\] must be \(B, 3, 3, H, W\)"):
        model(bad, None, mode='loss')
    with pytest.raises(ValueError, match="mode must be 'loss', 'predict' or 'tensor'"):
        model(batch(), None, mode='train')
    with pytest.raises(ValueError, match=r'images must be \(B, 3, H, W\)'):
        model(torch.rand(1, 4, H, W), mode='tensor')
    with pytest.raises(ValueError, match='divisible by 32'):
        model(torch.rand(1, 3, 80, 96), mode='tensor')


def test_imagenet_weights_are_loaded_by_init_weights_only(tmp_path):
    """Evaluation / inference from a checkpoint never touch the ImageNet file (or network)."""
    import torchvision
    torch.manual_seed(1)
    ref = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / 'resnet18.pth'
    torch.save(ref, path)
    model = MonoDepth(encoder=dict(pretrained=str(path)), pose_encoder=dict(pretrained=str(path)))
    assert not torch.equal(model.encoder.conv1.weight, ref['conv1.weight'])
    model.init_weights()
    torch.testing.assert_close(model.encoder.layer4[1].conv2.weight, ref['layer4.1.conv2.weight'])
    # the pose encoder's 6-channel conv1 is the 3-channel one tiled twice and halved
    torch.testing.assert_close(model.pose_encoder.conv1.weight,
                               torch.cat([ref['conv1.weight']] * 2, 1) / 2)
    missing = MonoDepth(encoder=dict(pretrained=str(tmp_path / 'nope.pth')))
    with pytest.raises(FileNotFoundError, match='nope.pth do not exist'):
        missing.init_weights()
