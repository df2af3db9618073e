"""Depth end to end on a tiny KITTI raw tree: convert -> train -> resume -> test -> video demo."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from PIL import Image

from geo3d.apis.video import VideoWriter, read_video, video_info
from geo3d.converters.kitti import convert
from tests.helpers.kitti_fixture import write_kitti_raw
from tests.helpers.tools import ROOT, load_tool

H, W = 64, 96


@pytest.fixture(scope='module')
def tiny_kitti(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('depth_e2e')
    raw = write_kitti_raw(tmp / 'raw', drives=(1, 2, 3), num_frames=5, height=48, width=144)
    report = convert(raw.root, tmp / 'kitti', progress=False, verbose=False)
    assert not report.failed and report.subsets['train'] > 0 and report.subsets['test'] > 0
    return tmp, raw


def write_config(tmp, data_root) -> str:
    cfg = tmp / 'tiny_depth.py'
    cfg.write_text(f"""
_base_ = [{osp.join(ROOT, 'configs/monodepth_kitti_demo.py')!r}]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={str(data_root)!r}, height={H}, width={W},
                                     max_samples=4))
test_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                       dataset=dict(data_root={str(data_root)!r}, height={H}, width={W}))
train_cfg = dict(max_epochs=1)
param_scheduler = [dict(type='MultiStepLR', milestones=[1], gamma=0.1, by_epoch=True)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=5))
""")
    return str(cfg)


def test_train_resume_test_and_video_demo(tiny_kitti, capsys):
    torch.set_num_threads(1)
    tmp, raw = tiny_kitti
    cfg = write_config(tmp, tmp / 'kitti')
    work = tmp / 'work'
    train, test, demo = load_tool('train'), load_tool('test'), load_tool('demo_depth_video')

    # 4 samples, batch 2: one epoch is 2 iterations
    assert train.main([cfg, '--work-dir', str(work)]) == 0
    ck1 = torch.load(work / 'epoch_1.pth', weights_only=False)
    assert ck1['meta']['iter'] == 2
    assert {k.split('.', 1)[0] for k in ck1['state_dict']} == {
        'encoder', 'depth_decoder', 'pose_encoder', 'pose_decoder'}
    # resume for a second epoch: optimizer state and iteration counter carry on
    assert train.main([cfg, '--work-dir', str(work), '--resume',
                       '--cfg-options', 'train_cfg.max_epochs=2']) == 0
    ck2 = torch.load(work / 'epoch_2.pth', weights_only=False)
    assert ck2['meta']['iter'] == 4 and ck2['meta']['epoch'] == 2
    changed = [k for k, v in ck2['state_dict'].items()
               if v.is_floating_point() and not torch.equal(v, ck1['state_dict'][k])]
    assert any(k.startswith('encoder.') for k in changed)

    capsys.readouterr()
    assert test.main([cfg, str(work / 'epoch_2.pth'), '--work-dir', str(tmp / 'test')]) == 0
    printed = capsys.readouterr().out
    metrics = dict(re.findall(r'depth/(\w+): ([-0-9.naN]+)', printed))
    assert {'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'a1', 'a2', 'a3'} <= set(metrics)
    assert 0 <= float(metrics['abs_rel']) < 10 and 0 <= float(metrics['a1']) <= 1
    assert int(float(metrics['num_images'])) == 5  # the test drive's frames

    # video demo on a few frames of the test drive (48 x 144, not the training size)
    video = tmp / 'clip.mp4'
    with VideoWriter(video, fps=5) as w:
        for f in range(4):
            w.write(np.asarray(Image.open(raw.image(raw.folders[0], f, 2))))
    # --size native: the network runs at the video's size rounded to multiples of 32
    out = tmp / 'clip_depth.mp4'
    assert demo.main([cfg, str(work / 'epoch_2.pth'), '--video', str(video), '--out', str(out),
                      '--max-frames', '3', '--size', 'native', '--no-progress']) == 0
    assert '3 frames (144x48, network 160x64' in capsys.readouterr().out
    frames = list(read_video(out))
    assert len(frames) == 3 and frames[0].shape == (48, 288, 3)  # [RGB | depth]
    assert video_info(out).fps == 5


def test_tool_errors(tiny_kitti, capsys):
    tmp, _ = tiny_kitti
    demo = load_tool('demo_depth_video')
    cfg = write_config(tmp, tmp / 'kitti')
    assert demo.main([cfg, str(tmp / 'none.pth'), '--video', str(tmp / 'missing.mp4')]) == 2
    assert 'missing.mp4 does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main([cfg, 'x.pth', '--video', 'v.mp4', '--size', '640by192'])
    assert '--size must be WIDTHxHEIGHT' in capsys.readouterr().err
    train = load_tool('train')
    missing = tmp / 'missing_data.py'
    missing.write_text(f"_base_ = [{cfg!r}]\n"
                       f"train_dataloader = dict(dataset=dict(data_root={str(tmp / 'nope')!r}))\n")
    assert train.main([str(missing), '--work-dir', str(tmp / 'w2')]) == 2
    assert 'data_converters/kitti.py' in capsys.readouterr().err
