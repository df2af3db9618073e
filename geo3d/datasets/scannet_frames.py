"""RGB-D frames of processed ScanNet scenes (``data_converters/scannet.py --frames-every K``).

Each sample is one scene: ``frames_per_sample`` of its posed RGB-D frames and, on request, its
points, all in the same (raw scan) coordinate frame, for methods that render a scene into its
frames (Gaussian2Scene, Ponder). On-disk layout (see ``geo3d/converters/scannet/frames.py``)::

    DATA_ROOT/splits/<split>.txt
    DATA_ROOT/scenes/<id>/coord.npy, color.npy, normal.npy, axis_align_matrix.npy
    DATA_ROOT/scenes/<id>/frames/color/<fid>.jpg, depth/<fid>.png (uint16 mm), poses.npy (F, 4, 4),
                                 frame_ids.npy (F,), meta.json (sizes, intrinsics)

A sample (``F`` = ``frames_per_sample``, ``H x W`` = ``image_size`` or the stored colour size)::

    images            (F, 3, H, W) float32 RGB in [0, 1]
    depth             (F, 1, H, W) float32 metres, 0 = no measurement
    camera_to_world   (F, 4, 4) float32, OpenCV camera (x right, y down, z forward)
    intrinsics        (F, 3, 3) float32 pixel intrinsics of ``images`` at H x W
    depth_intrinsics  (F, 3, 3) float32 of ``depth`` at H x W (equal to ``intrinsics`` when
                      the colour and depth cameras are one, as in the demo rooms)
    frame_ids         (F,) int64 source frame numbers
    name              scene id
    points            only with ``load_points``: dict ``coord`` (N, 3) float32, ``color``
                      (N, 3) float32 0..255, ``normal`` (N, 3), ``name``, after ``point_pipeline``

:func:`scannet_frames_collate` stacks samples into ``{'inputs': {...}, 'data_samples': [...]}``
(``images`` (B, F, 3, H, W) etc., ``points`` a :class:`~geo3d.structures.PointBatch`).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from torch.utils.data import Dataset

from geo3d.converters.scannet.frames import FRAMES_DIR, resize_intrinsics
from geo3d.registry import DATASETS, FUNCTIONS
from geo3d.structures import PointBatch
from geo3d.utils.errors import DataNotFoundError

from .scannet import ScanNetDataError
from .transforms.point import build_pipeline

__all__ = ['ScanNetFramesDataset', 'scannet_frames_collate', 'FRAME_SETS']

FRAMES_HINT = ('run `python data_converters/scannet.py --root RAW --out DATA_ROOT --frames-every '
               'K` on a ScanNet download with .sens files (or exported frames), or '
               '`python tools/make_demo_data.py --out RAW --frames 30` for demo rooms with frames')
FRAME_SETS = ('train', 'holdout', 'all')
FRAME_KEYS = ('images', 'depth', 'camera_to_world', 'intrinsics', 'depth_intrinsics',
              'frame_ids')


@DATASETS.register_module()
class ScanNetFramesDataset(Dataset):
    """Posed RGB-D frames (and optionally points) of ScanNet scenes, one scene per sample.

    Args:
        data_root: processed root with ``splits/`` and ``scenes/<id>/frames/``.
        split: split name or list of names.
        frames_per_sample: frames returned per scene (``F``).
        image_size: ``(H, W)`` of the returned images and depth; None keeps the stored colour
            size. Intrinsics are rescaled to it (pixel centres at integers).
        frame_set: which of a scene's frames to draw from: ``'train'`` (all but the held-out
            ones), ``'holdout'`` (every ``holdout_every``-th frame: held-out views), ``'all'``.
        holdout_every: hold out every n-th stored frame (positions n-1, 2n-1, ...); 0 = none.
        random_frames: draw frames at random (sorted) for each sample; False picks evenly
            spaced fixed frames (validation). Default: ``not test_mode``.
        test_mode: kept for mmengine; decides the default of ``random_frames``.
        load_points: also return the scene's points (``points`` dict).
        point_pipeline: point transforms for ``points`` (geo3d TRANSFORMS configs). Only
            transforms that keep coordinates (sampling, voxelization, colour) preserve the
            alignment with the frames.
        axis_align: move points AND camera poses into the axis-aligned frame.
        loop: repeat the scene list per epoch.
        max_scenes: keep only the first scenes.
        seed: seed of a private RNG for the frame choice (default: numpy's global RNG, which
            mmengine seeds per worker).
    """

    def __init__(self, data_root: str, split: str | Sequence[str] = 'train',
                 frames_per_sample: int = 4, image_size: Sequence[int] | None = None,
                 frame_set: str = 'all', holdout_every: int = 0,
                 random_frames: bool | None = None, test_mode: bool = False,
                 load_points: bool = False,
                 point_pipeline: Sequence[dict | Callable] | None = None,
                 axis_align: bool = False, loop: int = 1, max_scenes: int | None = None,
                 seed: int | None = None) -> None:
        if frames_per_sample < 1:
            raise ValueError(f'frames_per_sample must be >= 1, got {frames_per_sample}')
        if frame_set not in FRAME_SETS:
            raise ValueError(f'frame_set must be one of {FRAME_SETS}, got {frame_set!r}')
        if holdout_every < 0 or holdout_every == 1:
            raise ValueError(f'holdout_every must be 0 (none) or >= 2, got {holdout_every}')
        if frame_set == 'holdout' and holdout_every == 0:
            raise ValueError("frame_set='holdout' needs holdout_every >= 2")
        if image_size is not None:
            image_size = tuple(int(v) for v in image_size)
            if len(image_size) != 2 or min(image_size) < 1:
                raise ValueError(f'image_size must be (H, W) with positive sizes, got '
                                 f'{image_size}')
        if loop < 1:
            raise ValueError(f'loop must be >= 1, got {loop}')
        self.data_root = str(data_root)
        self.splits = [split] if isinstance(split, str) else list(split)
        self.frames_per_sample = int(frames_per_sample)
        self.image_size: tuple[int, int] | None = image_size  # (H, W)
        self.frame_set = frame_set
        self.holdout_every = int(holdout_every)
        self.test_mode = test_mode
        self.random_frames = (not test_mode) if random_frames is None else bool(random_frames)
        self.load_points = load_points
        self.axis_align = axis_align
        self.loop = loop
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.point_pipeline = build_pipeline(point_pipeline)
        self.scenes = self._read_splits()
        if max_scenes is not None:
            self.scenes = self.scenes[:max_scenes]
        self._meta: dict[str, dict[str, Any]] = {s: self._read_meta(s) for s in self.scenes}

    # ------------------------------------------------------------------ index
    @property
    def metainfo(self) -> dict[str, Any]:
        return {'frames_per_sample': self.frames_per_sample, 'frame_set': self.frame_set,
                'holdout_every': self.holdout_every}

    def _read_splits(self) -> list[str]:
        split_dir = os.path.join(self.data_root, 'splits')
        if not os.path.isdir(split_dir):
            raise DataNotFoundError(f'no processed ScanNet at {self.data_root!r} (missing '
                                    f'{split_dir!r}): {FRAMES_HINT}')
        scenes: list[str] = []
        for split in self.splits:
            path = os.path.join(split_dir, f'{split}.txt')
            if not os.path.isfile(path):
                raise DataNotFoundError(f'split file {path!r} does not exist: {FRAMES_HINT}')
            with open(path) as f:
                ids = [line.strip() for line in f if line.strip()]
            if not ids:
                raise ScanNetDataError(f'split file {path!r} lists no scenes')
            scenes += ids
        return scenes

    def scene_dir(self, scene: str) -> str:
        return os.path.join(self.data_root, 'scenes', scene)

    def frames_dir(self, scene: str) -> str:
        return os.path.join(self.scene_dir(scene), FRAMES_DIR)

    def _read_meta(self, scene: str) -> dict[str, Any]:
        path = os.path.join(self.frames_dir(scene), 'meta.json')
        if not os.path.isfile(path):
            raise DataNotFoundError(f'scene {scene!r} has no RGB-D frames ({path!r} is '
                                    f'missing): {FRAMES_HINT}')
        try:
            with open(path) as f:
                meta = json.load(f)
            n = int(meta['num_frames'])
            for key in ('color_size', 'depth_size', 'intrinsic_color', 'intrinsic_depth'):
                meta[key] = np.asarray(meta[key], np.float64)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ScanNetDataError(f'cannot read frames meta {path!r}: {type(e).__name__}: '
                                   f'{e}') from e
        if meta['intrinsic_color'].shape != (3, 3) or meta['intrinsic_depth'].shape != (3, 3):
            raise ScanNetDataError(f'{path!r}: intrinsics must be 3x3')
        positions = self._frame_positions(n)
        if len(positions) == 0:
            raise ScanNetDataError(f'{path!r}: scene {scene!r} has {n} frames, none in frame_set '
                                   f'{self.frame_set!r} (holdout_every={self.holdout_every})')
        meta['positions'] = positions
        return meta

    def _frame_positions(self, n: int) -> np.ndarray:
        """Positions (rows of poses.npy) of the frames in ``frame_set``."""
        pos = np.arange(n)
        if self.holdout_every == 0 or self.frame_set == 'all':
            return pos
        held = (pos + 1) % self.holdout_every == 0
        return pos[held] if self.frame_set == 'holdout' else pos[~held]

    def __len__(self) -> int:
        return len(self.scenes) * self.loop

    # ------------------------------------------------------------------ frame choice
    def choose_frames(self, scene: str) -> np.ndarray:
        """Positions of the frames of one sample: random (sorted) or evenly spaced (fixed)."""
        avail = self._meta[scene]['positions']
        k = self.frames_per_sample
        if not self.random_frames:
            return avail[np.round(np.linspace(0, len(avail) - 1, k)).astype(np.int64)]
        rng = self._rng if self._rng is not None else np.random.default_rng(
            np.random.randint(2 ** 31))
        return np.sort(rng.choice(avail, size=k, replace=len(avail) < k))

    # ------------------------------------------------------------------ loading
    def _load_array(self, path: str, shape: tuple[int | None, ...]) -> np.ndarray:
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
        return arr

    def _read_image(self, path: str, depth: bool, size: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) uint8 RGB or (H, W) uint16, checked against the size (W, H) in meta."""
        if not os.path.isfile(path):
            raise ScanNetDataError(f'missing frame image {path!r}')
        img = cv2.imread(path, cv2.IMREAD_UNCHANGED if depth else cv2.IMREAD_COLOR)
        if img is None:
            raise ScanNetDataError(f'cannot decode frame image {path!r}')
        if depth and (img.dtype != np.uint16 or img.ndim != 2):
            raise ScanNetDataError(f'{path!r} must be a one-channel uint16 PNG (millimetres), '
                                   f'got {img.dtype} {img.shape}')
        if (img.shape[1], img.shape[0]) != size:
            raise ScanNetDataError(f'{path!r} is {img.shape[1]}x{img.shape[0]}, meta.json says '
                                   f'{size[0]}x{size[1]}')
        return img if depth else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def get_frames(self, scene: str, positions: Sequence[int]) -> dict[str, Any]:
        """The frame tensors (see the module docstring) at the given positions of a scene."""
        meta = self._meta[scene]
        fdir = self.frames_dir(scene)
        n = int(meta['num_frames'])
        poses = self._load_array(os.path.join(fdir, 'poses.npy'), (n, 4, 4))
        ids = self._load_array(os.path.join(fdir, 'frame_ids.npy'), (n,))
        csize = tuple(int(v) for v in meta['color_size'])
        dsize = tuple(int(v) for v in meta['depth_size'])
        out_wh = csize if self.image_size is None else (self.image_size[1], self.image_size[0])
        K_c = resize_intrinsics(meta['intrinsic_color'], csize, out_wh)
        K_d = resize_intrinsics(meta['intrinsic_depth'], dsize, out_wh)
        images, depths = [], []
        for p in positions:
            fid = int(ids[p])
            rgb = self._read_image(os.path.join(fdir, 'color', f'{fid:06d}.jpg'), False, csize)
            d = self._read_image(os.path.join(fdir, 'depth', f'{fid:06d}.png'), True, dsize)
            if csize != out_wh:
                shrink = out_wh[0] < csize[0] and out_wh[1] < csize[1]
                rgb = cv2.resize(rgb, out_wh, interpolation=cv2.INTER_AREA if shrink
                                 else cv2.INTER_LINEAR)
            if dsize != out_wh:
                d = cv2.resize(d, out_wh, interpolation=cv2.INTER_NEAREST_EXACT)
            images.append(rgb)
            depths.append(d)
        c2w = poses[np.asarray(positions, np.int64)].astype(np.float64)
        if not np.isfinite(c2w).all():
            raise ScanNetDataError(f'{os.path.join(fdir, "poses.npy")!r} has non-finite poses')
        if self.axis_align:
            A = self._load_array(os.path.join(self.scene_dir(scene), 'axis_align_matrix.npy'),
                                 (4, 4)).astype(np.float64)
            c2w = A @ c2w
        f = len(positions)
        img = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
        dep = torch.from_numpy(np.stack(depths).astype(np.float32) / 1000.0).unsqueeze(1)
        return {
            'images': img.contiguous(), 'depth': dep,
            'camera_to_world': torch.from_numpy(c2w.astype(np.float32)),
            'intrinsics': torch.from_numpy(np.repeat(K_c[None], f, 0).astype(np.float32)),
            'depth_intrinsics': torch.from_numpy(np.repeat(K_d[None], f, 0).astype(np.float32)),
            'frame_ids': torch.from_numpy(ids[np.asarray(positions, np.int64)].astype(np.int64)),
        }

    def get_points(self, scene: str) -> dict[str, Any]:
        """``coord`` (N, 3) float32, ``color`` (N, 3) float32 0..255, ``normal`` (N, 3) (raw
        frame unless ``axis_align``), ``name``."""
        d = self.scene_dir(scene)
        coord = self._load_array(os.path.join(d, 'coord.npy'), (None, 3)).astype(np.float32)
        n = len(coord)
        color = self._load_array(os.path.join(d, 'color.npy'), (n, 3)).astype(np.float32)
        normal = self._load_array(os.path.join(d, 'normal.npy'), (n, 3)).astype(np.float32)
        if self.axis_align:
            A = self._load_array(os.path.join(d, 'axis_align_matrix.npy'), (4, 4)).astype(
                np.float64)
            coord = (coord @ A[:3, :3].T + A[:3, 3]).astype(np.float32)
            normal = (normal @ A[:3, :3].T).astype(np.float32)
        return {'coord': coord, 'color': color, 'normal': normal, 'name': scene}

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not -len(self) <= idx < len(self):
            raise IndexError(f'index {idx} out of range for {len(self)} samples')
        scene = self.scenes[idx % len(self.scenes)]
        sample = self.get_frames(scene, self.choose_frames(scene))
        sample['name'] = scene
        if self.load_points:
            sample['points'] = self.point_pipeline(self.get_points(scene))
        return sample

    def __repr__(self) -> str:
        return (f'ScanNetFramesDataset(data_root={self.data_root!r}, splits={self.splits}, '
                f'scenes={len(self.scenes)}, frames_per_sample={self.frames_per_sample}, '
                f'image_size={self.image_size}, frame_set={self.frame_set!r})')


@FUNCTIONS.register_module()
def scannet_frames_collate(samples: Sequence[dict[str, Any]],
                           feat_keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Batch :class:`ScanNetFramesDataset` samples.

    Returns:
        ``{'inputs': {'images': (B, F, 3, H, W), 'depth': (B, F, 1, H, W), 'camera_to_world':
        (B, F, 4, 4), 'intrinsics': (B, F, 3, 3), 'depth_intrinsics': (B, F, 3, 3),
        'frame_ids': (B, F), ['points': PointBatch]}, 'data_samples': [{'name': id}, ...]}``.
        Points are batched by :meth:`PointBatch.collate` with ``feat_keys`` (default: the
        samples' ``feat`` if the point pipeline made one, else ``('color',)``).
    """
    if len(samples) == 0:
        raise ValueError('scannet_frames_collate got an empty list of samples')
    inputs: dict[str, Any] = {}
    for key in FRAME_KEYS:
        shapes = {tuple(s[key].shape) for s in samples}
        if len(shapes) != 1:
            raise ValueError(f'cannot stack {key!r} of different shapes {sorted(shapes)}; give '
                             'the dataset one image_size and frames_per_sample')
        inputs[key] = torch.stack([s[key] for s in samples])
    if 'points' in samples[0]:
        pts = [s['points'] for s in samples]
        keys = feat_keys if feat_keys is not None else (None if 'feat' in pts[0] else ('color',))
        inputs['points'] = PointBatch.collate(pts, keys)
    return {'inputs': inputs, 'data_samples': [{'name': s['name']} for s in samples]}


# the Runner looks collate functions up in mmengine's root registry (see datasets/collate.py)
if 'scannet_frames_collate' not in MMENGINE_FUNCTIONS.module_dict:
    MMENGINE_FUNCTIONS.register_module(name='scannet_frames_collate',
                                       module=scannet_frames_collate)
