"""Cityscapes depth end to end on the tiny real-layout tree: convert -> tools/train.py (2
iterations of a narrow MonoDepth through configs/monodepth_cityscapes.py) -> tools/test.py with
DepthMetric's Cityscapes conventions."""
import os.path as osp
import re

import torch

from geo3d.converters.cityscapes import convert
from tests.helpers.cityscapes_fixture import write_cityscapes
from tests.helpers.tools import ROOT, load_tool

H, W = 64, 96


def test_train_and_test_monodepth_cityscapes(tmp_path, capsys):
    torch.set_num_threads(1)
    cs = write_cityscapes(tmp_path / 'cs')
    rep = convert(cs.root, tmp_path / 'data', progress=False, verbose=False)
    assert rep.subsets == {'train': 5, 'val': 0, 'test': 1}
    data = str(tmp_path / 'data')
    cfg = tmp_path / 'tiny_cityscapes.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/monodepth_cityscapes.py')!r}]
model = dict(encoder=dict(pretrained=False), pose_encoder=dict(pretrained=False),
             depth_decoder=dict(decoder_channels=(4, 8, 8, 16, 16)))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={data!r}, height={H}, width={W}, max_samples=4,
                                     interpolation='bilinear'))
test_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={data!r}, height={H}, width={W},
                                    interpolation='bilinear'))
train_cfg = dict(max_epochs=1)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
""")
    work = tmp_path / 'work'
    train, test = load_tool('train'), load_tool('test')
    assert train.main([str(cfg), '--work-dir', str(work)]) == 0
    ck = torch.load(work / 'epoch_1.pth', weights_only=False)
    assert ck['meta']['iter'] == 2  # 4 samples, batch 2

    capsys.readouterr()
    assert test.main([str(cfg), str(work / 'epoch_1.pth'), '--work-dir',
                      str(tmp_path / 'test')]) == 0
    printed = capsys.readouterr().out
    metrics = dict(re.findall(r'depth/(\w+): ([-0-9.naN]+)', printed))
    assert {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3'} <= set(metrics)
    assert 0 <= float(metrics['abs_rel']) < 10 and 0 <= float(metrics['a1']) <= 1
    assert int(float(metrics['num_images'])) == 1
