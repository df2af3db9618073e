"""CityscapesSequenceDataset on the tiny Cityscapes fixture, converted by the real converter:
the same layout as KITTIRawDataset, neighbours at sample_gap, the hood crop, intrinsics that
project a 3D point where the cropped image shows it, ground truth through DepthMetric's
Cityscapes conventions, pre-resized images, and clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from PIL import Image

from geo3d.converters.cityscapes import convert
from geo3d.converters.kitti import convert as convert_kitti
from geo3d.datasets.cityscapes import CityscapesDataError, CityscapesSequenceDataset
from geo3d.datasets.transforms.image import apply_color_jitter
from geo3d.evaluation.depth import DepthMetric
from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError
from tests.helpers.cityscapes_fixture import HOOD, fixture_color, write_cityscapes, write_frame
from tests.helpers.kitti_fixture import write_kitti_raw

TRAIN, TEST = 'splits/auto/train_info.json', 'splits/auto/test_info.json'


@pytest.fixture(scope='module')
def converted(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp('cityscapes')
    cs = write_cityscapes(tmp / 'cs')
    convert(cs.root, tmp / 'out', progress=False, verbose=False)
    return cs, tmp / 'out'


def build(out: Path, **kw) -> CityscapesSequenceDataset:
    kw.setdefault('ann_file', TRAIN)
    kw.setdefault('height', 24)
    kw.setdefault('width', 64)
    kw.setdefault('serialize_data', False)  # mmengine's serialisation runs gc.collect (slow)
    return DATASETS.build(dict(type='CityscapesSequenceDataset', data_root=str(out), **kw))


def frame_rgb(color: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(round(v)) for v in (color.mean((-2, -1)) * 255).tolist())


def test_same_layout_as_kitti(converted, tmp_path: Path) -> None:
    cs, out = converted
    write_kitti_raw(tmp_path / 'raw')
    convert_kitti(tmp_path / 'raw', tmp_path / 'kitti', num_val_drives=0, progress=False,
                  verbose=False)
    common = dict(frame_ids=(0, -1, 1), height=24, width=64, num_scales=4, seed=0)
    kitti = DATASETS.build(dict(type='KITTIRawDataset', data_root=str(tmp_path / 'kitti'),
                                ann_file=TRAIN, serialize_data=False, **common))
    ours = build(out, **common)
    a, b = kitti[0], ours[0]
    assert set(a) == set(b) == {'inputs', 'data_samples'}
    assert set(a['inputs']) == set(b['inputs'])
    for key, va in a['inputs'].items():
        vb = b['inputs'][key]
        if isinstance(va, list):
            assert [t.shape for t in va] == [t.shape for t in vb] and vb[0].dtype == va[0].dtype
        else:
            assert va.shape == vb.shape and va.dtype == vb.dtype
    assert set(a['data_samples'].metainfo) <= set(b['data_samples'].metainfo)
    ba, bb = default_collate([kitti[0], kitti[1]]), default_collate([ours[0], ours[1]])
    assert [t.shape for t in bb['inputs']['color']] == [t.shape for t in ba['inputs']['color']]
    assert bb['inputs']['color'][0].shape == (2, 3, 3, 24, 64)
    assert bb['inputs']['K'].shape == ba['inputs']['K'].shape == (2, 4, 4, 4)


def test_neighbours_at_sample_gap_and_hood_cut(converted) -> None:
    cs, out = converted
    ds = build(out, frame_ids=(0, -1, 1), test_mode=True)
    assert len(ds) == 5 and ds.sample_gap == 2
    for idx in range(5):
        s = ds[idx]
        meta = s['data_samples'].metainfo
        t = meta['frame_index']
        assert t == 17 + idx and meta['folder'] == 'train/aachen/aachen_000000'
        for f, frame in enumerate((t, t - 2, t + 2)):
            for level in s['inputs']['color']:  # flat: nothing of the hood survived the crop
                assert frame_rgb(level[f]) == fixture_color('aachen', 0, frame)
                assert (level[f] * 255 - torch.tensor(fixture_color('aachen', 0, frame))
                        [:, None, None]).abs().max() < 1
            assert meta['image_paths'][f] == str(cs.image('train', 'aachen', 0, frame))
        assert meta['ori_shape'] == (48, 128)  # the cropped raw frame
        hood = torch.tensor(HOOD, dtype=torch.float32)[:, None, None] / 255
        assert ((s['inputs']['color'][0] - hood).abs().amax(1) > 0.1).all()  # no hood pixel
    # sample_gap override: frames t - 1, t + 1
    s = build(out, sample_gap=1, test_mode=True)[0]
    assert [frame_rgb(c) for c in s['inputs']['color'][0]] == [
        fixture_color('aachen', 0, f) for f in (17, 16, 18)]


def test_intrinsics_per_scale(converted) -> None:
    cs, out = converted
    cam = cs.camera_values('aachen')['intrinsic']
    ds = build(out, test_mode=True, height=24, width=64)
    s = ds[0]
    K_norm = s['data_samples'].metainfo['K_norm']
    np.testing.assert_allclose(np.diag(K_norm)[:2], [cam['fx'] / 128, cam['fy'] / 48])
    np.testing.assert_allclose(K_norm[:2, 2], [cam['u0'] / 128, cam['v0'] / 48])
    for k in range(4):
        w, h = 64 // 2 ** k, 24 // 2 ** k
        ref = np.array([[cam['fx'] / 128 * w, 0, cam['u0'] / 128 * w, 0],
                        [0, cam['fy'] / 48 * h, cam['v0'] / 48 * h, 0], [0, 0, 1, 0],
                        [0, 0, 0, 1]])
        np.testing.assert_allclose(s['inputs']['K'][k].double(), ref, rtol=1e-6)
        np.testing.assert_allclose(s['inputs']['inv_K'][k].double(), np.linalg.inv(ref),
                                   rtol=1e-5)


@pytest.mark.parametrize('flip', [False, True])
def test_projection_lands_where_the_cropped_image_shows_it(converted, tmp_path: Path,
                                                           flip: bool) -> None:
    """A 3D point, projected with the raw camera JSON, is drawn as a white square in the raw
    frame; after the hood crop, the resize (and a flip) it must appear where the dataset's K
    projects the same point."""
    cs, out = converted
    root = tmp_path / 'cs'
    shutil.copytree(cs.root, root)
    cam = cs.camera_values('aachen')['intrinsic']
    u0, v0, size = 90.0, 20.0, 8  # square covers [86, 94) x [16, 24) of the 128x64 frame
    Z = 12.0
    X = np.array([(u0 - cam['u0']) / cam['fx'] * Z, (v0 - cam['v0']) / cam['fy'] * Z, Z])
    path = root / 'leftImg8bit_sequence/train/aachen/aachen_000000_000017_leftImg8bit.png'
    write_frame(path, (40, 40, 40), 64, 128)
    a = np.asarray(Image.open(path)).copy()
    a[16:24, 86:94] = 255
    Image.fromarray(a).save(path)
    ds = build(out, test_mode=not flip, raw_root=str(root), flip_prob=1.0, color_aug_prob=0.0,
               frame_ids=(0,))
    s = ds[0]
    img = s['inputs']['color'][0][0, 0].double() - 40 / 255  # (24, 64), background 0
    assert s['data_samples'].metainfo['flip'] is flip
    w = img.clamp(min=0)
    vs, us = torch.meshgrid(torch.arange(24.0, dtype=torch.float64) + 0.5,
                            torch.arange(64.0, dtype=torch.float64) + 0.5, indexing='ij')
    centroid = np.array([(w * us).sum() / w.sum(), (w * vs).sum() / w.sum()])
    K = s['inputs']['K'][0].double().numpy()[:3, :3]
    proj = K @ (X * [-1, 1, 1] if flip else X)  # the mirrored image sees the point at -x
    np.testing.assert_allclose(proj[:2] / proj[2], centroid, atol=0.05)
    # the centre of the square of the 64x24 image: x 45 (or 64 - 45 mirrored), y 10
    np.testing.assert_allclose(centroid, [19.0 if flip else 45.0, 10.0], atol=0.05)


def test_colour_jitter_once_per_sample(converted) -> None:
    _, out = converted
    ds = build(out, color_aug_prob=1.0, flip_prob=0.0, seed=3)
    s = ds[1]
    params = s['data_samples'].metainfo['color_aug_params']
    assert params is not None
    for c, ca in zip(s['inputs']['color'], s['inputs']['color_aug']):
        torch.testing.assert_close(ca, apply_color_jitter(c, params))


def test_ground_truth_and_cityscapes_metric(converted) -> None:
    cs, out = converted
    ds = build(out, ann_file=TEST, test_mode=True, frame_ids=(0, -1), num_scales=1,
               gt_depth_dir='auto')
    assert len(ds) == 1
    s = ds[0]
    gt = s['data_samples'].gt_depth
    assert gt.shape == (1, 64, 128)  # full size, as ManyDepth's gt_depths
    np.testing.assert_array_equal(gt[0].numpy(), np.load(out / 'gt_depths/berlin/'
                                                         'berlin_000000_000019_depth.npy'))
    meta = s['data_samples'].metainfo
    assert [Path(p).name for p in meta['image_paths']] == [
        'berlin_000000_000019_leftImg8bit.png', 'berlin_000000_000017_leftImg8bit.png']
    g = gt[0].numpy()
    perfect = np.where(g[:48] > 0, g[:48], 1.0)  # prediction for the cropped image
    metric = DepthMetric(eval_split='cityscapes')
    metric.process({}, [{'gt_depth': gt, 'pred_depth': torch.from_numpy(perfect)},
                        {'gt_depth': gt, 'pred_depth': torch.from_numpy(perfect * 3.0)}])
    res = metric.compute_metrics(metric.results)
    # exact up to float32 rounding (the metric resizes 1 / depth in float32)
    assert res['abs_rel'] < 1e-6 and res['rmse'] < 1e-4 and res['a1'] == 1.0
    assert res['num_images'] == 2 and res['ratio_median'] == pytest.approx(2 / 3)
    noisy = perfect * np.random.default_rng(0).uniform(0.8, 1.25, perfect.shape)
    metric.results.clear()
    metric.process({}, [{'gt_depth': gt, 'pred_depth': torch.from_numpy(noisy)}])
    assert metric.compute_metrics(metric.results)['abs_rel'] > 0.05


def test_pre_resized_images(converted, tmp_path: Path) -> None:
    cs, _ = converted
    out = tmp_path / 'out'
    convert(cs.root, out, resize=(64, 24), image_format='png', progress=False, verbose=False)
    ds = build(out, test_mode=True)
    assert ds.pre_cropped and ds.image_root == str(out / 'images' / '64x24')
    raw = build(converted[1], test_mode=True)
    a, b = ds[2], raw[2]
    for ca, cb in zip(a['inputs']['color'], b['inputs']['color']):
        torch.testing.assert_close(ca, cb, atol=1 / 255, rtol=0)
    torch.testing.assert_close(a['inputs']['K'], b['inputs']['K'])
    assert a['data_samples'].metainfo['image_paths'][0].startswith(str(out / 'images'))


def test_missing_frames_and_errors(converted, tmp_path: Path) -> None:
    cs, out = converted
    with pytest.raises(DataNotFoundError, match='data_converters/cityscapes.py'):
        build(out, ann_file='splits/auto/none.json')
    with pytest.raises(ValueError, match="frame id 's'"):
        build(out, frame_ids=(0, 's'))
    with pytest.raises(ValueError, match='must contain the target frame 0'):
        build(out, frame_ids=(-1, 1))
    with pytest.raises(DataNotFoundError, match="gt_depth_dir='auto' but"):
        build(out, gt_depth_dir='auto')
    with pytest.raises(DataNotFoundError, match='is not a directory; pass raw_root='):
        build(out, raw_root=str(tmp_path / 'moved'))
    bad = tmp_path / 'bad.json'
    bad.write_text(json.dumps({'frames': []}))
    with pytest.raises(CityscapesDataError, match='is not an info file of data_converters/'
                                                  'cityscapes.py'):
        build(out, ann_file=str(bad))

    root = tmp_path / 'cs'
    shutil.copytree(cs.root, root)
    gone = root / 'leftImg8bit_sequence/train/aachen/aachen_000000_000015_leftImg8bit.png'
    gone.unlink()
    ds = build(out, raw_root=str(root), test_mode=True)
    with pytest.raises(FileNotFoundError, match=f'missing image {gone} \\(frame -1 of '
                                                '"aachen aachen_000000_000017"'):
        ds[0]
    s = build(out, raw_root=str(root), test_mode=True, missing_frame='zeros')[0]
    assert s['data_samples'].metainfo['missing_frames'] == [-1]
    assert s['inputs']['color'][0][1].abs().max() == 0

    gt_out = tmp_path / 'out2'
    shutil.copytree(out, gt_out)
    npy = gt_out / 'gt_depths/berlin/berlin_000000_000019_depth.npy'
    npy.unlink()
    with pytest.raises(DataNotFoundError, match='1 of 1 ground-truth maps are missing, first '
                                                f"'{npy}'"):
        build(gt_out, ann_file=TEST, test_mode=True, gt_depth_dir='auto')
    np.save(npy, np.zeros((2, 3, 4), np.float32))
    ds = build(gt_out, ann_file=TEST, test_mode=True, gt_depth_dir='auto')
    with pytest.raises(CityscapesDataError, match='has shape \\(2, 3, 4\\), expected'):
        ds[0]
