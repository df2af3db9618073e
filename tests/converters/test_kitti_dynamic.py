"""Moving-object masks of demo drives: converter -> gt_dynamic_masks.npz -> KITTIRawDataset."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from geo3d.converters.kitti import GT_DYNAMIC_FILE, convert
from geo3d.converters.kitti.dynamic import dynamic_mask_relpath
from geo3d.datasets.kitti import KITTIDataError, read_gt_dynamic_masks
from geo3d.datasets.transforms.image import MultiFrameRandomFlip, PackMultiFrameInputs
from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError
from tests.helpers.kitti_fixture import drive_folder, write_kitti_raw

D1, D2 = drive_folder(1), drive_folder(2)  # auto split with 0 val drives: D2 is the test drive
TEST = 'splits/auto/test_info.json'
H, W, FRAMES = 32, 96, 6


def write_masks(raw: Path, folder: str, cam: int, frames: range, seed: int = 0
                ) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    masks = {}
    for f in frames:
        m = rng.random((H, W)) < 0.2
        masks[f] = m
        p = raw / dynamic_mask_relpath(folder, f, cam)
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.where(m, 255, 0).astype(np.uint8)).save(p)
    return masks


def run(raw: Path, out: Path, **kw):
    return convert(raw, out, num_val_drives=0, progress=False, verbose=False, **kw)


def build(out: Path, **kw):
    kw.setdefault('ann_file', TEST)
    return DATASETS.build(dict(type='KITTIRawDataset', data_root=str(out), frame_ids=(0,),
                               test_mode=True, height=16, width=48, gt_depth_file='auto',
                               serialize_data=False, **kw))


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    write_kitti_raw(tmp_path / 'raw', num_frames=FRAMES, height=H, width=W)
    return tmp_path / 'raw'


def test_round_trip_converter_dataset(raw: Path, tmp_path: Path) -> None:
    masks = write_masks(raw, D2, 2, range(FRAMES))
    write_masks(raw, D1, 2, range(FRAMES), seed=1)  # a train drive: not exported
    out = tmp_path / 'out'
    rep = run(raw, out, workers=2)
    assert not rep.failed and rep.mask_maps == FRAMES and rep.masks_exported == 1
    assert 'gt_dynamic_masks.npz 6 masks (exported)' in rep.summary()
    sp = out / 'splits' / 'auto'
    lines, got = read_gt_dynamic_masks(sp / GT_DYNAMIC_FILE)
    assert lines == (sp / 'test_files.txt').read_text().splitlines()
    for f in range(FRAMES):
        assert got[f].dtype == bool and got[f].shape == (H, W)
        np.testing.assert_array_equal(got[f], masks[f])
    # the dataset puts them into the data samples, at the raw size, next to gt_depth
    ds = build(out)
    for i in (0, 4):
        sample = ds[i]['data_samples']
        assert sample.gt_dynamic_mask.shape == (1, H, W) and sample.gt_depth.shape == (1, H, W)
        np.testing.assert_array_equal(sample.gt_dynamic_mask[0].numpy(), masks[i])
    assert not hasattr(build(out, gt_dynamic_mask_file=None)[0]['data_samples'],
                       'gt_dynamic_mask')
    explicit = build(out, gt_dynamic_mask_file=f'splits/auto/{GT_DYNAMIC_FILE}')
    np.testing.assert_array_equal(explicit[1]['data_samples'].gt_dynamic_mask[0], masks[1])
    # a re-run keeps the valid file; a changed mask is exported again
    rep = run(raw, out)
    assert (rep.masks_exported, rep.masks_skipped, rep.mask_maps) == (0, 1, FRAMES)
    masks2 = write_masks(raw, D2, 2, range(2, 3), seed=5)
    rep = run(raw, out)
    assert rep.masks_exported == 1
    np.testing.assert_array_equal(read_gt_dynamic_masks(sp / GT_DYNAMIC_FILE)[1][2], masks2[2])
    # without masks (real KITTI): no file, and a stale one is removed
    for f in range(FRAMES):
        (raw / dynamic_mask_relpath(D2, f, 2)).unlink()
    (raw / dynamic_mask_relpath(D2, 0, 2)).parent.rmdir()
    rep = run(raw, out)
    assert rep.mask_maps == 0 and not (sp / GT_DYNAMIC_FILE).exists()
    assert 'dynamic' not in rep.summary()
    assert not hasattr(build(out)[0]['data_samples'], 'gt_dynamic_mask')
    with pytest.raises(DataNotFoundError, match='dynamic-mask file'):
        build(out, gt_dynamic_mask_file=f'splits/auto/{GT_DYNAMIC_FILE}')


def test_bad_masks_are_skipped_with_a_warning(raw: Path, tmp_path: Path) -> None:
    masks = write_masks(raw, D2, 2, range(FRAMES))
    (raw / dynamic_mask_relpath(D2, 1, 2)).unlink()
    (raw / dynamic_mask_relpath(D2, 2, 2)).write_bytes(b'not a png')
    Image.new('L', (W + 1, H)).save(raw / dynamic_mask_relpath(D2, 3, 2))
    Image.new('RGB', (W, H)).save(raw / dynamic_mask_relpath(D2, 4, 2))
    out = tmp_path / 'out'
    rep = run(raw, out)
    assert not rep.failed and rep.mask_maps == 2  # frames 0 and 5
    text = '\n'.join(rep.warnings)
    for f, why in ((1, 'missing dynamic mask'), (2, 'corrupt dynamic mask'),
                   (3, f'dynamic mask is {W + 1}x{H} but the image is {W}x{H}'),
                   (4, 'dynamic mask must be a single-channel image')):
        assert f'{raw / dynamic_mask_relpath(D2, f, 2)}: {why}' in text, (f, text)
    _, got = read_gt_dynamic_masks(out / 'splits' / 'auto' / GT_DYNAMIC_FILE)
    assert [m is not None for m in got] == [True, False, False, False, False, True]
    np.testing.assert_array_equal(got[5], masks[5])
    ds = build(out)
    assert hasattr(ds[0]['data_samples'], 'gt_dynamic_mask')
    assert not hasattr(ds[1]['data_samples'], 'gt_dynamic_mask')


def test_reader_and_dataset_errors(raw: Path, tmp_path: Path) -> None:
    write_masks(raw, D2, 2, range(FRAMES))
    out = tmp_path / 'out'
    run(raw, out)
    path = out / 'splits' / 'auto' / GT_DYNAMIC_FILE
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'junk')
    with pytest.raises(KITTIDataError, match='bad.npz'):
        read_gt_dynamic_masks(bad)
    with np.load(path) as z:
        parts = {k: z[k] for k in z.files}
    np.savez(bad, **{**parts, 'offsets': parts['offsets'] + 1})
    with pytest.raises(KITTIDataError, match='inconsistent'):
        read_gt_dynamic_masks(bad)
    np.savez(bad, **{k: v for k, v in parts.items() if k != 'shapes'})
    with pytest.raises(KITTIDataError, match='shapes'):
        read_gt_dynamic_masks(bad)
    # masks of other lines are refused
    np.savez(bad, **{**parts, 'lines': parts['lines'][::-1]})
    with pytest.raises(KITTIDataError, match='do not match'):
        build(out, gt_dynamic_mask_file=str(bad))


def test_flip_and_pack_carry_the_mask() -> None:
    mask = np.zeros((4, 6), bool)
    mask[1, 0] = True
    data = {'gt_dynamic_mask': mask, 'gt_depth': np.arange(24, dtype=np.float32).reshape(4, 6)}
    flipped = MultiFrameRandomFlip(prob=1.0, seed=0)(data)
    assert flipped['gt_dynamic_mask'][1, 5] and flipped['gt_dynamic_mask'].sum() == 1
    flipped.update(color=[torch.zeros(1, 3, 4, 6)], K=torch.eye(4)[None], inv_K=torch.eye(4)[None])
    sample = PackMultiFrameInputs()(flipped)['data_samples']
    assert sample.gt_dynamic_mask.dtype == torch.bool and sample.gt_dynamic_mask.shape == (1, 4, 6)
    assert bool(sample.gt_dynamic_mask[0, 1, 5])
