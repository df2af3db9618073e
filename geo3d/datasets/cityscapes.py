"""Cityscapes video snippets for self-supervised depth, read through the info files of
``data_converters/cityscapes.py``.

Follows ManyDepth's Cityscapes set-up (Watson et al., CVPR 2021,
https://github.com/nianticlabs/manydepth; SfMLearner's ``cityscapes_loader.py``, Zhou et al.,
CVPR 2017): frame ids are offsets of ``sample_gap`` frames (``-1`` = t - 2), the bottom 25 % of
every image (the ego-car hood) is cut before resizing, intrinsics come from the camera JSON
normalised to the cropped image, and test samples carry the full-size ground-truth depth that
``DepthMetric(eval_split='cityscapes')`` crops like ManyDepth. Everything else (pyramid, colour
jitter and flip drawn once per sample, output layout) is :class:`KITTIRawDataset`'s.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Literal, Sequence

import numpy as np
from PIL import Image

from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError

from .kitti import STEREO_FRAME_ID, KITTIRawDataset, _k_from_intrinsics

__all__ = ['CityscapesSequenceDataset', 'CityscapesDataError']

CONVERT_HINT = ('run `python data_converters/cityscapes.py --root CITYSCAPES --out DATA_ROOT` on '
                'a Cityscapes tree (docs/datasets/cityscapes.md)')


class CityscapesDataError(RuntimeError):
    """A Cityscapes file (info, image, ground truth) is malformed or unreadable."""


@DATASETS.register_module()
class CityscapesSequenceDataset(KITTIRawDataset):
    """Multi-frame Cityscapes samples for self-supervised depth (ManyDepth conventions).

    Data: ``data_root`` is the converter's output, ``ann_file`` one of its info files (e.g.
    ``splits/auto/train_info.json``). Frames are read from the raw ``leftImg8bit_sequence`` tree
    recorded in the info file (``raw_root`` overrides it) and their bottom ``crop_bottom`` is cut,
    or, when the converter pre-resized them (``--resize``), from ``data_root/images/<W>x<H>/``
    (already cropped). Test info files name a ground-truth map per frame
    (``gt_depths/<city>/<stem>_depth.npy``, full image size).

    Output of ``__getitem__``: exactly :class:`KITTIRawDataset`'s layout (F = ``len(frame_ids)``,
    S = ``num_scales``)::

        {'inputs': {'color': list of S (F, 3, H_s, W_s) float32 in [0, 1] (un-augmented),
                    'color_aug': same layout, colour-jittered (one draw for all frames),
                    'K', 'inv_K': (S, 4, 4) float32 pixel intrinsics of the cropped, resized
                    image at each scale},
         'data_samples': BaseDataElement(
            gt_depth: (1, H_raw, W_raw) float32 metres, 0 = unknown (with ground truth),
            metainfo: index, folder ('<split>/<city>/<city>_<seq>'), frame_index, side ('l'),
                      frame_ids, image_paths (F paths), ori_shape (cropped (H', W) of the raw
                      frame), flip, color_aug_params, K_norm (4, 4), stereo_baseline (m, from
                      the camera JSON; no stereo frames are loaded), missing_frames)}

    Args:
        ann_file: info JSON written by the converter (relative to ``data_root`` or absolute).
        data_root: the converter's output directory.
        raw_root: Cityscapes root; default the ``raw_root`` recorded in the info file.
        frame_ids: offsets in units of ``sample_gap`` frames; must contain 0. Default
            ``(0, -1, 1)`` (frames t, t - 2, t + 2). Test: ``(0,)``, or ``(0, -1)`` for
            multi-frame models.
        height, width: training size (ManyDepth / ProDepth: 192 x 512).
        num_scales: pyramid levels (4).
        sample_gap: frames per offset; default the converter's (``sample_gap`` in the info).
        crop_bottom: fraction cut at the bottom of raw frames; default the converter's (0.25).
        pipeline, test_mode, flip_prob, color_aug_prob, color_jitter, flip_principal_point,
        missing_frame, interpolation, max_samples, seed, lazy_init, serialize_data: as
            :class:`KITTIRawDataset`.
        intrinsics: ``'calib'`` (per-frame, from the camera JSON, default) or explicit
            normalised ``[fx/W, fy/H', cx/W, cy/H']``.
        gt_depth_dir: ``'auto'`` = the converter's ground truth named by the info file (test
            subsets); a directory holding ``<city>/<stem>_depth.npy`` (relative to
            ``data_root`` or absolute); None = no ground truth.
    """

    METAINFO: dict = {'dataset': 'cityscapes_sequence'}

    def __init__(self, ann_file: str, data_root: str = '', raw_root: str | None = None,
                 frame_ids: Sequence[int] = (0, -1, 1), height: int = 192, width: int = 512,
                 num_scales: int = 4, sample_gap: int | None = None,
                 crop_bottom: float | None = None,
                 pipeline: Sequence[dict | Callable] | None = None, test_mode: bool = False,
                 flip_prob: float = 0.5, color_aug_prob: float = 0.5,
                 color_jitter: dict | None = None, flip_principal_point: bool = True,
                 intrinsics: Literal['calib'] | Sequence[float] = 'calib',
                 gt_depth_dir: str | None = None,
                 missing_frame: Literal['error', 'zeros'] = 'error',
                 interpolation: str = 'lanczos', max_samples: int | None = None,
                 seed: int | None = None, lazy_init: bool = False,
                 serialize_data: bool = True) -> None:
        if STEREO_FRAME_ID in frame_ids:
            raise ValueError("CityscapesSequenceDataset: frame id 's' (stereo) is not supported; "
                             'use temporal offsets such as (0, -1, 1)')
        if intrinsics == 'monodepth2':
            raise ValueError("CityscapesSequenceDataset: intrinsics='monodepth2' is KITTI's "
                             "fixed K; use 'calib' (the camera JSONs) or explicit values")
        if sample_gap is not None and (not isinstance(sample_gap, int) or sample_gap < 1):
            raise ValueError(f'sample_gap must be a positive int, got {sample_gap!r}')
        if crop_bottom is not None and not 0.0 <= crop_bottom < 1.0:
            raise ValueError(f'crop_bottom must be in [0, 1), got {crop_bottom}')
        self.sample_gap_arg = sample_gap
        self.crop_bottom_arg = crop_bottom
        self.sample_gap = sample_gap or 1
        self.crop_bottom = crop_bottom if crop_bottom is not None else 0.25
        self.image_root = ''
        self.image_ext = '.png'
        self.pre_cropped = False
        self.gt_dir: str | None = None
        super().__init__(ann_file=ann_file, data_root=data_root, raw_root=raw_root,
                         frame_ids=frame_ids, height=height, width=width,
                         num_scales=num_scales, pipeline=pipeline, test_mode=test_mode,
                         flip_prob=flip_prob, color_aug_prob=color_aug_prob,
                         color_jitter=color_jitter, flip_principal_point=flip_principal_point,
                         intrinsics=intrinsics, gt_depth_file=gt_depth_dir,
                         missing_frame=missing_frame, interpolation=interpolation,
                         max_samples=max_samples, seed=seed, lazy_init=lazy_init,
                         serialize_data=serialize_data)

    # ------------------------------------------------------------------ index
    def _read_info(self, path: str) -> dict:
        if not os.path.isfile(path):
            raise DataNotFoundError(f'Cityscapes info file {path!r} does not exist: '
                                    f'{CONVERT_HINT}')
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError) as e:
            raise CityscapesDataError(f'cannot read Cityscapes info file {path!r}: {e}') from e
        if not isinstance(info, dict) or not isinstance(info.get('frames'), list) or \
                not isinstance(info.get('images'), dict) or \
                info.get('dataset') != 'cityscapes_sequence':
            raise CityscapesDataError(f'{path!r} is not an info file of '
                                      "data_converters/cityscapes.py (needs 'dataset': "
                                      "'cityscapes_sequence', 'images' and 'frames')")
        return info

    def _setup_images(self, info: dict, path: str) -> None:
        images = info['images']
        if images.get('root') == 'out':  # pre-cropped, pre-resized by the converter
            base = self.data_root or os.path.dirname(os.path.dirname(os.path.dirname(path)))
            self.image_root = os.path.join(base, images['dir'])
            self.pre_cropped = bool(images.get('cropped', True))
            where = f'images.dir of {path!r}'
        else:
            raw = self.raw_root_override or info.get('raw_root', '')
            self.raw_root = raw
            self.image_root = os.path.join(raw, images.get('dir', 'leftImg8bit_sequence'))
            self.pre_cropped = bool(images.get('cropped', False))
            where = 'raw_root' if self.raw_root_override else f'raw_root of {path!r}'
        self.image_ext = images.get('ext', '.png')
        if not os.path.isdir(self.image_root):
            raise DataNotFoundError(f'Cityscapes image folder {self.image_root!r} (from {where}) '
                                    'is not a directory; pass raw_root= where the Cityscapes '
                                    'tree now is (or data_root= for converted images)')

    def load_data_list(self) -> list[dict]:
        path = self.ann_file
        info = self._read_info(path)
        self._setup_images(info, path)
        self.sample_gap = self.sample_gap_arg or int(info.get('sample_gap', 2))
        self.crop_bottom = self.crop_bottom_arg if self.crop_bottom_arg is not None else \
            float(info.get('crop_bottom', 0.25))
        self._info_meta = {k: info.get(k) for k in ('split', 'subset', 'gt_depth_dir')}
        frames = info['frames'][:self.max_samples] if self.max_samples else info['frames']
        if not frames:
            raise CityscapesDataError(f'Cityscapes info file {path!r} lists no frames')
        need = ('split', 'city', 'seq', 'frame', 'intrinsics', 'baseline')
        out = []
        for i, fr in enumerate(frames):
            missing = [k for k in need if k not in fr]
            if missing or len(fr.get('intrinsics', ())) != 4:
                raise CityscapesDataError(f'{path!r}: frame {i} is malformed (missing '
                                          f'{missing} or bad intrinsics): {fr!r}')
            city, seq = str(fr['city']), int(fr['seq'])
            out.append({'index': i, 'split': str(fr['split']), 'city': city, 'seq': seq,
                        'frame_index': int(fr['frame']),
                        'folder': f'{fr["split"]}/{city}/{city}_{seq:06d}', 'side': 'l',
                        'intrinsics': [float(v) for v in fr['intrinsics']],
                        'stereo_baseline': float(fr['baseline']),
                        'gt_depth': fr.get('gt_depth')})
        self._setup_gt(out)
        return out

    def _setup_gt(self, data_list: list[dict]) -> None:
        arg = self.gt_depth_file_arg
        if arg is None:
            return
        if arg == 'auto':
            name = self._info_meta.get('gt_depth_dir')
            if not name:
                raise DataNotFoundError(f"gt_depth_dir='auto' but {self.ann_file!r} names no "
                                        'ground truth (only test subsets have gt_depths/)')
            base = self.data_root or os.path.dirname(os.path.dirname(os.path.dirname(
                self.ann_file)))
            gt_dir = os.path.join(base, name)
        else:
            gt_dir = arg if os.path.isabs(arg) else os.path.join(self.data_root or '', arg)
        if not os.path.isdir(gt_dir):
            raise DataNotFoundError(f'ground-truth folder {gt_dir!r} does not exist: '
                                    f'{CONVERT_HINT} (it writes gt_depths/ for test subsets)')
        missing = [d for d in data_list if not os.path.isfile(self._gt_path(gt_dir, d))]
        if missing:
            raise DataNotFoundError(f'{len(missing)} of {len(data_list)} ground-truth maps are '
                                    f'missing, first {self._gt_path(gt_dir, missing[0])!r}: '
                                    f'{CONVERT_HINT}')
        self.gt_dir = gt_dir
        self.gt_depth_path = gt_dir

    @staticmethod
    def _gt_path(gt_dir: str, info: dict) -> str:
        stem = f'{info["city"]}_{info["seq"]:06d}_{info["frame_index"]:06d}'
        return os.path.join(gt_dir, info['city'], f'{stem}_depth.npy')

    def gt_depth(self, index: int) -> np.ndarray:
        """(H, W) float32 ground truth (metres, 0 = unknown) of sample ``index``."""
        if self.gt_dir is None:
            raise CityscapesDataError('this dataset has no ground truth (gt_depth_dir=None)')
        path = self._gt_path(self.gt_dir, self.get_data_info(index))
        try:
            gt = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as e:
            raise CityscapesDataError(f'cannot read ground-truth map {path!r}: {e}') from e
        if gt.ndim != 2:
            raise CityscapesDataError(f'ground-truth map {path!r} has shape {gt.shape}, '
                                      'expected (H, W)')
        return np.asarray(gt, dtype=np.float32)

    # ------------------------------------------------------------------ loading
    def frame_path(self, info: dict, frame_id: int | str) -> str:
        """Path of the image of ``frame_id`` (an offset of ``sample_gap`` frames)."""
        frame = info['frame_index'] + int(frame_id) * self.sample_gap
        city = info['city']
        return os.path.join(self.image_root, info['split'], city,
                            f'{city}_{info["seq"]:06d}_{frame:06d}_leftImg8bit{self.image_ext}')

    def _line(self, info: dict) -> str:
        return (f'"{info["city"]} {info["city"]}_{info["seq"]:06d}_{info["frame_index"]:06d}" '
                f'of {self.ann_file!r}')

    def intrinsics_of(self, info: dict) -> np.ndarray:
        """(4, 4) normalised intrinsics of the cropped image (``intrinsics`` argument)."""
        if isinstance(self.intrinsics, str):
            return _k_from_intrinsics(info['intrinsics'])
        return _k_from_intrinsics(self.intrinsics)

    def crop(self, image: Image.Image) -> Image.Image:
        """Cut the bottom ``crop_bottom`` of a raw frame (no-op for pre-cropped images)."""
        if self.pre_cropped or self.crop_bottom == 0:
            return image
        w, h = image.size
        return image.crop((0, 0, w, int(round(h * (1.0 - self.crop_bottom)))))

    def get_data(self, idx: int) -> dict[str, Any]:
        """The un-transformed sample: ``img`` (F cropped PIL images in ``frame_ids`` order),
        ``K_norm``, ``gt_depth`` (with ground truth) and metadata."""
        info = self.get_data_info(idx)
        images: list[Image.Image | None] = []
        paths, missing = [], []
        for fid in self.frame_ids:
            path = self.frame_path(info, fid)
            what = f'frame {fid!r} of {self._line(info)}'
            if fid != 0 and self.missing_frame == 'zeros' and not os.path.exists(path):
                images.append(None)
                missing.append(fid)
            else:
                images.append(self.crop(self.load_image(path, what)))
            paths.append(path)
        target = images[self.frame_ids.index(0)]
        assert target is not None
        images = [im if im is not None else Image.new('RGB', target.size) for im in images]
        data: dict[str, Any] = {
            'img': images, 'frame_ids': self.frame_ids, 'image_paths': paths,
            'index': info['index'], 'folder': info['folder'],
            'frame_index': info['frame_index'], 'side': info['side'],
            'ori_shape': (target.size[1], target.size[0]), 'flip': False,
            'K_norm': self.intrinsics_of(info), 'missing_frames': missing,
            'stereo_baseline': info['stereo_baseline']}
        if self.gt_dir is not None:
            data['gt_depth'] = self.gt_depth(info['index'])
        return data

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else '?'
        return (f'CityscapesSequenceDataset(ann_file={self.ann_file!r}, samples={n}, '
                f'frame_ids={self.frame_ids}, sample_gap={self.sample_gap}, '
                f'size={self.height}x{self.width}, scales={self.num_scales}, '
                f'test_mode={self.test_mode})')
