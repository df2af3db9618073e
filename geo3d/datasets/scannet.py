"""ScanNet v2 scenes in geo3d's processed format (written by ``data_converters/scannet.py``).

Layout::

    DATA_ROOT/splits/{train,val,test}.txt      one scene id per line
    DATA_ROOT/scenes/<scene_id>/coord.npy      (N, 3) float32
                               color.npy       (N, 3) uint8
                               normal.npy      (N, 3) float32
                               segment20.npy   (N,) int16, 0..19, -1 ignore
                               segment200.npy  (N,) int16, 0..199, -1 ignore
                               instance.npy    (N,) int16, -1 none
                               axis_align_matrix.npy (4, 4) float32
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
from torch.utils.data import Dataset

from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError

from .scannet_constants import IGNORE_INDEX, LABEL_SETS
from .transforms.point import build_pipeline

CONVERT_HINT = ('run `python data_converters/scannet.py --root RAW --out DATA_ROOT` on the raw '
                'ScanNet v2 download, or `make demo` for a small synthetic dataset')
# Splits whose scenes have no labels: missing label files are filled with the ignore index.
UNLABELLED_SPLITS = ('test',)


class ScanNetDataError(RuntimeError):
    """A processed ScanNet file or directory is missing or malformed."""


@DATASETS.register_module()
class ScanNetDataset(Dataset):
    """Scenes of one or more ScanNet splits; ``__getitem__`` returns ``pipeline(get_data(i))``.

    Args:
        data_root: processed dataset root (with ``splits/`` and ``scenes/``).
        split: split name or list of names (``'train'``, ``'val'``, ``'test'``).
        label_set: ``'scannet20'`` (``segment20.npy``) or ``'scannet200'`` (``segment200.npy``).
        pipeline: transform configs (built from geo3d's ``TRANSFORMS``) or callables.
        test_mode: kept for mmengine; the pipeline decides what is returned.
        loop: the scene list is repeated ``loop`` times per epoch.
        axis_align: apply each scene's ``axis_align_matrix`` to coordinates and normals.
        max_scenes: keep only the first ``max_scenes`` scenes (after concatenating splits).
    """

    def __init__(self, data_root: str, split: str | Sequence[str] = 'train',
                 label_set: str = 'scannet20',
                 pipeline: Sequence[dict | Callable] | None = None, test_mode: bool = False,
                 loop: int = 1, axis_align: bool = False, max_scenes: int | None = None) -> None:
        if label_set not in LABEL_SETS:
            raise ValueError(f'label_set must be one of {sorted(LABEL_SETS)}, got {label_set!r}')
        if loop < 1:
            raise ValueError(f'loop must be >= 1, got {loop}')
        self.data_root = str(data_root)
        self.splits = [split] if isinstance(split, str) else list(split)
        self.label_set = label_set
        _, class_names, self.segment_field = LABEL_SETS[label_set]
        self.test_mode = test_mode
        self.loop = loop
        self.axis_align = axis_align
        self._metainfo = {'classes': tuple(class_names), 'ignore_index': IGNORE_INDEX,
                          'label_set': label_set, 'num_classes': len(class_names)}
        self.scenes: list[tuple[str, str]] = self._read_splits()  # (scene id, split)
        if max_scenes is not None:
            self.scenes = self.scenes[:max_scenes]
        self.pipeline = build_pipeline(pipeline)

    # ------------------------------------------------------------------ index
    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(self._metainfo)

    def _read_splits(self) -> list[tuple[str, str]]:
        split_dir = os.path.join(self.data_root, 'splits')
        if not os.path.isdir(split_dir):
            raise DataNotFoundError(f'no processed ScanNet at {self.data_root!r} (missing '
                                    f'{split_dir!r}): {CONVERT_HINT}')
        scenes: list[tuple[str, str]] = []
        for split in self.splits:
            path = os.path.join(split_dir, f'{split}.txt')
            if not os.path.isfile(path):
                have = sorted(f[:-4] for f in os.listdir(split_dir) if f.endswith('.txt'))
                raise DataNotFoundError(f'split file {path!r} does not exist (splits there: '
                                        f'{have}): {CONVERT_HINT}')
            with open(path) as f:
                ids = [line.strip() for line in f if line.strip()]
            if not ids:
                raise ScanNetDataError(f'split file {path!r} lists no scenes')
            for scene in ids:
                if not os.path.isdir(self.scene_dir(scene)):
                    raise FileNotFoundError(f'scene {scene!r} listed in {path!r} has no directory '
                                            f'{self.scene_dir(scene)!r}')
            scenes += [(s, split) for s in ids]
        return scenes

    def scene_dir(self, scene: str) -> str:
        return os.path.join(self.data_root, 'scenes', scene)

    def __len__(self) -> int:
        return len(self.scenes) * self.loop

    # ------------------------------------------------------------------ loading
    def _load(self, scene: str, field: str, shape: tuple[int | None, ...],
              kinds: str) -> np.ndarray:
        """``field``.npy, checked for its shape (None = any) and dtype kind (``'f'``, ``'iu'``)."""
        path = os.path.join(self.scene_dir(scene), f'{field}.npy')
        if not os.path.isfile(path):
            raise ScanNetDataError(f'missing file {path!r}')
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise ScanNetDataError(f'cannot read {path!r}: {e}') from e
        if arr.ndim != len(shape) or any(s is not None and a != s
                                         for a, s in zip(arr.shape, shape)):
            want = tuple('N' if s is None else s for s in shape)
            raise ScanNetDataError(f'{path!r} has shape {arr.shape}, expected {want}')
        if arr.dtype.kind not in kinds:
            raise ScanNetDataError(f'{path!r} has dtype {arr.dtype}, expected kind {kinds!r}')
        return arr

    def get_data(self, idx: int) -> dict[str, Any]:
        """The raw sample of scene ``idx % num_scenes``.

        Returns ``coord`` (N, 3) float32, ``color`` (N, 3) float32 in 0..255, ``normal`` (N, 3)
        float32, ``segment`` (N,) int64 (class index of ``label_set`` or -1), ``instance``
        (N,) int64 (-1 none), ``name`` (scene id).
        """
        scene, split = self.scenes[idx % len(self.scenes)]
        coord = self._load(scene, 'coord', (None, 3), 'f').astype(np.float32)
        n = coord.shape[0]
        color = self._load(scene, 'color', (n, 3), 'iuf').astype(np.float32)
        normal = self._load(scene, 'normal', (n, 3), 'f').astype(np.float32)
        labels = {}
        for key, field in (('segment', self.segment_field), ('instance', 'instance')):
            path = os.path.join(self.scene_dir(scene), f'{field}.npy')
            if split in UNLABELLED_SPLITS and not os.path.exists(path):
                labels[key] = np.full(n, IGNORE_INDEX, dtype=np.int64)
            else:
                labels[key] = self._load(scene, field, (n,), 'iu').astype(np.int64)
        k = self._metainfo['num_classes']
        seg = labels['segment']
        if seg.size and (seg.min() < IGNORE_INDEX or seg.max() >= k):
            raise ScanNetDataError(
                f'{os.path.join(self.scene_dir(scene), self.segment_field + ".npy")!r} has labels '
                f'in [{seg.min()}, {seg.max()}], expected {IGNORE_INDEX}..{k - 1}')
        if self.axis_align:
            mat = self._load(scene, 'axis_align_matrix', (4, 4), 'f').astype(np.float64)
            coord = (coord @ mat[:3, :3].T + mat[:3, 3]).astype(np.float32)
            normal = (normal @ mat[:3, :3].T).astype(np.float32)
        return {'coord': coord, 'color': color, 'normal': normal, 'segment': seg,
                'instance': labels['instance'], 'name': scene}

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} samples')
        return self.pipeline(self.get_data(idx % len(self.scenes)))

    def __repr__(self) -> str:
        return (f'ScanNetDataset(data_root={self.data_root!r}, splits={self.splits}, '
                f'label_set={self.label_set!r}, scenes={len(self.scenes)}, loop={self.loop})')
