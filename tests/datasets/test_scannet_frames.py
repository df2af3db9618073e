"""Tests for ScanNetFramesDataset and scannet_frames_collate (geo3d.datasets.scannet_frames)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from geo3d.converters.scannet import convert
from geo3d.converters.scannet.frames import FrameOptions, resize_intrinsics
from geo3d.datasets import ScanNetFramesDataset, scannet_frames_collate
from geo3d.datasets.demo import make_demo_scannet
from geo3d.datasets.scannet import ScanNetDataError
from geo3d.registry import DATASETS, FUNCTIONS
from geo3d.structures import PointBatch
from geo3d.utils.errors import DataNotFoundError
from tests.converters.test_scannet_frames import alignment_stats

W, H, NF = 64, 48, 6
SCENES = ['scene0000_00', 'scene0001_00']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp('raw')
    make_demo_scannet(raw, num_train=2, num_val=0, num_test=0, seed=5, points_per_scene=2000,
                      frames=NF, frame_size=(W, H))
    out = tmp_path_factory.mktemp('out')
    rep = convert(raw, out, splits=('train',), progress=False, verbose=False,
                  frames=FrameOptions(every=1))
    assert rep.failed == [] and rep.frames == 2 * NF
    return out


@pytest.fixture
def root(data_root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(data_root, tmp_path / 'root'))


def test_sample_shapes_and_values(data_root: Path) -> None:
    ds = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=3, seed=0)
    assert len(ds) == 2 and ds.scenes == SCENES
    s = ds[1]
    assert s['name'] == SCENES[1]
    assert s['images'].shape == (3, 3, H, W) and s['images'].dtype == torch.float32
    assert 0.0 <= float(s['images'].min()) and float(s['images'].max()) <= 1.0
    assert float(s['images'].max()) > 0.3
    assert s['depth'].shape == (3, 1, H, W)
    valid = s['depth'][s['depth'] > 0]
    assert 0.1 < float(valid.min()) and float(valid.max()) < 10.0        # metres, not mm
    assert s['camera_to_world'].shape == (3, 4, 4) and s['intrinsics'].shape == (3, 3, 3)
    assert s['depth_intrinsics'].shape == (3, 3, 3) and s['frame_ids'].dtype == torch.int64
    meta = json.loads((data_root / 'scenes' / SCENES[1] / 'frames' / 'meta.json').read_text())
    np.testing.assert_allclose(s['intrinsics'][0].numpy(), meta['intrinsic_color'], atol=1e-5)
    poses = np.load(data_root / 'scenes' / SCENES[1] / 'frames' / 'poses.npy')
    ids = s['frame_ids'].numpy()
    np.testing.assert_array_equal(s['camera_to_world'].numpy(), poses[ids])  # ids == positions
    # depth is the stored PNG in metres
    png = cv2.imread(str(data_root / 'scenes' / SCENES[1] / 'frames' / 'depth' /
                         f'{ids[0]:06d}.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(s['depth'][0, 0].numpy(), png / 1000.0, atol=1e-6)
    assert 'points' not in s


def test_random_and_fixed_frame_choice(data_root: Path) -> None:
    ds = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=2, seed=1)
    picks = [tuple(ds.choose_frames(SCENES[0])) for _ in range(30)]
    assert all(a < b for a, b in picks)                  # distinct and sorted
    assert len(set(picks)) > 5                           # random
    fixed = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=3, test_mode=True)
    assert fixed.random_frames is False
    assert fixed.choose_frames(SCENES[0]).tolist() == [0, 2, 5] == fixed.choose_frames(
        SCENES[0]).tolist()
    many = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=NF + 2, seed=0)
    assert len(many.choose_frames(SCENES[0])) == NF + 2  # with replacement when short


def test_holdout_views(data_root: Path) -> None:
    kw = dict(frames_per_sample=NF, random_frames=False, holdout_every=3)
    train = ScanNetFramesDataset(str(data_root), 'train', frame_set='train', **kw)
    held = ScanNetFramesDataset(str(data_root), 'train', frame_set='holdout', **kw)
    assert held._meta[SCENES[0]]['positions'].tolist() == [2, 5]
    assert train._meta[SCENES[0]]['positions'].tolist() == [0, 1, 3, 4]
    assert not set(train[0]['frame_ids'].tolist()) & set(held[0]['frame_ids'].tolist())
    with pytest.raises(ValueError, match='holdout_every'):
        ScanNetFramesDataset(str(data_root), frame_set='holdout')
    with pytest.raises(ValueError, match='holdout_every'):
        ScanNetFramesDataset(str(data_root), holdout_every=1)


def test_resize_rescales_intrinsics_and_keeps_alignment(data_root: Path) -> None:
    full = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=NF, test_mode=True,
                                load_points=True)
    small = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=NF, test_mode=True,
                                 image_size=(24, 32), load_points=True)
    totals = np.zeros(3)
    for a, b in zip(full, small):
        assert b['images'].shape == (NF, 3, 24, 32) and b['depth'].shape == (NF, 1, 24, 32)
        want = resize_intrinsics(a['intrinsics'][0].numpy(), (W, H), (32, 24))
        np.testing.assert_allclose(b['intrinsics'][0].numpy(), want, atol=1e-5)
        np.testing.assert_allclose(b['depth_intrinsics'].numpy(), b['intrinsics'].numpy())
        assert torch.equal(a['camera_to_world'], b['camera_to_world'])
        coord = b['points']['coord'].astype(np.float64)
        for k in range(NF):
            totals += alignment_stats(coord, b['depth'][k, 0].numpy().astype(np.float64),
                                      b['depth_intrinsics'][k].numpy().astype(np.float64),
                                      b['camera_to_world'][k].numpy().astype(np.float64),
                                      tol=0.02)
    n, match, front = totals
    assert n > 300 and match / n > 0.3 and front / n < 0.12, totals  # 0.62, 0.095


def test_axis_align_moves_points_and_poses_together(data_root: Path) -> None:
    kw = dict(frames_per_sample=2, test_mode=True, load_points=True)
    raw = ScanNetFramesDataset(str(data_root), 'train', **kw)[0]
    al = ScanNetFramesDataset(str(data_root), 'train', axis_align=True, **kw)[0]
    A = np.load(data_root / 'scenes' / SCENES[0] / 'axis_align_matrix.npy').astype(np.float64)
    np.testing.assert_allclose(al['points']['coord'],
                               raw['points']['coord'] @ A[:3, :3].T + A[:3, 3], atol=1e-4)
    assert not np.allclose(al['camera_to_world'].numpy(), raw['camera_to_world'].numpy())

    def cam(points: np.ndarray, c2w: torch.Tensor) -> np.ndarray:
        return (np.linalg.inv(c2w.numpy().astype(np.float64)) @ np.c_[points, np.ones(len(
            points))].T)[:3]

    np.testing.assert_allclose(cam(al['points']['coord'], al['camera_to_world'][0]),
                               cam(raw['points']['coord'], raw['camera_to_world'][0]), atol=1e-3)


def test_collate_and_registry(data_root: Path) -> None:
    ds = DATASETS.build(dict(type='ScanNetFramesDataset', data_root=str(data_root),
                             split='train', frames_per_sample=2, load_points=True, seed=0,
                             point_pipeline=[dict(type='GridSample', grid_size=0.1,
                                                  keys=('coord', 'color', 'normal'))]))
    assert isinstance(ds, ScanNetFramesDataset)
    collate = FUNCTIONS.get('scannet_frames_collate')
    assert collate is scannet_frames_collate
    batch = collate([ds[0], ds[1]])
    inp = batch['inputs']
    assert inp['images'].shape == (2, 2, 3, H, W) and inp['depth'].shape == (2, 2, 1, H, W)
    assert inp['camera_to_world'].shape == (2, 2, 4, 4) and inp['frame_ids'].shape == (2, 2)
    pts = inp['points']
    assert isinstance(pts, PointBatch) and pts.feat.shape[1] == 3
    assert pts.offset.tolist()[-1] == pts.coord.shape[0] and len(pts.offset) == 2
    assert [d['name'] for d in batch['data_samples']] == SCENES
    small = ScanNetFramesDataset(str(data_root), 'train', frames_per_sample=2,
                                 image_size=(24, 32))
    with pytest.raises(ValueError, match='different shapes'):
        scannet_frames_collate([ds[0], small[1]])


# ------------------------------------------------------------------------------------------------
# bad input


def test_scene_without_frames(root: Path) -> None:
    shutil.rmtree(root / 'scenes' / SCENES[1] / 'frames')
    with pytest.raises(DataNotFoundError, match=r'scene0001_00.*frames/meta\.json.*'
                                                r'--frames-every'):
        ScanNetFramesDataset(str(root))
    with pytest.raises(DataNotFoundError, match='missing'):
        ScanNetFramesDataset(str(root / 'nowhere'))


def test_missing_or_wrong_images_name_the_file(root: Path) -> None:
    ds = ScanNetFramesDataset(str(root), frames_per_sample=NF, test_mode=True)
    frames = root / 'scenes' / SCENES[0] / 'frames'
    (frames / 'color' / '000003.jpg').unlink()
    with pytest.raises(ScanNetDataError, match=r'missing frame image .*color/000003\.jpg'):
        ds[0]
    depth = frames / 'depth' / '000001.png'
    cv2.imwrite(str(depth), np.zeros((H, W + 2), np.uint16))
    with pytest.raises(ScanNetDataError, match=rf'depth/000001\.png.* is {W + 2}x{H}, '
                                               rf'meta\.json says {W}x{H}'):
        ds.get_frames(SCENES[0], [1])
    cv2.imwrite(str(depth), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ScanNetDataError, match='one-channel uint16 PNG'):
        ds.get_frames(SCENES[0], [1])
    np.save(frames / 'poses.npy', np.zeros((NF - 1, 4, 4), np.float32))
    with pytest.raises(ScanNetDataError, match=r'poses\.npy.* has shape \(5, 4, 4\)'):
        ds.get_frames(SCENES[0], [0])
    (frames / 'meta.json').write_text('{"num_frames": ')
    with pytest.raises(ScanNetDataError, match=r'cannot read frames meta .*meta\.json'):
        ScanNetFramesDataset(str(root))


def test_bad_arguments(data_root: Path) -> None:
    with pytest.raises(ValueError, match='frames_per_sample'):
        ScanNetFramesDataset(str(data_root), frames_per_sample=0)
    with pytest.raises(ValueError, match='frame_set'):
        ScanNetFramesDataset(str(data_root), frame_set='val')
    with pytest.raises(ValueError, match='image_size'):
        ScanNetFramesDataset(str(data_root), image_size=(24,))
    with pytest.raises(IndexError):
        ScanNetFramesDataset(str(data_root))[2]
