"""NuScenesDepthDataset (KITTIRawDataset layout from the converter's info files) and
NuScenesLidarDataset (the ScanNet point dataset on nuScenes frames) on the synthetic v1.0-mini."""
from __future__ import annotations

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate

from geo3d.converters.nuscenes import convert, load_sparse_depth
from geo3d.datasets import NuScenesDepthDataset, NuScenesLidarDataset, point_collate
from geo3d.datasets.nuscenes import NuScenesDataError
from geo3d.datasets.transforms.image import apply_color_jitter
from geo3d.registry import DATASETS
from geo3d.structures import PointBatch
from geo3d.utils.errors import DataNotFoundError
from tests.helpers.nuscenes_fixture import write_nuscenes_mini
from tests.helpers.tools import ROOT

H, W = 32, 64


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('nus_ds')
    fx = write_nuscenes_mini(tmp / 'raw')
    rep = convert(fx.root, tmp / 'out', nsweeps=2, progress=False, verbose=False)
    assert not rep.failed
    return fx, tmp / 'out'


def _depth(out, ann='splits/train_info.json', **kw):
    kw.setdefault('height', H)
    kw.setdefault('width', W)
    kw.setdefault('num_scales', 2)
    kw.setdefault('interpolation', 'bilinear')
    kw.setdefault('serialize_data', False)  # mmengine's serialisation runs gc.collect (~0.5 s)
    return NuScenesDepthDataset(ann_file=ann, data_root=str(out / 'depth'), **kw)


def test_train_sample_layout(data) -> None:
    fx, out = data
    ds = _depth(out, flip_prob=0.0, color_aug_prob=1.0, seed=0)
    assert len(ds) == 7 and ds.metainfo['frame_ids'] == (0, -1, 1)
    s = ds[2]
    inp, meta = s['inputs'], s['data_samples'].metainfo
    assert [tuple(c.shape) for c in inp['color']] == [(3, 3, H, W), (3, 3, H // 2, W // 2)]
    assert inp['K'].shape == (2, 4, 4) and 'stereo_T' not in inp
    # per-scale K from the real intrinsics, normalised by the native 96x54 image
    k = fx.K
    for sc in range(2):
        w, h = W // 2 ** sc, H // 2 ** sc
        want = [[k[0, 0] / 96 * w, 0, k[0, 2] / 96 * w], [0, k[1, 1] / 54 * h, k[1, 2] / 54 * h]]
        np.testing.assert_allclose(inp['K'][sc, :2, :3].numpy(), want, rtol=1e-5)
        np.testing.assert_allclose((inp['K'][sc] @ inp['inv_K'][sc]).numpy(), np.eye(4),
                                   atol=1e-5)
    cams = fx.cams['scene-0061']
    i = meta['frame_index']
    assert meta['image_paths'] == [osp.join(str(fx.root), cams[j].filename)
                                   for j in (i, i - 1, i + 1)]
    assert meta['scene'] == 'scene-0061' and meta['tags'] == ['day']
    assert meta['token'] == cams[i].token and meta['side'] == 'CAM_FRONT'
    ref = np.linalg.inv(cams[i - 1].global_from_sensor) @ cams[i].global_from_sensor
    np.testing.assert_allclose(meta['rel_poses'][1], ref, atol=1e-5)
    np.testing.assert_allclose(meta['rel_poses'][0], np.eye(4))
    # the frames are different images; ONE jitter draw is applied to every frame
    assert not torch.equal(inp['color'][0][0], inp['color'][0][1])
    params = meta['color_aug_params']
    assert params is not None
    for c, ca in zip(inp['color'], inp['color_aug']):
        torch.testing.assert_close(ca, apply_color_jitter(c, params))


def test_flip_mirrors_every_frame_and_principal_point(data) -> None:
    _, out = data
    a = _depth(out, flip_prob=0.0, color_aug_prob=0.0, seed=0)[3]
    b = _depth(out, flip_prob=1.0, color_aug_prob=0.0, seed=0)[3]
    assert b['data_samples'].metainfo['flip']
    for ca, cb in zip(a['inputs']['color'], b['inputs']['color']):
        torch.testing.assert_close(cb, ca.flip(-1), atol=1e-6, rtol=0)
    ka, kb = a['data_samples'].metainfo['K_norm'], b['data_samples'].metainfo['K_norm']
    assert kb[0, 2] == pytest.approx(1.0 - ka[0, 2])


def test_test_mode_ground_truth_and_batches(data) -> None:
    fx, out = data
    ds = _depth(out, 'splits/val_info.json', frame_ids=(0,), num_scales=1, test_mode=True,
                gt_depth_file='auto')
    assert len(ds) == 6
    s = ds[4]
    gt = s['data_samples'].gt_depth
    info = ds.get_data_info(4)
    ref = load_sparse_depth(out / 'depth' / info['gt_depth'])
    assert gt.shape == (1, 54, 96) and torch.equal(gt[0], torch.from_numpy(ref))
    assert s['data_samples'].metainfo['ori_shape'] == (54, 96)
    assert s['data_samples'].metainfo['sample_token'] == fx.samples['scene-0916'][1]
    batch = default_collate([ds[0], ds[1]])
    assert batch['inputs']['color'][0].shape == (2, 1, 3, H, W)
    # the 80 m cap of the evaluation zeroes farther points
    capped = _depth(out, 'splits/val_info.json', frame_ids=(0,), num_scales=1, test_mode=True,
                    gt_depth_file='auto', gt_max_depth=20.0)[4]['data_samples'].gt_depth[0]
    assert capped.max() <= 20.0 and (ref > 20).any()
    assert torch.equal(capped[torch.from_numpy(ref <= 20)], gt[0][torch.from_numpy(ref <= 20)])


def test_conditions_and_missing_neighbours(data) -> None:
    _, out = data
    night = _depth(out, 'splits/val_info.json', frame_ids=(0,), conditions=('night',))
    assert len(night) == 3 and all(night.get_data_info(i)['tags'] == ['night', 'rain']
                                   for i in range(3))
    assert len(_depth(out, 'splits/night_val_info.json', frame_ids=(0,))) == 3
    # the last key frame of a scene has no +1 neighbour
    with pytest.raises(NuScenesDataError, match=r"has no neighbour \[1\].*missing_frame='zeros'"):
        _depth(out, 'splits/val_info.json')
    ds = _depth(out, 'splits/val_info.json', missing_frame='zeros', test_mode=True)
    meta = ds[2]['data_samples'].metainfo
    assert meta['missing_frames'] == [1]
    assert float(ds[2]['inputs']['color'][0][2].abs().sum()) == 0.0


def test_depth_dataset_errors(data, tmp_path) -> None:
    _, out = data
    with pytest.raises(ValueError, match="'s' .*no stereo pair"):
        _depth(out, frame_ids=(0, 's'))
    with pytest.raises(NuScenesDataError, match=r'need neighbours \[-2\].*--frame-offsets'):
        _depth(out, frame_ids=(0, -2))
    with pytest.raises(DataNotFoundError, match='data_converters/nuscenes.py'):
        _depth(out, 'splits/nope_info.json')
    with pytest.raises(DataNotFoundError, match='have no ground truth'):
        _depth(out, gt_depth_file='auto')
    with pytest.raises(ValueError, match="gt_depth_file must be 'auto' or None"):
        _depth(out, gt_depth_file='gt_depths.npz')
    with pytest.raises(DataNotFoundError, match='pass raw_root='):
        _depth(out, raw_root=str(tmp_path / 'moved'))
    # a corrupt ground-truth file is named when its sample is loaded
    ds = _depth(out, 'splits/val_info.json', frame_ids=(0,), test_mode=True,
                gt_depth_file='auto')
    path = out / 'depth' / ds.get_data_info(0)['gt_depth']
    saved = path.read_bytes()
    try:
        path.write_bytes(b'not an npz')
        with pytest.raises(NuScenesDataError, match=str(path)):
            ds[0]
    finally:
        path.write_bytes(saved)


def test_base_config_builds(data) -> None:
    _, out = data
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/nuscenes_depth.py'))
    over = dict(data_root=str(out / 'depth'), height=H, width=W, serialize_data=False)
    train = DATASETS.build(dict(cfg.train_dataloader.dataset, **over, num_scales=2))
    test = DATASETS.build(dict(cfg.test_dataloader.dataset, **over))
    assert len(train) == 7 and len(test) == 6
    assert test[0]['data_samples'].gt_depth.max() <= 80.0


# ------------------------------------------------------------------------------------------------
# LiDAR

def test_lidar_dataset_fields(data) -> None:
    fx, out = data
    ds = NuScenesLidarDataset(str(out / 'lidar'), split='val')
    assert len(ds) == 6 and ds.metainfo['num_classes'] == 16
    assert ds.metainfo['classes'][10] == 'driveable_surface'
    d = ds.get_data(1)
    n = d['coord'].shape[0]
    assert d['name'] == 'scene-0103_001'
    assert d['strength'].shape == (n, 1) and d['time'].shape == (n, 1)
    assert d['segment'].dtype == np.int64 and d['segment'].shape == (n,)
    sl = fx.part_slices()
    assert d['strength'][sl['wall']].ravel() == pytest.approx(100.0 / 255.0)
    assert set(d['time'].ravel().round(3)) == {0.0, 0.25}  # nsweeps=2
    assert (d['segment'][sl['ground']] == 10).all()
    assert len(NuScenesLidarDataset(str(out / 'lidar'), split=['train', 'val'], loop=2)) == 18


def test_lidar_dataset_errors(data, tmp_path) -> None:
    _, out = data
    with pytest.raises(DataNotFoundError, match=r"splits there: \['train', 'val'\].*--task lidar"):
        NuScenesLidarDataset(str(out / 'lidar'), split='test')
    with pytest.raises(DataNotFoundError, match='missing .*meta.json'):
        NuScenesLidarDataset(str(tmp_path))


def test_msm_config_pipeline_gives_two_point_batches(data) -> None:
    _, out = data
    cfg = Config.fromfile(osp.join(ROOT, 'configs/msm_nuscenes.py'))
    dcfg = dict(cfg.train_dataloader.dataset, data_root=str(out / 'lidar'))
    ds = DATASETS.build(dcfg)
    batch = point_collate([ds[0], ds[1]])['inputs']
    assert set(batch) == {'view0', 'view1'}
    v = batch['view0']
    assert isinstance(v, PointBatch) and v.feat.shape[1] == cfg.model.backbone.in_channels == 4
    assert v.offset.shape == (2,)
