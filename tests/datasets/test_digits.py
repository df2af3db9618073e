"""DigitsDataset: scikit-learn's digits as images, fixed stratified splits, indices and labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate
from PIL import Image
from sklearn.datasets import load_digits

from geo3d.datasets.digits import DigitsDataset, digits_split_indices
from geo3d.registry import DATASETS


@pytest.fixture(scope='module')
def sk():
    d = load_digits()
    return d.images, d.target


def test_splits_are_disjoint_stratified_and_cover_everything(sk) -> None:
    _, target = sk
    parts = {s: digits_split_indices(target, s) for s in ('train', 'val', 'test')}
    assert [len(parts[s]) for s in ('train', 'val', 'test')] == [1197, 300, 300]
    for a, b in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        assert not set(parts[a]) & set(parts[b])
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(target)))
    for s in ('val', 'test'):
        assert np.bincount(target[parts[s]], minlength=10).tolist() == [30] * 10
    np.testing.assert_array_equal(digits_split_indices(target, 'trainval'),
                                  np.sort(np.concatenate([parts['train'], parts['val']])))
    # a pure function of the seed
    np.testing.assert_array_equal(digits_split_indices(target, 'val', seed=0), parts['val'])
    assert not np.array_equal(digits_split_indices(target, 'val', seed=1), parts['val'])


def test_native_size_pixels_and_labels_match_sklearn(sk) -> None:
    images, target = sk
    ds = DigitsDataset('val', image_size=8)
    assert len(ds) == 300 and ds.metainfo['num_classes'] == 10
    for i in (0, 7, 299):
        s = ds[i]
        row = s['digits_idx']
        assert s['sample_idx'] == i and s['gt_label'] == target[row]
        expected = np.round(images[row] * 255.0 / 16.0).astype(np.uint8)
        assert s['img'].dtype == torch.uint8 and s['img'].shape == (3, 8, 8)
        for c in range(3):
            np.testing.assert_array_equal(s['img'][c].numpy(), expected)


def test_upsampling_matches_pil_bilinear(sk) -> None:
    """Upsampling (no antialiasing effect) is bilinear with half-pixel centres, as PIL's."""
    images, _ = sk
    ds = DigitsDataset('test', image_size=32, max_samples=5)
    for i in range(5):
        s = ds[i]
        grey = (images[s['digits_idx']] * 255.0 / 16.0).astype(np.float32)
        ref = np.asarray(Image.fromarray(grey, mode='F').resize((32, 32), Image.BILINEAR))
        got = s['img'][0].numpy().astype(np.float32)
        assert np.abs(got - np.clip(ref, 0, 255)).max() <= 1.0


def test_pipeline_registry_and_collate() -> None:
    ds = DATASETS.build(dict(
        type='DigitsDataset', split='train', image_size=16, max_samples=4,
        pipeline=[dict(type='MultiViewImages', num_views=2, seed=0,
                       pipelines=[[dict(type='RandomResizedCrop', size=12, scale=(0.5, 1.0))]]),
                  dict(type='PackImageViews')]))
    batch = default_collate([ds[i] for i in range(4)])
    assert len(batch['inputs']) == 2 and batch['inputs'][0].shape == (4, 3, 12, 12)
    assert batch['data_samples']['sample_idx'].tolist() == [0, 1, 2, 3]
    assert batch['data_samples']['gt_label'].tolist() == ds.labels[:4].tolist()


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match='split must be one of'):
        DigitsDataset('training')
    with pytest.raises(ValueError, match='image_size must be >= 8'):
        DigitsDataset(image_size=4)
    with pytest.raises(ValueError, match='leaves no training image'):
        DigitsDataset(val_per_class=100, test_per_class=80)
    with pytest.raises(ValueError, match='max_samples'):
        DigitsDataset(max_samples=0)
    with pytest.raises(IndexError, match='out of range'):
        DigitsDataset('val', image_size=8)[300]
