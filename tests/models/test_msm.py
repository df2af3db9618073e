"""MSM: the masked SpUNet pass (torch transposed conv == spconv, ratio 0 == forward), the model."""
from __future__ import annotations

import pytest
import torch

from geo3d.models.backbones.spunet import SpUNet
from geo3d.models.pretrain3d.masked_unet import (MaskTokens, masked_unet_forward,
                                                 transposed_conv_k2s2)
from geo3d.models.pretrain3d.masking import match_voxels, random_patch_mask
from geo3d.ops.sparse import spconv, to_sparse_tensor
from tests.models.test_spunet import SMALL, make_batch, sorted_level


@pytest.fixture(autouse=True)
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_transposed_conv_matches_spconv_inverse() -> None:
    gen = torch.Generator().manual_seed(0)
    g = torch.unique(torch.randint(0, 12, (400, 3), generator=gen), dim=0)
    b = torch.randint(0, 2, (g.shape[0],), generator=gen)
    x = to_sparse_tensor(torch.randn(g.shape[0], 3, dtype=torch.float64), g, b, 2,
                         shape_multiple=2)
    down = spconv.SparseConv3d(3, 4, 2, stride=2, bias=False, indice_key='k').double()
    up = spconv.SparseInverseConv3d(4, 5, 2, bias=False, indice_key='k').double()
    torch.nn.init.normal_(up.weight)
    y = down(x)
    pf = torch.randn(y.features.shape[0], 4, dtype=torch.float64, generator=gen)
    z = up(y.replace_feature(pf))
    child = z.indices[:, 1:].long()
    parent = torch.div(child, 2, rounding_mode='floor')
    prow = match_voxels(parent, z.indices[:, 0].long(), y.indices[:, 1:].long(),
                        y.indices[:, 0].long())
    assert bool((prow >= 0).all())
    mine = transposed_conv_k2s2(pf, prow, child - 2 * parent, up.weight)
    # same products, spconv only sums them into a zero buffer: equal to rounding (1 ulp)
    assert torch.allclose(mine, z.features, rtol=0, atol=1e-13)


@pytest.mark.parametrize('train,token_at', [(False, 'bottleneck'), (True, 'bottleneck'),
                                             (False, 'bottleneck_input')])
def test_ratio_zero_equals_forward(train: bool, token_at: str) -> None:
    pb = make_batch((500, 400), seed=1)
    pb.feat = pb.feat.double()
    unet = SpUNet(4, **SMALL).double().train(train)
    for m in unet.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = 0.0  # the two passes must see the same running stats
            torch.nn.init.normal_(m.weight, 1.0, 0.2)
            torch.nn.init.normal_(m.running_mean, 0.0, 0.1)
    tokens = MaskTokens.for_unet(unet).double()
    ref = unet(pb)
    got = masked_unet_forward(unet, pb, torch.ones(pb.num_points, dtype=torch.bool), tokens,
                              token_at)
    assert len(got) == len(ref)
    for r, m in zip(ref, got):
        assert m.level.stride == r.stride and not bool(m.masked.any())
        ri, rf = sorted_level(r)
        mi, mf = sorted_level(m.level)
        assert torch.equal(ri, mi)
        assert torch.allclose(rf, mf, rtol=1e-10, atol=1e-10)
    # the stride-1 level keeps the input row order
    assert torch.equal(got[-1].level.indices[:, 1:].long(), pb.grid_coord)
    assert torch.allclose(got[-1].level.feat, ref[-1].feat, rtol=1e-10, atol=1e-10)


def test_masked_pass_covers_all_voxels_and_grads() -> None:
    pb = make_batch((500, 400), seed=2)
    unet = SpUNet(4, **SMALL)
    tokens = MaskTokens.for_unet(unet)
    pm = random_patch_mask(pb.grid_coord, pb.batch, 8, 0.4,
                           generator=torch.Generator().manual_seed(0))
    masked0 = pm.level_mask(pb.grid_coord, pb.batch, 1)
    levels = masked_unet_forward(unet, pb, ~masked0, tokens)
    full = unet(pb)
    for lv, r in zip(levels, full):
        assert lv.level.num_voxels == r.num_voxels
        assert lv.level.feat.shape[1] == r.feat.shape[1]
        want = pm.level_mask(lv.level.grid_coord, lv.level.batch, lv.level.stride)
        assert torch.equal(lv.masked, want)
    assert torch.equal(levels[-1].masked, masked0)
    loss = sum(lv.level.feat[lv.masked].square().mean() for lv in levels)
    loss.backward()
    assert tokens.mask_token.grad is not None and tokens.mask_token.grad.abs().sum() > 0
    assert all(t.grad is not None for t in tokens.skip_tokens)
    assert unet.up[0].conv.weight.grad.abs().sum() > 0
    assert unet.stem.conv.weight.grad.abs().sum() > 0
    # the token inserted before the bottleneck blocks: masked coarsest voxels get context
    ctx = masked_unet_forward(unet, pb, ~masked0, tokens, 'bottleneck_input')
    assert torch.equal(ctx[0].masked, levels[0].masked)
    coarse = ctx[0].level.feat[ctx[0].masked]
    assert coarse.shape[0] > 1 and not torch.allclose(coarse, coarse[:1].expand_as(coarse))
    assert torch.allclose(levels[0].level.feat[levels[0].masked],
                          tokens.mask_token[None].expand_as(coarse))


# ---------------------------------------------------------------------------------- MSM model
def two_views(seed: int = 0):
    """A fixed pair of overlapping, differently posed 5 cm views of two samples."""
    from geo3d.structures import PointBatch
    from tests.models.test_spunet import surface_sample
    views: dict[str, list[dict]] = {'view0': [], 'view1': []}
    for s in range(2):
        raw = surface_sample(700, seed + s)
        n = raw['coord'].shape[0]
        idx = torch.arange(n)
        c = raw['coord'] - raw['coord'].min(0).values
        theta = 0.3 + s
        rot = torch.tensor([[torch.cos(torch.tensor(theta)), -torch.sin(torch.tensor(theta)), 0],
                            [torch.sin(torch.tensor(theta)), torch.cos(torch.tensor(theta)), 0],
                            [0, 0, 1]])
        for v, (coord, keep) in enumerate([(c, c[:, 0] < 1.6), (c @ rot.T + 0.37, c[:, 0] > 0.4)]):
            pb = PointBatch.collate([{'coord': coord[keep], 'feat': raw['feat'][keep],
                                      f'view{v}_index': idx[keep]}])
            vox, _ = pb.grid_sample(0.05, mode='first')
            d = vox.split()[0]
            d['grid_coord'] = d['grid_coord'] - d['grid_coord'].min(0).values
            # what GridSample(return_inverse=True, origin_keys=('index',)) gives a view
            d['inverse'], d['origin_index'] = vox['inverse'], idx[keep]
            views[f'view{v}'].append(d)
    return {k: PointBatch.collate(v) for k, v in views.items()}


def build_msm(**kw):
    from geo3d.registry import MODELS
    import geo3d.models  # noqa: F401
    cfg = dict(type='MSM', backbone=dict(type='SpUNet', in_channels=4, **SMALL))
    cfg.update(kw)
    model = MODELS.build(cfg)
    model.teacher.load_state_dict(model.student.state_dict())  # what init_weights does
    return model


def test_msm_state_dict_and_feature_mode() -> None:
    model = build_msm()
    keys = model.state_dict().keys()
    student = {f'student.{k}' for k in model.student.state_dict()}
    assert student <= set(keys)
    assert {f'teacher.{k}' for k in model.teacher.state_dict()} <= set(keys)
    assert 'mask_tokens.mask_token' in keys and 'projectors.0.weight' in keys
    views = two_views()
    model.eval()
    levels = model(views, mode='tensor')
    assert [lv.stride for lv in levels] == [8, 4, 2, 1]
    assert levels[-1].num_voxels == views['view0'].num_points
    model.train()
    assert model.student.training and not model.teacher.training


@pytest.mark.parametrize('target_view', ['cross', 'same'])
def test_msm_loss_grads_and_overfit(target_view: str) -> None:
    torch.manual_seed(0)
    model = build_msm(target_view=target_view, loss='smooth_l1' if target_view == 'same'
                      else 'cosine')
    model.train()
    views = two_views()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    history = []
    steps = 10 if target_view == 'cross' else 2
    for step in range(steps):
        torch.manual_seed(123)  # the same masks every step: a fixed problem to overfit
        out = model(views, mode='loss')
        assert set(out) == {'loss_l0', 'loss_l1', 'loss_l2', 'loss_l3', 'target_cover'}
        loss = sum(v for k, v in out.items() if k.startswith('loss'))
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        if step == 0:
            assert 0.0 < float(out['target_cover']) <= 1.0
            assert model.mask_tokens.mask_token.grad.abs().sum() > 0
            assert all(t.grad.abs().sum() > 0 for t in model.mask_tokens.skip_tokens)
            assert model.student.stem.conv.weight.grad.abs().sum() > 0
            assert model.student.up[0].conv.weight.grad.abs().sum() > 0
            assert all(p.grad is None for p in model.teacher.parameters())
        opt.step()
        history.append(float(loss.detach()))
    if target_view == 'cross':
        assert sum(history[-3:]) / 3 < 0.8 * history[0], history


def test_correspondences_both_paths() -> None:
    from geo3d.models.pretrain3d import MSM
    from geo3d.structures import PointBatch
    z = torch.zeros(3, 3)
    a = PointBatch.collate([{'coord': z[:2], 'feat': z[:2], 'va_index': torch.tensor([5, 7])},
                            {'coord': z[:1], 'feat': z[:1], 'va_index': torch.tensor([7])}])
    # teacher view: sample 0 voxelized originals [7, 5, 9] into rows [1, 0, 0]; sample 1 kept
    # original 7 in row 0 (of 1) from originals [7, 2]
    b = PointBatch.collate([
        {'coord': z[:2], 'feat': z[:2], 'vb_index': torch.tensor([9, 7]),
         'inverse': torch.tensor([1, 0, 0]), 'origin_index': torch.tensor([7, 5, 9])},
        {'coord': z[:1], 'feat': z[:1], 'vb_index': torch.tensor([7]),
         'inverse': torch.tensor([0, 0]), 'origin_index': torch.tensor([7, 2])}])
    i, j = MSM.correspondences(a, 'va', b, 'vb')
    assert i.tolist() == [0, 1, 2] and j.tolist() == [0, 1, 2]
    del b.extras['origin_index']  # only points both views kept: a's 7 (row 1) and 7 (row 2)
    i, j = MSM.correspondences(a, 'va', b, 'vb')
    assert i.tolist() == [1, 2] and j.tolist() == [1, 2]


def test_end_to_end_pretrain_and_resume(tmp_path) -> None:
    """tools/train.py on configs/msm_scannet_demo.py, made tiny: 1 epoch, then resume to 3."""
    import os.path as osp

    from geo3d.converters.scannet import convert
    from geo3d.datasets.demo import make_demo_scannet
    from geo3d.utils.checkpoint import load_checkpoint_file
    from tests.helpers.tools import ROOT, load_tool
    raw, data = tmp_path / 'raw', tmp_path / 'processed'
    make_demo_scannet(str(raw), num_train=2, num_val=1, num_test=0, points_per_scene=3000)
    report = convert(str(raw), str(data), workers=1, progress=False, verbose=False)
    assert report.converted == 3 and not report.failed
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/msm_scannet_demo.py')!r}]
model = dict(backbone=dict(base_channels=8, channels=(8, 16, 16, 8), layers=(1, 1, 1, 1),
                           stem_kernel_size=3))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data)!r}))
train_cfg = dict(max_epochs=3)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=3, begin=0, end=3, by_epoch=True,
                        convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
""")
    work = tmp_path / 'work'
    train = load_tool('train')
    assert train.main([str(cfg), '--work-dir', str(work),
                       '--cfg-options', 'train_cfg.max_epochs=1']) == 0
    ckpt = load_checkpoint_file(str(work / 'epoch_1.pth'))
    state = ckpt['state_dict']
    from geo3d.models.backbones.spunet import SpUNet
    unet = SpUNet(6, base_channels=8, channels=(8, 16, 16, 8), layers=(1, 1, 1, 1),
                  stem_kernel_size=3)
    unet.load_state_dict({k[len('student.'):]: v for k, v in state.items()
                          if k.startswith('student.')})
    assert any(k.startswith('teacher.') for k in state)
    assert train.main([str(cfg), '--work-dir', str(work), '--resume']) == 0
    state2 = load_checkpoint_file(str(work / 'epoch_2.pth'))['state_dict']
    # the teacher was resumed from epoch 1 and moved by EMA in epoch 2 (m < 1 before the end;
    # one iteration per epoch)
    key = 'teacher.stem.conv.weight'
    assert not torch.equal(state2[key], state[key])
    assert torch.isfinite(state2[key]).all()
