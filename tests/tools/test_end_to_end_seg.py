"""End to end on a tiny fixture: raw ScanNet layout -> converter -> train -> resume -> test."""
import math
import re
import os.path as osp

import pytest

from geo3d.converters.scannet import convert
from geo3d.datasets.demo import make_demo_scannet
from tests.helpers.tools import ROOT, load_tool


@pytest.fixture(scope='module')
def tiny_scannet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('e2e')
    raw, out = tmp / 'raw', tmp / 'processed'
    make_demo_scannet(str(raw), num_train=2, num_val=1, num_test=0, seed=3,
                      points_per_scene=3000)
    report = convert(str(raw), str(out), workers=1, progress=False, verbose=False)
    assert report.converted == 3 and not report.failed
    return tmp, out


def test_train_resume_and_test(tiny_scannet, capsys):
    tmp, data = tiny_scannet
    cfg = tmp / 'tiny.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/spunet_seg_scannet_demo.py')!r}]
model = dict(backbone=dict(base_channels=8, channels=(8, 16, 16, 8), layers=(1, 1, 1, 1)))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data)!r}, loop=1))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root={str(data)!r}))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=1)
param_scheduler = [dict(type='OneCycleLR', eta_max=0.1, pct_start=0.1, begin=0, end=2, by_epoch=True,
                        convert_to_iter_based=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=5,
                                     save_best='seg/mIoU', rule='greater'))
""")
    work = tmp / 'work'
    train, test = load_tool('train'), load_tool('test')
    assert train.main([str(cfg), '--work-dir', str(work),
                       '--cfg-options', 'train_cfg.max_epochs=1']) == 0
    assert osp.isfile(work / 'epoch_1.pth')
    # resume the real model from its checkpoint (torch >= 2.6 loading path) for one more epoch
    assert train.main([str(cfg), '--work-dir', str(work), '--resume']) == 0
    assert osp.isfile(work / 'epoch_2.pth')
    capsys.readouterr()
    assert test.main([str(cfg), str(work / 'epoch_2.pth'), '--work-dir', str(tmp / 'test')]) == 0
    printed = capsys.readouterr().out
    miou = float(re.findall(r'seg/mIoU: ([0-9.naN]+)', printed)[-1])
    assert 0.0 <= miou <= 1.0 and not math.isnan(miou)
