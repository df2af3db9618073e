"""tools/demo_depth_video.py with a multi-frame model: stride, intrinsics, teacher panel, errors."""
from __future__ import annotations

import json

import pytest
import torch

from geo3d.apis.video import VideoWriter, read_video, video_info
from tests.apis.test_depth_predictor_multiframe import (DEC, TINY, config_file, save_checkpoint,
                                                        textured, tiny_multiframe)
from tests.helpers.tools import load_tool

VH, VW = 70, 110


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """(tmp dir, ManyDepth config, its checkpoint, a 6-frame 20 fps video)."""
    tmp = tmp_path_factory.mktemp('demo')
    ckpt = save_checkpoint(tiny_multiframe(), tmp / 'many.pth')
    video = tmp / 'in.mp4'
    with VideoWriter(video, fps=20) as w:
        for i in range(6):
            w.write(textured(VH, VW, seed=7, shift=i))
    return tmp, config_file(tmp), ckpt, video


def test_multi_frame_demo_with_stride_intrinsics_and_teacher_panel(setup, capsys):
    tmp, cfg, ckpt, video = setup
    K = tmp / 'intrinsics.json'
    K.write_text(json.dumps([[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1.0]]))
    out = tmp / 'out.mp4'
    demo = load_tool('demo_depth_video')
    assert demo.main([cfg, ckpt, '--video', str(video), '--out', str(out), '--stride', '2',
                      '--intrinsics', str(K), '--compare-single', '--batch-size', '2',
                      '--no-progress']) == 0
    printed = capsys.readouterr().out
    assert '3 frames (110x70, network 96x64, cpu, multi-frame ManyDepth, stride 2)' in printed
    frames = list(read_video(out))
    assert len(frames) == 3 and frames[0].shape == (VH, 3 * VW, 3)
    assert video_info(out).fps == 10  # 20 fps / stride 2
    out2 = tmp / 'out2.mp4'
    assert demo.main([cfg, ckpt, '--video', str(video), '--out', str(out2), '--max-frames',
                      '2', '--per-frame-colors', '--no-progress']) == 0
    frames = list(read_video(out2))
    assert len(frames) == 2 and frames[0].shape == (VH, 2 * VW, 3)


def test_demo_errors(setup, capsys):
    tmp, cfg, ckpt, video = setup
    demo = load_tool('demo_depth_video')
    bad = tmp / 'pixel_K.json'
    bad.write_text(json.dumps([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]]))
    assert demo.main([cfg, ckpt, '--video', str(video), '--intrinsics', str(bad),
                      '--no-progress']) == 2
    err = capsys.readouterr().err
    assert 'pixel_K.json: principal point cx/W=609.6' in err and 'normalised' in err
    assert demo.main([cfg, ckpt, '--video', str(video), '--intrinsics',
                      str(tmp / 'missing.json'), '--no-progress']) == 2
    assert 'missing.json does not exist' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        demo.main([cfg, ckpt, '--video', str(video), '--stride', '0'])
    assert '--stride must be >= 1' in capsys.readouterr().err
    # a single-frame model has no teacher panel
    mono_cfg = tmp / 'mono.py'
    mono_cfg.write_text(f"model = dict(type='MonoDepth', encoder={TINY!r}, "
                        f'pose_encoder={TINY!r}, depth_decoder={DEC!r})\n'
                        f"test_dataloader = dict(dataset=dict(height=64, width=96))\n")
    from geo3d.registry import MODELS
    mono = MODELS.build(dict(type='MonoDepth', encoder=TINY, pose_encoder=TINY,
                             depth_decoder=DEC))
    mono_ckpt = save_checkpoint(mono, tmp / 'mono.pth')
    with pytest.raises(SystemExit):
        demo.main([str(mono_cfg), mono_ckpt, '--video', str(video), '--compare-single'])
    assert '--compare-single needs a multi-frame model' in capsys.readouterr().err
