"""KITTIRawDataset on the tiny KITTI fixture, converted by the real converter: shapes, that the
neighbour / stereo frames are the right files, K per scale, stereo_T signs, augmentation
consistency, ground truth, collation, and clear errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate, pseudo_collate
from torch.utils.data import DataLoader

from geo3d.converters.kitti import convert
from geo3d.datasets.kitti import MONODEPTH2_KITTI_K, KITTIDataError, KITTIRawDataset
from geo3d.datasets.transforms.image import apply_color_jitter, flip_intrinsics
from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError
from tests.helpers.kitti_fixture import drive_folder, fixture_color, write_kitti_raw

D1, D2 = drive_folder(1), drive_folder(2)
TRAIN, TEST = 'splits/auto/train_info.json', 'splits/auto/test_info.json'


def _make(root: Path) -> tuple[Path, Path]:
    write_kitti_raw(root / 'raw')
    convert(root / 'raw', root / 'out', num_val_drives=0, progress=False, verbose=False)
    return root / 'raw', root / 'out'


@pytest.fixture(scope='module')
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _make(tmp_path_factory.mktemp('kitti'))


def build(out: Path, **kw) -> KITTIRawDataset:
    kw.setdefault('ann_file', TRAIN)
    kw.setdefault('height', 16)
    kw.setdefault('width', 48)
    kw.setdefault('serialize_data', False)  # mmengine's serialisation runs gc.collect (slow)
    return DATASETS.build(dict(type='KITTIRawDataset', data_root=str(out), **kw))


def frame_rgb(color: torch.Tensor) -> tuple[int, ...]:
    """The flat colour of a (3, H, W) image in 0..255."""
    return tuple(int(round(v)) for v in (color.mean((-2, -1)) * 255).tolist())


def test_shapes_and_frames_are_the_right_files(converted) -> None:
    raw, out = converted
    ds = build(out, frame_ids=(0, -1, 1, 's'), test_mode=True, serialize_data=True)
    assert len(ds) == 8 and ds.metainfo['frame_ids'] == (0, -1, 1, 's')
    for idx in (0, 3, 7):  # lines "D1 1 l", "D1 2 r", "D1 4 r"
        s = ds[idx]
        meta = s['data_samples'].metainfo
        color = s['inputs']['color']
        assert [tuple(c.shape) for c in color] == [(4, 3, 16 // 2 ** k, 48 // 2 ** k)
                                                   for k in range(4)]
        assert s['inputs']['color_aug'][0] is color[0]  # no jitter in test mode
        frame, cam = meta['frame_index'], 2 if meta['side'] == 'l' else 3
        expect = [(frame, cam), (frame - 1, cam), (frame + 1, cam), (frame, 5 - cam)]
        for f, (fr, c) in enumerate(expect):
            assert frame_rgb(color[0][f]) == fixture_color(0, fr, c), (idx, f)
            assert frame_rgb(color[3][f]) == fixture_color(0, fr, c)
            assert meta['image_paths'][f] == str(raw / D1 / f'image_0{c}' / 'data' /
                                                 f'{fr:010d}.png')
        assert meta['ori_shape'] == (32, 96) and meta['flip'] is False


def test_intrinsics_per_scale_and_stereo(converted) -> None:
    raw, out = converted
    info = json.loads((out / TRAIN).read_text())
    ds = build(out, frame_ids=(0, 's'), test_mode=True, height=24, width=80)
    for idx in (0, 1):
        s = ds[idx]
        fx, fy, cx, cy = info['frames'][idx]['intrinsics']
        for k in range(4):
            w, h = 80 // 2 ** k, 24 // 2 ** k
            ref = torch.tensor([[fx * w, 0, cx * w, 0], [0, fy * h, cy * h, 0], [0, 0, 1, 0],
                                [0, 0, 0, 1]], dtype=torch.float32)
            torch.testing.assert_close(s['inputs']['K'][k], ref)
            torch.testing.assert_close(s['inputs']['inv_K'][k], torch.linalg.inv(ref))
        side = info['frames'][idx]['side']
        assert float(s['inputs']['stereo_T'][0, 3]) == pytest.approx(-0.1 if side == 'l'
                                                                     else 0.1)
    metric = build(out, frame_ids=(0, 's'), test_mode=True, stereo_baseline='calib')[0]
    assert float(metric['inputs']['stereo_T'][0, 3]) == pytest.approx(
        -info['frames'][0]['stereo_baseline'])
    md2 = build(out, frame_ids=(0,), test_mode=True, intrinsics='monodepth2')[0]
    torch.testing.assert_close(md2['inputs']['K'][0, 0, 0], torch.tensor(0.58 * 48))
    np.testing.assert_array_equal(md2['data_samples'].metainfo['K_norm'], MONODEPTH2_KITTI_K)


def test_augmentation_is_shared_by_all_frames(converted) -> None:
    _, out = converted
    ds = build(out, frame_ids=(0, -1, 1, 's'), flip_prob=1.0, color_aug_prob=1.0, seed=0)
    s = ds[0]  # line "D1 1 l"
    meta = s['data_samples'].metainfo
    params = meta['color_aug_params']
    assert meta['flip'] is True and params is not None
    for k in range(4):
        torch.testing.assert_close(s['inputs']['color_aug'][k],
                                   apply_color_jitter(s['inputs']['color'][k], params))
    info = json.loads((out / TRAIN).read_text())['frames'][0]
    k_norm = flip_intrinsics(np.array([[info['intrinsics'][0], 0, info['intrinsics'][2], 0],
                                       [0, info['intrinsics'][1], info['intrinsics'][3], 0],
                                       [0, 0, 1, 0], [0, 0, 0, 1]]))
    torch.testing.assert_close(s['inputs']['K'][0, 0, 2], torch.tensor(k_norm[0, 2] * 48,
                                                                       dtype=torch.float32))
    assert float(s['inputs']['stereo_T'][0, 3]) == pytest.approx(0.1)  # mirrored left = right
    # same seed, same samples
    again = build(out, frame_ids=(0, -1, 1, 's'), flip_prob=1.0, color_aug_prob=1.0, seed=0)[0]
    torch.testing.assert_close(again['inputs']['color_aug'][0], s['inputs']['color_aug'][0])


def test_ground_truth_and_collate(converted) -> None:
    _, out = converted
    ds = build(out, ann_file=TEST, frame_ids=(0,), test_mode=True, gt_depth_file='auto')
    with np.load(out / 'splits' / 'auto' / 'gt_depths.npz', allow_pickle=True) as z:
        maps = z['data']
    assert len(ds) == len(maps) == 6
    for i in (0, 5):
        gt = ds[i]['data_samples'].gt_depth
        assert gt.shape == (1, 32, 96) and gt.dtype == torch.float32
        np.testing.assert_array_equal(gt[0].numpy(), maps[i])
    loader = DataLoader(ds, batch_size=4, collate_fn=default_collate)
    batch = next(iter(loader))
    assert batch['inputs']['color'][0].shape == (4, 1, 3, 16, 48)
    assert batch['inputs']['K'].shape == (4, 4, 4, 4)
    assert [d.metainfo['frame_index'] for d in batch['data_samples']] == [0, 1, 2, 3]
    p = pseudo_collate([ds[0], ds[1]])
    assert len(p['inputs']['color'][0]) == 2 and len(p['data_samples']) == 2
    # a ground-truth file of another list is refused
    with pytest.raises(KITTIDataError, match='do not match'):
        build(out, ann_file=TRAIN, gt_depth_file='splits/auto/gt_depths.npz')
    with pytest.raises(DataNotFoundError, match='names no ground truth'):
        build(out, ann_file=TRAIN, gt_depth_file='auto')


def test_missing_and_corrupt_images(tmp_path: Path) -> None:
    raw, out = _make(tmp_path)
    gone = raw / D1 / 'image_02' / 'data' / '0000000000.png'  # the -1 neighbour of "D1 1 l"
    gone.unlink()
    ds = build(out, frame_ids=(0, -1, 1), test_mode=True)
    with pytest.raises(FileNotFoundError, match='missing image') as e:
        ds[0]
    assert str(gone) in str(e.value) and "frame -1 of" in str(e.value)
    s = build(out, frame_ids=(0, -1, 1), test_mode=True, missing_frame='zeros')[0]
    assert s['data_samples'].metainfo['missing_frames'] == [-1]
    assert float(s['inputs']['color'][0][1].abs().max()) == 0.0
    assert frame_rgb(s['inputs']['color'][0][0]) == fixture_color(0, 1, 2)
    bad = raw / D1 / 'image_03' / 'data' / '0000000002.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n broken')
    with pytest.raises(KITTIDataError, match='corrupt image') as e:
        ds[3]  # "D1 2 r"
    assert str(bad) in str(e.value)


def test_clear_errors_for_bad_setup(converted, tmp_path: Path) -> None:
    raw, out = converted
    with pytest.raises(DataNotFoundError, match=r'KITTI info file .*nope.json.* does not exist'):
        build(out, ann_file='splits/auto/nope.json')
    with pytest.raises(ValueError, match='must contain the target frame 0'):
        build(out, frame_ids=(-1, 1))
    with pytest.raises(ValueError, match="integers or 's'"):
        build(out, frame_ids=(0, 'x'))
    with pytest.raises(DataNotFoundError, match='raw root'):
        build(out, raw_root=str(tmp_path / 'moved'))
    moved = tmp_path / 'raw_moved'
    shutil.copytree(raw, moved)
    s = build(out, raw_root=str(moved), frame_ids=(0,), test_mode=True)[0]
    assert s['data_samples'].metainfo['image_paths'][0].startswith(str(moved))
    broken = tmp_path / 'info.json'
    broken.write_text('{"frames": 3}')
    with pytest.raises(KITTIDataError, match='is not a KITTI info file'):
        build(out, ann_file=str(broken))
