"""Gaussian2Scene stage 1: MAE image branch, masked voxel point branch, the model, configs
(demo rooms with frames and tools/train.py: test_g2s_stage1_demo.py)."""
from __future__ import annotations

import os.path as osp

import pytest
import torch
from mmengine.config import Config

from geo3d.models.backbones.spunet import SpUNet
from geo3d.models.pretrain3d.gaussian2scene import (Gaussian2SceneMAE, ImageMAE, MAEViTEncoder,
                                                    MaskedVoxelHead, VoxelPatchMasking,
                                                    encode_depth, normalize_patches, patchify,
                                                    random_token_mask, unpatchify)
from geo3d.models.probes import load_backbone_weights
from geo3d.registry import MODELS
from tests.helpers.tools import ROOT
from tests.models.pretrain3d.g2s_scenes import make_batch

TINY_UNET = dict(type='SpUNet', in_channels=6, base_channels=8,
                 channels=(8, 16, 16, 16, 16, 8, 8, 8), layers=(1, 1, 1, 1, 1, 1, 1, 1),
                 stem_kernel_size=3)


def tiny_model(**kw) -> Gaussian2SceneMAE:
    cfg = dict(type='Gaussian2SceneMAE', backbone=TINY_UNET,
               image_encoder=dict(type='MAEViTEncoder', img_size=(32, 40), patch_size=8,
                                  in_chans=4, embed_dim=32, depth=1, num_heads=2),
               image_mae=dict(decoder_dim=32, decoder_depth=1, decoder_heads=2),
               point_mask=dict(patch_stride=4), point_targets=('color', 'normal'),
               align=dict(dim=16, hidden=32, depth_tol=0.1))
    cfg.update(kw)
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def batch() -> dict:
    return make_batch(num_scenes=2, frames=2, h=32, w=40, points=1500, seed=0)


# ------------------------------------------------------------------------------ image branch
def test_patchify_is_maes_layout_and_inverts() -> None:
    x = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    for n, i, j, a, b, c in [(0, 0, 0, 0, 0, 0), (1, 1, 2, 3, 1, 2), (0, 1, 0, 2, 3, 1)]:
        assert p[n, i * 3 + j, (a * 4 + b) * 3 + c] == x[n, c, i * 4 + a, j * 4 + b]
    assert torch.equal(unpatchify(p, 4, (2, 3), 3), x)
    with pytest.raises(ValueError, match='multiple of the patch size'):
        patchify(x, 5)


def test_normalize_patches_vs_hand_computation() -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 3, 9, generator=g, dtype=torch.float64) * 3 + 1
    out, ok = normalize_patches(t)
    for n in range(2):
        for l in range(3):
            v = t[n, l]
            m = sum(v.tolist()) / 9
            var = sum((x - m) ** 2 for x in v.tolist()) / 8     # unbiased, as MAE
            assert torch.allclose(out[n, l], (v - m) / (var + 1e-6) ** 0.5, rtol=1e-12)
    assert bool(ok.all())
    valid = torch.rand(2, 3, 9, generator=g) > 0.4
    valid[0, 0] = False
    valid[0, 0, 4] = True                                        # a single valid value
    out, ok = normalize_patches(t, valid)
    for n in range(2):
        for l in range(3):
            vals = t[n, l][valid[n, l]].tolist()
            if len(vals) < 2:
                assert not ok[n, l]
                continue
            m = sum(vals) / len(vals)
            var = sum((x - m) ** 2 for x in vals) / (len(vals) - 1)
            want = (t[n, l] - m) / (var + 1e-6) ** 0.5
            assert ok[n, l]
            assert torch.allclose(out[n, l][valid[n, l]], want[valid[n, l]], rtol=1e-12)
            assert bool((out[n, l][~valid[n, l]] == 0).all())
    with pytest.raises(ValueError, match='valid'):
        normalize_patches(t, valid[:, :2])


def test_encode_depth_closed_forms() -> None:
    d = torch.tensor([0.0, 0.05, 0.2, 4.0, 25.0, float('nan')]).view(1, 1, 1, 6)
    inv, valid = encode_depth(d, 'inverse', depth_min=0.1)
    assert valid.flatten().tolist() == [False, True, True, True, True, False]
    assert torch.allclose(inv.flatten(), torch.tensor([0.0, 1.0, 0.5, 0.025, 0.004, 0.0]))
    lin, _ = encode_depth(d, 'depth', depth_max=10.0)
    assert torch.allclose(lin.flatten(), torch.tensor([0.0, 0.005, 0.02, 0.4, 1.0, 0.0]))
    with pytest.raises(ValueError, match='depth encoding'):
        encode_depth(d, 'log')


def test_random_token_mask() -> None:
    g = torch.Generator().manual_seed(0)
    keep, masked = random_token_mask(5, 20, 0.6, g)
    assert keep.shape == (5, 8) and masked.shape == (5, 20)
    assert bool((masked.sum(1) == 12).all())
    assert not bool(masked.gather(1, keep).any())
    assert len({tuple(k.tolist()) for k in keep}) == 5                # per-sample masks
    keep, masked = random_token_mask(2, 20, 0.0, g)
    assert keep.shape == (2, 20) and not bool(masked.any())
    with pytest.raises(ValueError, match='mask_ratio'):
        random_token_mask(2, 20, 1.0)


def image_mae(**kw) -> ImageMAE:
    enc = MAEViTEncoder(img_size=(16, 24), patch_size=4, in_chans=4, embed_dim=16, depth=1,
                        num_heads=2)
    return ImageMAE(enc, decoder_dim=16, decoder_depth=1, decoder_heads=2, **kw)


def test_image_mae_shapes_and_masked_only_loss() -> None:
    torch.manual_seed(0)
    mae = image_mae()
    img = torch.rand(3, 3, 16, 24)
    depth = torch.rand(3, 1, 16, 24) * 3 + 0.5
    depth[:, :, :2] = 0.0                                          # invalid rows
    out = mae(img, depth)
    assert out.tokens.shape == (3, 9, 16) and out.keep.shape == (3, 9)
    assert out.pred.shape == (3, 24, 4 * 4 * 4) and out.inputs.shape == (3, 4, 16, 24)
    assert set(out.losses) == {'rgb', 'depth'}
    pred, masked = out.pred.detach(), out.masked
    base = mae.reconstruction_loss(pred, img, depth, masked)
    # rgb term = hand computation: per-patch normalised targets, mean over masked patches
    t = patchify(img, 4)
    t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-6).sqrt()
    per_patch = (pred[..., :48] - t).square().mean(-1)
    assert torch.allclose(base['rgb'], per_patch[masked].mean(), rtol=1e-5)
    # targets of VISIBLE patches do not matter, those of masked patches do
    img2, depth2 = img.clone(), depth.clone()
    vis = (~masked[0]).nonzero()[0].item()
    i, j = divmod(vis, 6)
    img2[0, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = torch.rand(3, 4, 4)
    depth2[0, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = 7.0
    same = mae.reconstruction_loss(pred, img2, depth2, masked)
    assert torch.equal(same['rgb'], base['rgb']) and torch.equal(same['depth'], base['depth'])
    msk = masked[0].nonzero()[-1].item()
    i, j = divmod(msk, 6)
    img2[0, :, 4 * i:4 * i + 4, 4 * j:4 * j + 4] = torch.rand(3, 4, 4)
    depth2[0, :, 4 * i + 2:4 * i + 4, 4 * j:4 * j + 2] = 9.0
    diff = mae.reconstruction_loss(pred, img2, depth2, masked)
    assert diff['rgb'] != base['rgb'] and diff['depth'] != base['depth']
    # predictions at invalid depth pixels do not matter
    pred2 = pred.clone()
    pred2[:, :6, 48:52] += 5.0                                    # row 0 of the top patches
    assert torch.equal(mae.reconstruction_loss(pred2, img, depth, masked)['depth'],
                       base['depth'])
    # gradients reach the encoder through the visible tokens
    (out.losses['rgb'] + out.losses['depth']).backward()
    assert mae.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    assert mae.decoder.mask_token.grad.abs().sum() > 0


def test_image_mae_options_and_errors() -> None:
    rgb_only = ImageMAE(MAEViTEncoder(img_size=(8, 8), patch_size=4, in_chans=3, embed_dim=8,
                                      depth=1, num_heads=2),
                        decoder_dim=8, decoder_depth=1, decoder_heads=2, depth_input='none',
                        reconstruct_depth=False)
    out = rgb_only(torch.rand(2, 3, 8, 8))
    assert set(out.losses) == {'rgb'} and out.pred.shape == (2, 4, 48)
    with pytest.raises(ValueError, match='in_chans=3'):
        ImageMAE(MAEViTEncoder(img_size=(8, 8), patch_size=4, in_chans=3, embed_dim=8, depth=1,
                               num_heads=2), depth_input='inverse')
    with pytest.raises(ValueError, match='need depth maps'):
        image_mae()(torch.rand(1, 3, 16, 24))
    with pytest.raises(ValueError, match=r'MAEViTEncoder: input must be \(N, 4, 16, 24\)'):
        image_mae()(torch.rand(1, 3, 16, 20), torch.ones(1, 1, 16, 20))
    with pytest.raises(ValueError, match='multiple of patch_size'):
        MAEViTEncoder(img_size=(10, 8), patch_size=4)


# ------------------------------------------------------------------------------ point branch
def test_voxel_masking_input_token_and_msm(batch: dict) -> None:
    torch.manual_seed(0)
    pts = batch['points']
    unet = MODELS.build(TINY_UNET).eval()
    masking = VoxelPatchMasking(unet, mask_ratio=0.6, patch_stride=4)
    masked = masking.sample(pts, torch.Generator().manual_seed(0))
    frac = masked.float().mean().item()
    assert 0.35 < frac < 0.85                                     # patches differ in size
    # masked voxels keep position, their input is the token
    x = masking.masked_input(pts, masked)
    assert torch.equal(x.grid_coord, pts.grid_coord)
    assert torch.equal(x.feat[masked], masking.mask_token.detach().expand(int(masked.sum()), 6))
    assert torch.equal(x.feat[~masked], pts.feat[~masked])
    # nothing masked == the plain backbone (input row order)
    none = torch.zeros(pts.num_points, dtype=torch.bool)
    assert torch.allclose(masking(unet, pts, none), unet(pts)[-1].feat)
    assert masking(unet, pts, masked).shape == (pts.num_points, 8)
    # MSM's masked pass
    msm = VoxelPatchMasking(unet, patch_stride=4, mode='msm')
    f = msm(unet.train(), pts, masked)
    f.sum().backward()
    assert f.shape == (pts.num_points, 8) and msm.tokens.mask_token.grad is not None
    with pytest.raises(ValueError, match='masked must be'):
        masking(unet, pts, masked[:-1])
    with pytest.raises(ValueError, match='mode'):
        VoxelPatchMasking(unet, mode='drop')


def test_masked_voxel_head_loss_is_masked_only(batch: dict) -> None:
    pts = batch['points']
    torch.manual_seed(0)
    head = MaskedVoxelHead(8, {'color': 3, 'normal': 3}, {'normal': 0.5})
    feat = torch.randn(pts.num_points, 8)
    masked = torch.rand(pts.num_points) < 0.5
    out = head.loss(feat, pts, masked)
    pred = head.head(feat).detach()
    col = (pred[masked, :3] - pts['color'][masked]).square().mean()
    nrm = (pred[masked, 3:] - pts['normal'][masked]).square().mean()
    assert torch.allclose(out['color'], col) and torch.allclose(out['normal'], nrm)
    assert torch.allclose(out['total'], col + 0.5 * nrm)
    pts.extras['color'] = pts['color'].clone()
    old = pts['color'].clone()
    pts.extras['color'][~masked] = 5.0                           # visible targets: no effect
    assert torch.equal(head.loss(feat, pts, masked)['color'], out['color'])
    pts.extras['color'] = old
    with pytest.raises(KeyError, match="'segment' is not in the batch"):
        MaskedVoxelHead(8, {'segment': 1}).loss(feat, pts, masked)
    with pytest.raises(ValueError, match='unknown targets'):
        MaskedVoxelHead(8, {'color': 3}, {'normal': 1.0})


# ------------------------------------------------------------------------------ the model
def test_model_losses_tensor_mode_and_weights(batch: dict) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    out = model(batch, mode='loss')
    assert {'loss_image', 'loss_point', 'loss_align', 'image_rgb_mse', 'image_depth_mse',
            'point_color_mse', 'point_normal_mse', 'align_pairs'} <= set(out)
    assert all(torch.isfinite(v) for v in out.values())
    assert out['align_pairs'] > 20
    assert torch.allclose(out['loss_image'], out['image_rgb_mse'] + out['image_depth_mse'])
    levels = model(batch, mode='tensor')
    assert len(levels) == 5 and levels[-1].feat.shape == (batch['points'].num_points, 8)
    assert model(batch['points'], mode='tensor')[-1].feat.shape == levels[-1].feat.shape
    # loss weights multiply (same masks: same seed)
    w = tiny_model(loss_weights=dict(image=2.0, align=0.0))
    w.load_state_dict(model.state_dict())
    torch.manual_seed(1)
    a = model(batch, mode='loss')
    torch.manual_seed(1)
    b = w(batch, mode='loss')
    assert torch.allclose(b['loss_image'], 2 * a['loss_image'])
    assert torch.allclose(b['loss_point'], a['loss_point']) and float(b['loss_align'].detach()) == 0.0
    # pixel features from a full encoder pass, bilinear; no alignment at all
    full = tiny_model(align_pixels='full', align=dict(dim=16, hidden=32, sampling='bilinear'))
    assert torch.isfinite(full(batch, mode='loss')['loss_align'])
    assert 'loss_align' not in tiny_model(align=None)(batch, mode='loss')


def test_model_errors(batch: dict) -> None:
    model = tiny_model()
    no_points = {k: v for k, v in batch.items() if k != 'points'}
    with pytest.raises(KeyError, match='load_points=True'):
        model(no_points, mode='loss')
    bad = dict(batch, images=batch['images'][:1])
    with pytest.raises(ValueError, match=r"inputs\['images'\] must have shape \(2, \*, 3"):
        model(bad, mode='loss')
    with pytest.raises(ValueError, match="align_pixels='visible'"):
        tiny_model(align=dict(sampling='bilinear'))
    with pytest.raises(ValueError, match='unknown keys'):
        tiny_model(loss_weights=dict(depth=1.0))
    with pytest.raises(ValueError, match='unknown mode'):
        model(batch, mode='train')


def test_loss_decreases_on_one_batch(batch: dict) -> None:
    torch.manual_seed(0)
    model = tiny_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(10):
        torch.manual_seed(0)                                       # the same masks every step
        out = model(batch, mode='loss')
        loss = out['loss_image'] + out['loss_point'] + out['loss_align']
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({k: float(out[k].detach()) for k in ('loss_image', 'loss_point', 'loss_align')})
    for k in history[0]:
        assert history[-1][k] < 0.8 * history[0][k], (k, history[0][k], history[-1][k])


def test_backbone_keys_load_into_a_probe_backbone(batch: dict, tmp_path) -> None:
    model = tiny_model()
    keys = list(model.state_dict())
    bb = [k for k in keys if k.startswith('backbone.')]
    assert len(bb) == len(model.backbone.state_dict())
    assert not any(k.startswith(('student.', 'teacher.')) for k in keys)
    ckpt = tmp_path / 'g2s.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    fresh = MODELS.build(TINY_UNET)
    assert load_backbone_weights(fresh, str(ckpt)) == 'backbone.'
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, model.backbone.state_dict()[k])


# ------------------------------------------------------------------------------ configs
def test_configs_build() -> None:
    ref = Config.fromfile(osp.join(ROOT, 'configs/gaussian2scene_stage1_scannet.py'))
    demo = Config.fromfile(osp.join(ROOT, 'configs/gaussian2scene_stage1_scannet_demo.py'))
    for cfg, size, patch in ((ref, (128, 160), 16), (demo, (64, 80), 8)):
        ds = cfg.train_dataloader.dataset
        assert ds.type == 'ScanNetFramesDataset' and ds.load_points
        assert tuple(ds.image_size) == size
        assert tuple(cfg.model.image_encoder.img_size) == size
        assert cfg.model.image_encoder.patch_size == patch
        assert cfg.model.image_mae.mask_ratio == 0.6 and cfg.model.point_mask.mask_ratio == 0.6
        assert cfg.model.align.temperature == 0.07
        assert cfg.train_dataloader.collate_fn.type == 'scannet_frames_collate'
        # no geometric point augmentation: it would break the point <-> frame alignment
        kinds = {t['type'] for t in ds.point_pipeline}
        assert not kinds & {'RandomRotate', 'RandomScale', 'RandomFlip', 'RandomJitter',
                            'CenterShift'}
    assert tuple(ref.model.backbone.channels) == tuple(SpUNet.__init__.__defaults__[1])
    assert demo.train_dataloader.dataset.frames_per_sample == 3
    model = MODELS.build(demo.model)
    assert isinstance(model, Gaussian2SceneMAE)
    assert model.image_mae.encoder.grid_size == (8, 10)
    assert model.image_mae.encoder.in_chans == 4
