"""Gaussian2Scene stage 2 end to end: tools/train.py on the demo config (held-out PSNR logged
before training and after every epoch), then tools/render_gaussians.py on its checkpoint."""
from __future__ import annotations

import glob
import json
import os.path as osp

import cv2
import pytest
import torch

from tests.helpers.gaussian_scenes import write_frames_root
from tests.helpers.tools import ROOT, load_tool

CONFIG = osp.join(ROOT, 'configs', 'gaussian2scene_scannet_demo.py')
H, W = 30, 40


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def data_options(root: str) -> list[str]:
    opts = []
    for loader in ('train_dataloader', 'val_dataloader'):
        ds = f'{loader}.dataset'
        opts += [f'{ds}.data_root={root}', f'{ds}.image_size=({H},{W})',
                 f'{ds}.holdout_every=3', f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    return opts


def test_train_logs_heldout_psnr_then_render_png(tmp_path) -> None:
    root = write_frames_root(str(tmp_path / 'data'), {'train': ['scene0000_00', 'scene0001_00'],
                                                      'val': ['scene0100_00']},
                             frames=6, h=H, w=W)
    work = str(tmp_path / 'work')
    rc = load_tool('train').main([CONFIG, '--work-dir', work, '--cfg-options',
                                  'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
                                  *data_options(root)])
    assert rc == 0
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1
    with open(scalars[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    val = [r for r in rows if 'render/psnr' in r]
    train = [r for r in rows if 'loss' in r]
    # before training (epoch 0) and after the epoch
    assert len(val) == 2 and rows.index(val[0]) < rows.index(train[0])
    assert all(5.0 < r['render/psnr'] < 60.0 for r in val)
    assert all(r['render/num_frames'] == 2 for r in val)   # 1 val scene x 2 held-out frames
    assert {'render/ssim', 'render/depth_l1', 'render/psnr/scene0100_00'} <= set(val[0])
    assert {'loss_rgb_l1', 'loss_rgb_ssim', 'loss_depth', 'loss_geometry', 'psnr'} <= set(
        train[0])
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    out = str(tmp_path / 'renders.png')
    tool = load_tool('render_gaussians')
    assert tool.main([CONFIG, ckpt, '--out', out, '--frames', '2', '--cfg-options',
                      *data_options(root)]) == 0
    png = cv2.imread(out)
    scale = 160 // W
    # a title line, then one row per frame (1 val scene x 2 frames): 4 panels of W * scale
    assert png.shape == (18 + 2 * (18 + H * scale), 4 * W * scale + 6, 3)
    # the real-RGB panel of the first frame is the stored frame
    real = png[36:36 + H * scale:scale, W * scale + 2:2 * W * scale + 2:scale, ::-1]
    stored = cv2.imread(osp.join(root, 'scenes', 'scene0100_00', 'frames', 'color',
                                 '000002.jpg'))[..., ::-1]
    assert abs(real.astype(int) - stored.astype(int)).mean() < 2.0

    with pytest.raises(SystemExit, match='does not exist'):
        tool.main([CONFIG, str(tmp_path / 'missing.pth'), '--out', out, '--cfg-options',
                   *data_options(root)])
