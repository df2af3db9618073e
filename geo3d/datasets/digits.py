"""The handwritten digits that scikit-learn bundles, as a small image dataset (no download).

``sklearn.datasets.load_digits()`` holds 1797 grey 8x8 images (values 0..16, the UCI "Optical
Recognition of Handwritten Digits" test set) of the classes 0..9. Here they become 3-channel
uint8 images upsampled to ``image_size`` (bilinear, antialiased), split per class with a fixed
seed into train / val / test (default 30 val and 30 test images per class: 1197 / 300 / 300).
This is geo3d's embedded 2D demo: SSL pre-training on ``train``, linear / kNN probes on ``val``
or ``test`` (``configs/*_digits.py``).

``__getitem__`` returns ``pipeline(results)`` with ``results``::

    img         (3, H, W) uint8 tensor, H = W = image_size (the grey digit in every channel)
    gt_label    int in 0..9
    sample_idx  int, the position in this split (0..len - 1): per-sample state such as
                iSogCLR's temperatures is indexed by it
    digits_idx  int, the row of the image in ``load_digits()`` (0..1796), unique over splits
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from geo3d.registry import DATASETS

from .transforms.point import build_pipeline

__all__ = ['DigitsDataset', 'load_digit_images', 'digits_split_indices']

SPLITS = ('train', 'val', 'test', 'trainval', 'all')
NUM_CLASSES = 10


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('DigitsDataset needs scikit-learn (its digits are bundled, no '
                          'download): pip install scikit-learn') from err
    d = load_digits()
    return d.images, d.target.astype(np.int64)


def load_digit_images(image_size: int = 32) -> tuple[Tensor, Tensor]:
    """All 1797 digits as images.

    Args:
        image_size: output side length (>= 8; 8 keeps the original pixels).

    Returns:
        images (1797, 3, S, S) uint8 and labels (1797,) int64.
    """
    if int(image_size) < 8:
        raise ValueError(f'DigitsDataset: image_size must be >= 8 (the digits are 8x8), got '
                         f'{image_size}')
    images, labels = _load_digits()
    x = torch.from_numpy(images).float()[:, None] * (255.0 / 16.0)  # (N, 1, 8, 8) in [0, 255]
    if image_size != 8:
        x = F.interpolate(x, size=(image_size, image_size), mode='bilinear',
                          align_corners=False, antialias=True)
    x = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    return x, torch.from_numpy(labels)


def digits_split_indices(labels: np.ndarray | Tensor, split: str, val_per_class: int = 30,
                         test_per_class: int = 30, seed: int = 0) -> np.ndarray:
    """Rows of one split: per class, a seeded permutation gives val, then test, then train.

    Args:
        labels: (N,) class labels of all images.
        split: one of ``train``, ``val``, ``test``, ``trainval``, ``all``.
        val_per_class, test_per_class: held-out images per class.
        seed: seed of the permutations (the split is a pure function of it).

    Returns:
        (M,) int64 sorted row indices.
    """
    if split not in SPLITS:
        raise ValueError(f'DigitsDataset: split must be one of {SPLITS}, got {split!r}')
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {'train': [], 'val': [], 'test': []}
    for c in range(int(labels.max()) + 1):
        rows = np.flatnonzero(labels == c)
        if val_per_class + test_per_class >= rows.size:
            raise ValueError(f'DigitsDataset: val_per_class + test_per_class = '
                             f'{val_per_class + test_per_class} leaves no training image of '
                             f'class {c} ({rows.size} images)')
        rows = rows[rng.permutation(rows.size)]
        parts['val'].append(rows[:val_per_class])
        parts['test'].append(rows[val_per_class:val_per_class + test_per_class])
        parts['train'].append(rows[val_per_class + test_per_class:])
    names = {'trainval': ('train', 'val'), 'all': ('train', 'val', 'test')}.get(split, (split,))
    return np.sort(np.concatenate([np.concatenate(parts[n]) for n in names]))


@DATASETS.register_module()
class DigitsDataset(Dataset):
    """scikit-learn's handwritten digits as upsampled 3-channel images (see the module doc).

    Args:
        split: ``train`` / ``val`` / ``test`` (disjoint), ``trainval`` or ``all``.
        image_size: side length of the images (default 32).
        pipeline: transform configs (geo3d's ``TRANSFORMS``) or callables applied to the
            results dict; empty = the dict itself.
        val_per_class, test_per_class: held-out images per class (default 30 each).
        seed: seed of the split.
        test_mode: kept for mmengine; the pipeline decides what is returned.
        max_samples: keep the first ``max_samples`` images of the split (tests, quick runs).
    """

    METAINFO: dict = {'dataset': 'sklearn_digits',
                      'classes': tuple(str(c) for c in range(NUM_CLASSES))}

    def __init__(self, split: str = 'train', image_size: int = 32,
                 pipeline: Sequence[dict | Callable] | None = None, val_per_class: int = 30,
                 test_per_class: int = 30, seed: int = 0, test_mode: bool = False,
                 max_samples: int | None = None) -> None:
        if min(val_per_class, test_per_class) < 0:
            raise ValueError('DigitsDataset: val_per_class and test_per_class must be >= 0, '
                             f'got {val_per_class}, {test_per_class}')
        images, labels = load_digit_images(image_size)
        rows = digits_split_indices(labels.numpy(), split, val_per_class, test_per_class, seed)
        if max_samples is not None:
            if int(max_samples) < 1:
                raise ValueError(f'DigitsDataset: max_samples must be >= 1, got {max_samples}')
            rows = rows[:int(max_samples)]
        index = torch.from_numpy(rows)
        self.split, self.image_size, self.test_mode = split, int(image_size), test_mode
        self.images = images[index]
        self.labels = labels[index]
        self.digits_idx = index
        self.pipeline = build_pipeline(pipeline)

    @property
    def metainfo(self) -> dict:
        return dict(self.METAINFO, num_classes=NUM_CLASSES, split=self.split)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def get_data(self, idx: int) -> dict[str, Any]:
        """The results dict of image ``idx`` before the pipeline (a copy of the image)."""
        if not -len(self) <= idx < len(self):
            raise IndexError(f'DigitsDataset ({self.split}): index {idx} out of range for '
                             f'{len(self)} images')
        idx = idx % len(self)
        return {'img': self.images[idx].clone(), 'gt_label': int(self.labels[idx]),
                'sample_idx': idx, 'digits_idx': int(self.digits_idx[idx])}

    def __getitem__(self, idx: int) -> Any:
        return self.pipeline(self.get_data(idx))

    def __repr__(self) -> str:
        return (f'DigitsDataset(split={self.split!r}, images={len(self)}, '
                f'image_size={self.image_size})')
