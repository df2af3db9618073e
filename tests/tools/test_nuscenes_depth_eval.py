"""Issue 8 "done when": a MonoDepth trained a few iterations on the KITTI fixture is evaluated by
tools/test.py with the nuScenes test config on the converted nuScenes fixture (finite
DepthMetric numbers that react to a perturbed model); MSM pretrains one iteration on nuScenes
LiDAR through tools/train.py."""
from __future__ import annotations

import math
import os.path as osp
import re

import pytest
import torch

from geo3d.converters.kitti import convert as convert_kitti
from geo3d.converters.nuscenes import convert as convert_nuscenes
from tests.helpers.kitti_fixture import write_kitti_raw
from tests.helpers.nuscenes_fixture import write_nuscenes_mini
from tests.helpers.tools import ROOT, load_tool

H, W = 64, 96
METRICS = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3')


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('nus_eval')
    raw = write_kitti_raw(tmp / 'kitti_raw', drives=(1, 2, 3), num_frames=5, height=48,
                          width=144)
    assert not convert_kitti(raw.root, tmp / 'kitti', progress=False, verbose=False).failed
    fx = write_nuscenes_mini(tmp / 'nus_raw')
    assert not convert_nuscenes(fx.root, tmp / 'nus', progress=False, verbose=False).failed
    return tmp


def _metrics(printed: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r'depth/(\w+): ([-0-9.naN]+)', printed)}


def test_kitti_model_evaluated_on_nuscenes(data, capsys) -> None:
    torch.set_num_threads(1)
    tmp = data
    train_cfg = tmp / 'kitti_tiny.py'
    train_cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/monodepth_kitti_demo.py')!r}]
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(tmp / 'kitti')!r}, height={H}, width={W},
                                     max_samples=2))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='MultiStepLR', milestones=[1], gamma=0.1, by_epoch=True)]
""")
    work = tmp / 'work'
    assert load_tool('train').main([str(train_cfg), '--work-dir', str(work)]) == 0
    ckpt = work / 'epoch_1.pth'

    test_cfg = tmp / 'nuscenes_test_tiny.py'
    test_cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/monodepth_nuscenes_test.py')!r}]
model = dict(encoder=dict(pretrained=False), pose_encoder=dict(pretrained=False))
test_dataloader = dict(batch_size=3, num_workers=0,
                       dataset=dict(data_root={str(tmp / 'nus' / 'depth')!r}, height={H},
                                    width={W}, serialize_data=False))
""")
    test = load_tool('test')
    capsys.readouterr()
    assert test.main([str(test_cfg), str(ckpt), '--work-dir', str(tmp / 't1')]) == 0
    got = _metrics(capsys.readouterr().out)
    assert set(METRICS) <= set(got) and got['num_images'] == 6 and got['num_skipped'] == 0
    assert all(math.isfinite(got[k]) for k in METRICS)
    assert 0 < got['abs_rel'] < 10 and 0 <= got['a1'] <= got['a2'] <= got['a3'] <= 1

    # a perturbed depth decoder predicts a different depth map: the numbers must move
    state = torch.load(ckpt, weights_only=False)
    assert state['meta']['iter'] == 2
    gen = torch.Generator().manual_seed(0)
    for k, v in state['state_dict'].items():
        if k.startswith('depth_decoder.') and v.is_floating_point() and v.numel() > 1:
            v.add_(0.5 * v.std() * torch.randn(v.shape, generator=gen))
    bad = tmp / 'perturbed.pth'
    torch.save({'state_dict': state['state_dict'], 'meta': state['meta']}, bad)
    assert test.main([str(test_cfg), str(bad), '--work-dir', str(tmp / 't2')]) == 0
    other = _metrics(capsys.readouterr().out)
    assert other['num_images'] == 6 and all(math.isfinite(other[k]) for k in METRICS)
    assert abs(other['abs_rel'] - got['abs_rel']) > 1e-4
    assert any(abs(other[k] - got[k]) > 1e-4 for k in ('rmse', 'a1'))


def test_msm_pretrains_on_nuscenes_lidar(data) -> None:
    torch.set_num_threads(1)
    tmp = data
    cfg = tmp / 'msm_tiny.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/msm_nuscenes.py')!r}]
model = dict(backbone=dict(base_channels=8, channels=(8, 16, 16, 8), layers=(1, 1, 1, 1),
                           stem_kernel_size=3))
train_dataloader = dict(batch_size=3, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(tmp / 'nus' / 'lidar')!r}))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='CosineAnnealingLR', T_max=1, begin=0, end=1, by_epoch=True,
                        convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1))
""")
    work = tmp / 'msm'
    assert load_tool('train').main([str(cfg), '--work-dir', str(work)]) == 0
    ck = torch.load(work / 'epoch_1.pth', weights_only=False)
    assert ck['meta']['iter'] == 1  # 3 train frames, batch 3
    sd = ck['state_dict']
    w = sd['student.stem.conv.weight']  # spconv layout (out, k, k, k, in)
    assert w.shape[0] == 8 and w.shape[-1] == 4  # x, y, z, strength -> 8
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
