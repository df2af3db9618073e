"""Gaussian2Scene stage 1 on rendered demo rooms with RGB-D frames: voxel/pixel
correspondences of real converted data, and tools/train.py + --resume with the demo config."""
from __future__ import annotations

import os.path as osp

import pytest
import torch
from mmengine.config import Config

from tests.helpers.tools import ROOT, load_tool

DEMO_CONFIG = osp.join(ROOT, 'configs/gaussian2scene_stage1_scannet_demo.py')


@pytest.fixture(scope='module')
def tiny_frames(tmp_path_factory) -> str:
    from geo3d.converters.scannet import convert
    from geo3d.converters.scannet.frames import FrameOptions
    from geo3d.datasets.demo import make_demo_scannet
    tmp = tmp_path_factory.mktemp('g2s')
    raw, out = tmp / 'raw', tmp / 'out'
    make_demo_scannet(raw, num_train=2, num_val=0, num_test=0, seed=7, points_per_scene=2000,
                      frames=4, frame_size=(80, 64))
    rep = convert(raw, out, splits=('train',), progress=False, verbose=False,
                  frames=FrameOptions(every=1))
    assert rep.failed == [] and rep.frames == 8
    return str(out)


def test_demo_frames_correspondences(tiny_frames: str) -> None:
    """On rendered demo rooms most projected voxels pass the depth test in some frame."""
    from geo3d.datasets import ScanNetFramesDataset, scannet_frames_collate
    from geo3d.models.pretrain3d.gaussian2scene import project_to_frames
    demo = Config.fromfile(DEMO_CONFIG)
    pipeline = [t for t in demo.train_dataloader.dataset.point_pipeline
                if t['type'] not in ('SphereCrop',)]
    ds = ScanNetFramesDataset(tiny_frames, 'train', frames_per_sample=4, image_size=(64, 80),
                              load_points=True, point_pipeline=pipeline, random_frames=False)
    b = scannet_frames_collate([ds[0], ds[1]])['inputs']
    pts = b['points']
    args = (pts.coord, pts.batch, b['camera_to_world'], b['intrinsics'], (64, 80))
    loose = project_to_frames(*args)
    tight = project_to_frames(*args, depth=b['depth'], depth_intrinsics=b['depth_intrinsics'],
                              depth_tol=0.1)
    # furnished rooms: ~40 % of the voxels in a frustum are hidden behind something
    assert tight.num_matches > 0.35 * loose.num_matches
    # the visible ones sit on the depth map (5 cm voxels: within the tolerance)
    px = torch.floor(tight.uv + 0.5).long()
    d = b['depth'].flatten(0, 1)[tight.frame, 0, px[:, 1], px[:, 0]]
    assert float((tight.z - d).abs().median()) < 0.03
    # poses 20 cm off: far fewer voxels meet the depth maps (the test sees misalignment)
    moved = b['camera_to_world'].clone()
    moved[..., :3, 3] += torch.tensor([0.2, -0.1, 0.0])
    off = project_to_frames(pts.coord, pts.batch, moved, b['intrinsics'], (64, 80),
                            depth=b['depth'], depth_intrinsics=b['depth_intrinsics'],
                            depth_tol=0.1)
    assert off.num_matches < 0.6 * tight.num_matches


def test_train_and_resume_with_tools(tiny_frames: str, tmp_path) -> None:
    cfg = tmp_path / 'g2s_tiny.py'
    cfg.write_text(f"""
_base_ = [{DEMO_CONFIG!r}]
model = dict(backbone=dict(base_channels=8, channels=(8, 16, 16, 16, 16, 8, 8, 8),
                           layers=(1, 1, 1, 1, 1, 1, 1, 1)),
             image_encoder=dict(embed_dim=32, depth=1, num_heads=2),
             image_mae=dict(decoder_dim=32, decoder_heads=2), align=dict(dim=16, hidden=32))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root={tiny_frames!r}))
default_hooks = dict(checkpoint=dict(interval=1))
""")
    train = load_tool('train')
    work = tmp_path / 'work'
    assert train.main([str(cfg), '--work-dir', str(work),
                       '--cfg-options', 'train_cfg.max_epochs=1']) == 0
    assert osp.isfile(work / 'epoch_1.pth')
    assert train.main([str(cfg), '--work-dir', str(work), '--resume',
                       '--cfg-options', 'train_cfg.max_epochs=2']) == 0
    ck = torch.load(work / 'epoch_2.pth', map_location='cpu', weights_only=False)
    assert ck['meta']['epoch'] == 2 and ck['meta']['iter'] == 2
    assert any(k.startswith('backbone.') for k in ck['state_dict'])
