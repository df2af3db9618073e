"""nuScenes in geo3d's processed format (written by ``data_converters/nuscenes.py``).

* :class:`NuScenesDepthDataset`: CAM_FRONT frames and their temporal neighbours for
  self-supervised depth, with sparse LiDAR ground truth for key frames. Same output layout as
  :class:`~geo3d.datasets.KITTIRawDataset` (it is a subclass: pyramid, colour jitter and flip
  drawn once per sample, per-scale K); the frames, intrinsics and ground truth come from the
  converter's info files. md4all (Gasperini et al., ICCV 2023) and Robust-Depth (Saunders et
  al., ICCV 2023) use the same nuScenes set-up: the sample_data prev/next chain for context,
  real intrinsics, official train/val scenes, projected LIDAR_TOP for evaluation.
* :class:`NuScenesLidarDataset`: LIDAR_TOP key frames (optionally multi-sweep) as point
  clouds with nuScenes-lidarseg labels; the ScanNet point dataset pointed at the nuScenes
  folders, so the same point transforms, ``point_collate`` and ``PointBatch`` apply (MSM
  pretrains on it).
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Literal, Sequence

import numpy as np

from geo3d.converters.nuscenes.sparse_depth import SparseDepthError, load_sparse_depth
from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError

from .kitti import STEREO_FRAME_ID, KITTIRawDataset
from .scannet import ScanNetDataset
from .scannet_constants import IGNORE_INDEX
from .transforms.image import PackMultiFrameInputs
from .transforms.point import build_pipeline

__all__ = ['NuScenesDepthDataset', 'NuScenesLidarDataset', 'NuScenesDataError']

CONVERT_HINT = ('run `python data_converters/nuscenes.py --root NUSCENES --version v1.0-mini '
                '--out DATA_ROOT` (docs/datasets/nuscenes.md)')
CAMERA_SIDE = 'CAM_FRONT'
#: metainfo of every depth sample: KITTIRawDataset's plus the nuScenes identifiers
NUSCENES_META_KEYS: tuple[str, ...] = PackMultiFrameInputs().meta_keys + (
    'scene', 'token', 'sample_token', 'timestamp', 'tags', 'rel_poses')


class NuScenesDataError(RuntimeError):
    """A processed nuScenes file (info, image, ground truth, point cloud) is malformed."""


@DATASETS.register_module()
class NuScenesDepthDataset(KITTIRawDataset):
    """Multi-frame nuScenes CAM_FRONT samples for self-supervised depth.

    Data: ``data_root`` is the converter's ``OUT/depth``; ``ann_file`` one of its info files
    (``splits/train_info.json``, ``splits/val_info.json``, ``splits/night_val_info.json``,
    ...). Images are read from the nuScenes root recorded in the info file (``raw_root``
    overrides it). Frame id ``o`` is the ``o``-th CAM_FRONT sample_data from the target in the
    chain of key frames and sweeps (~12 Hz); the converter records the neighbours at its
    ``--frame-offsets``.

    Output of ``__getitem__``: :class:`KITTIRawDataset`'s layout (F = ``len(frame_ids)``,
    S = ``num_scales``)::

        {'inputs': {'color', 'color_aug': lists of S (F, 3, H_s, W_s) float32 in [0, 1],
                    'K', 'inv_K': (S, 4, 4) float32 pixel intrinsics of each scale, from the
                    real camera_intrinsic normalised by the native image size},
         'data_samples': BaseDataElement(
            gt_depth: (1, H_raw, W_raw) float32 LiDAR depth in metres at the native resolution
                      (900 x 1600 for real data), 0 = no point (with gt_depth_file),
            metainfo: index, folder (scene name), frame_index (chain index), side
                      ('CAM_FRONT'), frame_ids, image_paths (F paths), ori_shape, flip,
                      color_aug_params, K_norm (4, 4), missing_frames, scene, token,
                      sample_token, timestamp (us), tags (['day'|'night', 'rain']),
                      rel_poses (F, 4, 4) T_tgt_to_src from the ego poses, identity for frame 0
                      and missing frames; for the UN-flipped images (with ``flip`` the
                      mirrored pose is diag(-1, 1, 1, 1) @ T @ diag(-1, 1, 1, 1)))}

    Args:
        ann_file: info JSON of the converter (relative to ``data_root`` or absolute).
        data_root: the converter's ``OUT/depth``; default the parent of the info's folder.
        raw_root: nuScenes root; default the ``raw_root`` recorded in the info file.
        frame_ids: temporal offsets, must contain 0 and be among the info's ``frame_offsets``
            (default ``(0, -1, 1)``; evaluation: ``(0,)``). No stereo (``'s'``).
        height, width: network input size (md4all: 320 x 576; nuScenes images are 16:9).
        num_scales, pipeline, test_mode, flip_prob, color_aug_prob, color_jitter,
        flip_principal_point, interpolation, max_samples, seed, lazy_init, serialize_data:
            as :class:`KITTIRawDataset`.
        intrinsics: ``'calib'`` (per frame, from the tables) or explicit normalised
            ``[fx/W, fy/H, cx/W, cy/H]``.
        gt_depth_file: ``'auto'`` = the per-frame ground truth the info names (key frames of
            val/test subsets), None = no ground truth.
        missing_frame: ``'error'``: every frame must have all neighbours (checked at load,
            naming the first frame without); ``'zeros'``: absent neighbours (at a scene's
            start or end in val subsets) become black images listed in ``missing_frames``.
        conditions: keep only frames whose scene has one of these tags (``'day'``,
            ``'night'``, ``'rain'``); None = all.
        gt_max_depth: ground truth beyond this (metres) is set to 0 (unknown), so
            ``DepthMetric(eval_split='none')`` evaluates only LiDAR points within the cap, as
            md4all's 80 m nuScenes evaluation; None keeps every point.
    """

    METAINFO: dict = {'dataset': 'nuscenes'}

    def __init__(self, ann_file: str, data_root: str = '', raw_root: str | None = None,
                 frame_ids: Sequence[int] = (0, -1, 1), height: int = 320, width: int = 576,
                 num_scales: int = 4, pipeline: Sequence[dict | Callable] | None = None,
                 test_mode: bool = False, flip_prob: float = 0.5, color_aug_prob: float = 0.5,
                 color_jitter: dict | None = None, flip_principal_point: bool = True,
                 intrinsics: Literal['calib'] | Sequence[float] = 'calib',
                 gt_depth_file: Literal['auto'] | None = None,
                 missing_frame: Literal['error', 'zeros'] = 'error',
                 interpolation: str = 'lanczos', max_samples: int | None = None,
                 conditions: Sequence[str] | None = None, gt_max_depth: float | None = None,
                 seed: int | None = None, lazy_init: bool = False,
                 serialize_data: bool = True) -> None:
        if STEREO_FRAME_ID in frame_ids:
            raise ValueError("NuScenesDepthDataset: frame id 's' (stereo) is not supported: "
                             'nuScenes has no stereo pair; use temporal offsets (0, -1, 1)')
        if intrinsics == 'monodepth2':
            raise ValueError("NuScenesDepthDataset: intrinsics='monodepth2' is KITTI's fixed "
                             "K; use 'calib' (the nuScenes tables) or explicit values")
        if gt_depth_file not in (None, 'auto'):
            raise ValueError(f"NuScenesDepthDataset: gt_depth_file must be 'auto' or None, got "
                             f'{gt_depth_file!r} (the ground truth is one file per key frame, '
                             'named by the info file)')
        if gt_max_depth is not None and not gt_max_depth > 0:
            raise ValueError(f'NuScenesDepthDataset: gt_max_depth must be > 0, got {gt_max_depth}')
        self.conditions = None if conditions is None else tuple(conditions)
        self.gt_max_depth = gt_max_depth
        self.depth_root = ''
        super().__init__(ann_file=ann_file, data_root=data_root, raw_root=raw_root,
                         frame_ids=frame_ids, height=height, width=width,
                         num_scales=num_scales, pipeline=pipeline, test_mode=test_mode,
                         flip_prob=flip_prob, color_aug_prob=color_aug_prob,
                         color_jitter=color_jitter, flip_principal_point=flip_principal_point,
                         intrinsics=intrinsics, gt_depth_file=gt_depth_file,
                         missing_frame=missing_frame, interpolation=interpolation,
                         max_samples=max_samples, seed=seed, lazy_init=lazy_init,
                         serialize_data=serialize_data)

    @staticmethod
    def default_pipeline(test_mode: bool, height: int, width: int, num_scales: int,
                         flip_prob: float = 0.5, color_aug_prob: float = 0.5,
                         color_jitter: dict | None = None, flip_principal_point: bool = True,
                         interpolation: str = 'lanczos', seed: int | None = None) -> list[dict]:
        """:meth:`KITTIRawDataset.default_pipeline` packing the nuScenes metainfo too."""
        pipeline = KITTIRawDataset.default_pipeline(
            test_mode, height, width, num_scales, flip_prob, color_aug_prob, color_jitter,
            flip_principal_point, interpolation, seed)
        pipeline[-1] = dict(pipeline[-1], meta_keys=NUSCENES_META_KEYS)
        return pipeline

    # ------------------------------------------------------------------ index
    def _read_info(self, path: str) -> dict:
        if not os.path.isfile(path):
            raise DataNotFoundError(f'nuScenes info file {path!r} does not exist: {CONVERT_HINT}')
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError) as e:
            raise NuScenesDataError(f'cannot read nuScenes info file {path!r}: {e}') from e
        if not isinstance(info, dict) or info.get('dataset') != 'nuscenes' or \
                not isinstance(info.get('frames'), list):
            raise NuScenesDataError(f"{path!r} is not a depth info file of "
                                    "data_converters/nuscenes.py (needs 'dataset': 'nuscenes' "
                                    "and 'frames')")
        return info

    def load_data_list(self) -> list[dict]:
        path = self.ann_file
        info = self._read_info(path)
        self.depth_root = self.data_root or os.path.dirname(os.path.dirname(path))
        self.raw_root = self.raw_root_override or info.get('raw_root', '')
        if not os.path.isdir(self.raw_root):
            raise DataNotFoundError(f'nuScenes root {self.raw_root!r} (from '
                                    f'{"raw_root" if self.raw_root_override else path!r}) is not '
                                    'a directory; pass raw_root= where the dataset now is')
        offsets = [f for f in self.frame_ids if f != 0]
        have = set(info.get('frame_offsets', []))
        if not set(offsets) <= have:
            raise NuScenesDataError(f'frame_ids {list(self.frame_ids)} need neighbours '
                                    f'{sorted(set(offsets) - have)} that {path!r} does not record '
                                    f'(it has {sorted(have)}); convert with --frame-offsets')
        frames = info['frames']
        if self.conditions is not None:
            frames = [f for f in frames if set(f.get('tags', ())) & set(self.conditions)]
        frames = frames[:self.max_samples] if self.max_samples else frames
        if not frames:
            raise NuScenesDataError(f'nuScenes info file {path!r} lists no frames'
                                    + (f' with tags {self.conditions}' if self.conditions else ''))
        need = ('scene', 'chain_index', 'token', 'image', 'intrinsics', 'neighbours')
        out = []
        for i, fr in enumerate(frames):
            missing = [k for k in need if k not in fr]
            if missing or len(fr.get('intrinsics', ())) != 4:
                raise NuScenesDataError(f'{path!r}: frame {i} is malformed (missing {missing} or '
                                        f'bad intrinsics): {fr!r}')
            absent = [o for o in offsets if str(o) not in fr['neighbours']]
            if absent and self.missing_frame == 'error':
                raise NuScenesDataError(
                    f'{path!r}: frame {i} ({fr["scene"]}, token {fr["token"]}) has no neighbour '
                    f'{absent} (scene start/end); use frame_ids=(0,) or missing_frame=\'zeros\'')
            out.append({'index': i, 'folder': fr['scene'], 'frame_index': int(fr['chain_index']),
                        'side': CAMERA_SIDE, 'img_ext': '', 'scene': fr['scene'],
                        'token': fr['token'], 'sample_token': fr.get('sample_token', ''),
                        'timestamp': int(fr.get('timestamp', 0)), 'tags': list(fr.get('tags', [])),
                        'image': fr['image'], 'neighbours': fr['neighbours'],
                        'intrinsics': [float(v) for v in fr['intrinsics']],
                        'stereo_baseline': 0.0, 'gt_depth': fr.get('gt_depth'),
                        'gt_shape': (int(fr.get('height', 0)), int(fr.get('width', 0)))})
        self._setup_gt(out)
        return out

    def _setup_gt(self, data_list: list[dict]) -> None:
        if self.gt_depth_file_arg is None:
            return
        lacking = [d for d in data_list if not d['gt_depth']]
        if lacking:
            raise DataNotFoundError(
                f"gt_depth_file='auto' but {len(lacking)} of the {len(data_list)} frames of "
                f'{self.ann_file!r} have no ground truth (first: {lacking[0]["scene"]} token '
                f'{lacking[0]["token"]}); only key frames of val/test subsets have it')
        missing = [d for d in data_list
                   if not os.path.isfile(os.path.join(self.depth_root, d['gt_depth']))]
        if missing:
            raise DataNotFoundError(
                f'{len(missing)} of {len(data_list)} ground-truth files are missing, first '
                f'{os.path.join(self.depth_root, missing[0]["gt_depth"])!r}: {CONVERT_HINT}')
        self.gt_depth_path = self.depth_root  # enables KITTIRawDataset.get_data's ground truth

    def gt_depth(self, index: int) -> np.ndarray:
        """(H, W) float32 sparse LiDAR depth (metres, 0 = no point) of sample ``index``."""
        if self.gt_depth_path is None:
            raise NuScenesDataError('this dataset has no ground truth (gt_depth_file=None)')
        info = self.get_data_info(index)
        path = os.path.join(self.depth_root, info['gt_depth'])
        try:
            gt = load_sparse_depth(path)
        except SparseDepthError as e:
            raise NuScenesDataError(str(e)) from e
        if info['gt_shape'][0] and tuple(gt.shape) != tuple(info['gt_shape']):
            raise NuScenesDataError(f'ground truth {path!r} is {gt.shape[0]}x{gt.shape[1]}, the '
                                    f'image of {self._line(info)} is '
                                    f'{info["gt_shape"][0]}x{info["gt_shape"][1]}')
        if self.gt_max_depth is not None:
            gt[gt > self.gt_max_depth] = 0.0
        return gt

    # ------------------------------------------------------------------ loading
    def frame_path(self, info: dict, frame_id: int | str) -> str:
        """Image path of ``frame_id`` (an offset in the CAM_FRONT chain) for sample ``info``;
        a placeholder that does not exist for an absent neighbour."""
        if frame_id == 0:
            return os.path.join(self.raw_root, info['image'])
        nb = info['neighbours'].get(str(frame_id))
        if nb is None:
            return os.path.join(self.raw_root, f'<no {CAMERA_SIDE} frame {int(frame_id):+d} of '
                                               f'{info["token"]} in {info["scene"]}>')
        return os.path.join(self.raw_root, nb['image'])

    def _line(self, info: dict) -> str:
        return (f'"{info["scene"]} frame {info["frame_index"]} (token {info["token"]})" of '
                f'{self.ann_file!r}')

    def get_data(self, idx: int) -> dict[str, Any]:
        """:meth:`KITTIRawDataset.get_data` plus ``scene``, ``token``, ``sample_token``,
        ``timestamp``, ``tags`` and ``rel_poses`` (F, 4, 4)."""
        data = super().get_data(idx)
        info = self.get_data_info(idx)
        poses = np.tile(np.eye(4, dtype=np.float32), (len(self.frame_ids), 1, 1))
        for f, fid in enumerate(self.frame_ids):
            nb = info['neighbours'].get(str(fid)) if fid != 0 else None
            if nb is not None:
                poses[f] = np.asarray(nb['T'], dtype=np.float32)
        data.update(scene=info['scene'], token=info['token'], sample_token=info['sample_token'],
                    timestamp=info['timestamp'], tags=info['tags'], rel_poses=poses)
        return data

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else '?'
        return (f'NuScenesDepthDataset(ann_file={self.ann_file!r}, samples={n}, frame_ids='
                f'{self.frame_ids}, size={self.height}x{self.width}, scales={self.num_scales}, '
                f'test_mode={self.test_mode})')


@DATASETS.register_module()
class NuScenesLidarDataset(ScanNetDataset):
    """LIDAR_TOP key frames of one or more splits; ``__getitem__`` = ``pipeline(get_data(i))``.

    Data: ``data_root`` is the converter's ``OUT/lidar`` (``splits/<split>.txt``,
    ``scenes/<scene>_<kkk>/{coord,intensity,time,segment}.npy``, ``meta.json``). Everything
    but the per-frame fields is :class:`ScanNetDataset`'s (split files, ``loop``,
    ``max_scenes``, file checks).

    ``get_data`` returns ``coord`` (N, 3) float32 (key-frame LIDAR_TOP frame, metres),
    ``strength`` (N, 1) float32 intensity / 255, ``time`` (N, 1) float32 time lag (s; 0 for the
    key frame, > 0 for aggregated past sweeps), ``segment`` (N,) int64 (16 nuScenes-lidarseg
    classes, -1 = ignore or unlabelled) and ``name``. Configs build features with
    ``Collect(feat_keys=('coord', 'strength'))`` (Pointcept's nuScenes recipe), adding
    ``'time'`` for multi-sweep clouds.

    Args:
        data_root: the converter's ``OUT/lidar``.
        split: ``'train'``, ``'val'`` (``'test'`` for v1.0-test) or a list of them.
        pipeline, test_mode, loop, max_scenes: as :class:`ScanNetDataset`.
    """

    def __init__(self, data_root: str, split: str | Sequence[str] = 'train',
                 pipeline: Sequence[dict | Callable] | None = None, test_mode: bool = False,
                 loop: int = 1, max_scenes: int | None = None) -> None:
        # ScanNetDataset.__init__ validates a ScanNet label set; the attributes it sets (and
        # its loaders use) are set here instead
        if loop < 1:
            raise ValueError(f'loop must be >= 1, got {loop}')
        self.data_root = str(data_root)
        self.splits = [split] if isinstance(split, str) else list(split)
        self.test_mode = test_mode
        self.loop = loop
        self.axis_align = False
        self.segment_field = 'segment'
        meta = self._read_meta()
        classes = tuple(meta.get('classes') or ())
        self.label_set = 'nuscenes_lidarseg16' if classes else None
        self._metainfo = {'classes': classes, 'ignore_index': IGNORE_INDEX,
                          'label_set': self.label_set, 'num_classes': len(classes),
                          'nsweeps': meta.get('nsweeps'), 'dataset': 'nuscenes_lidar'}
        self.scenes = self._read_splits()
        if max_scenes is not None:
            self.scenes = self.scenes[:max_scenes]
        self.pipeline = build_pipeline(pipeline)

    def _read_meta(self) -> dict:
        path = os.path.join(self.data_root, 'meta.json')
        if not os.path.isfile(path):
            raise DataNotFoundError(f'no processed nuScenes LiDAR at {self.data_root!r} (missing '
                                    f'{path!r}): {CONVERT_HINT} --task lidar')
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise NuScenesDataError(f'cannot read {path!r}: {e}') from e
        if not isinstance(meta, dict) or meta.get('dataset') != 'nuscenes_lidar':
            raise NuScenesDataError(f"{path!r} is not the meta.json of data_converters/"
                                    "nuscenes.py --task lidar (needs 'dataset': "
                                    "'nuscenes_lidar')")
        return meta

    def _read_splits(self) -> list[tuple[str, str]]:
        split_dir = os.path.join(self.data_root, 'splits')
        for split in self.splits:
            path = os.path.join(split_dir, f'{split}.txt')
            if not os.path.isfile(path):
                have = sorted(f[:-4] for f in os.listdir(split_dir) if f.endswith('.txt')) \
                    if os.path.isdir(split_dir) else []
                raise DataNotFoundError(f'split file {path!r} does not exist (splits there: '
                                        f'{have}): {CONVERT_HINT} --task lidar')
        return super()._read_splits()

    def get_data(self, idx: int) -> dict[str, Any]:
        """The raw sample of frame ``idx % num_frames`` (fields in the class docstring)."""
        scene, _ = self.scenes[idx % len(self.scenes)]
        coord = self._load(scene, 'coord', (None, 3), 'f').astype(np.float32)
        n = coord.shape[0]
        intensity = self._load(scene, 'intensity', (n,), 'f').astype(np.float32)
        time = self._load(scene, 'time', (n,), 'f').astype(np.float32)
        seg = self._load(scene, 'segment', (n,), 'i').astype(np.int64)
        k = self._metainfo['num_classes']
        if seg.size and (seg.min() < IGNORE_INDEX or seg.max() >= k):
            raise NuScenesDataError(
                f'{os.path.join(self.scene_dir(scene), "segment.npy")!r} has labels in '
                f'[{seg.min()}, {seg.max()}], expected {IGNORE_INDEX}..{k - 1}')
        return {'coord': coord, 'strength': (intensity / 255.0)[:, None],
                'time': time[:, None], 'segment': seg, 'name': scene}

    def __repr__(self) -> str:
        return (f'NuScenesLidarDataset(data_root={self.data_root!r}, splits={self.splits}, '
                f'frames={len(self.scenes)}, loop={self.loop})')
