"""KITTI raw for self-supervised depth: samples of a target frame, its temporal neighbours and
its stereo partner, read through the info files of ``data_converters/kitti.py``.

Follows Monodepth2's ``KITTIRAWDataset``/``MonoDataset`` (Godard et al., ICCV 2019,
https://github.com/nianticlabs/monodepth2): frame ids are temporal offsets (``0, -1, 1``) or
``'s'`` (the other camera of the stereo rig at the same time); images are resized to the
training size and a 4-level pyramid; colour jitter and flips are drawn once per sample.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Literal, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from PIL import Image, UnidentifiedImageError

from geo3d.registry import DATASETS
from geo3d.utils.errors import DataNotFoundError

from .transforms.point import build_pipeline

__all__ = ['KITTIRawDataset', 'KITTIDataError', 'MONODEPTH2_KITTI_K', 'STEREO_FRAME_ID',
           'GT_DYNAMIC_FILE', 'read_gt_dynamic_masks']

CONVERT_HINT = ('run `python data_converters/kitti.py --root RAW --out DATA_ROOT [--split ...]` '
                'on a KITTI raw tree')
STEREO_FRAME_ID = 's'
SIDE_TO_CAM = {'l': 2, 'r': 3, '2': 2, '3': 3}
OTHER_CAM = {2: 3, 3: 2}
# Monodepth2's one normalised K for every KITTI drive (fx/W, fy/H of 1242x375, centred c)
MONODEPTH2_KITTI_K = np.array([[0.58, 0, 0.5, 0], [0, 1.92, 0.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
                              dtype=np.float64)


#: the converter's moving-object masks of the test frames (demo drives only), next to
#: ``gt_depths.npz``; layout in ``geo3d.converters.kitti.dynamic``
GT_DYNAMIC_FILE = 'gt_dynamic_masks.npz'
_DYNAMIC_KEYS = ('lines', 'present', 'shapes', 'offsets', 'masks')


class KITTIDataError(RuntimeError):
    """A KITTI file (info, image, ground truth) is malformed or unreadable."""


def read_gt_dynamic_masks(path: str | os.PathLike[str]
                          ) -> tuple[list[str], list[np.ndarray | None]]:
    """(lines, masks) of the converter's ``gt_dynamic_masks.npz``.

    Each mask is (H, W) bool (True = independently moving object) or None where the line has no
    mask. The file holds ``lines`` (N,), ``present`` (N,) bool, ``shapes`` (N, 2),
    ``offsets`` (N + 1,) and the concatenated row-major ``masks`` (no pickled objects).

    Raises:
        KITTIDataError: naming the file, when it is not such a file or is inconsistent.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _DYNAMIC_KEYS if k not in z.files]
            if missing:
                raise ValueError(f'missing keys {missing}')
            lines = [str(x) for x in z['lines'].tolist()]
            present, shapes, offsets, flat = (z[k] for k in _DYNAMIC_KEYS[1:])
    except (OSError, ValueError, EOFError, KeyError) as e:
        raise KITTIDataError(f'cannot read dynamic masks {str(path)!r}: {e}') from e
    n = len(lines)
    if present.shape != (n,) or shapes.shape != (n, 2) or offsets.shape != (n + 1,) or \
            int(offsets[-1]) != flat.size or \
            not np.array_equal(np.diff(offsets), np.where(present, shapes.prod(1), 0)):
        raise KITTIDataError(f'dynamic masks {str(path)!r} are inconsistent ({n} lines, present '
                             f'{present.shape}, shapes {shapes.shape}, offsets {offsets.shape}, '
                             f'{flat.size} mask pixels)')
    masks: list[np.ndarray | None] = [
        flat[offsets[i]:offsets[i + 1]].reshape(int(shapes[i, 0]), int(shapes[i, 1])).astype(bool)
        if present[i] else None for i in range(n)]
    return lines, masks


def _k_from_intrinsics(v: Sequence[float]) -> np.ndarray:
    fx, fy, cx, cy = (float(x) for x in v)
    k = np.eye(4)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = fx, fy, cx, cy
    return k


@DATASETS.register_module()
class KITTIRawDataset(BaseDataset):
    """Multi-frame KITTI raw samples for self-supervised depth (Monodepth2 semantics).

    Data: ``data_root`` is the converter's output, ``ann_file`` one of its info files (e.g.
    ``splits/eigen_zhou/train_info.json``); images are read from the raw tree recorded in the
    info file (``raw_root`` overrides it). Ground truth for evaluation comes from the split's
    ``gt_depths.npz`` (``gt_depth_file``), in the same order as the info frames.

    Output of ``__getitem__`` (the default pipeline; F = ``len(frame_ids)``, S = ``num_scales``,
    level s has size ``(height // 2**s, width // 2**s)``)::

        {'inputs': {
            'color':     list of S tensors (F, 3, H_s, W_s) float32 in [0, 1]  # Monodepth2
                         ('color', frame_ids[f], s) = inputs['color'][s][f]; un-augmented,
                         for the losses
            'color_aug': same layout, colour-jittered (the network inputs); the same tensors
                         as 'color' when no jitter was drawn
            'K':         (S, 4, 4) float32 pixel intrinsics of each level, ('K', s) = K[s]
            'inv_K':     (S, 4, 4) float32 inverses
            'stereo_T':  (4, 4) float32, only when 's' in frame_ids: target -> stereo camera,
                         x translation = -b for a left target, +b for a right one, sign flipped
                         when the sample is mirrored (b = ``stereo_baseline``)
         },
         'data_samples': BaseDataElement(
            gt_depth: (1, H_raw, W_raw) float32 tensor (only with gt_depth_file),
            gt_dynamic_mask: (1, H_raw, W_raw) bool tensor, True on moving objects (only
                      when the split has ``gt_dynamic_masks.npz``, i.e. demo drives with
                      moving objects, and this frame has a mask),
            metainfo: index, folder, frame_index, side, frame_ids, image_paths (F paths),
                      ori_shape (H_raw, W_raw), flip, color_aug_params, K_norm (4, 4),
                      stereo_baseline, missing_frames (frame ids filled with zeros))}

    With mmengine's ``default_collate`` a batch of B samples becomes ``inputs['color'][s]``
    (B, F, 3, H_s, W_s), ``inputs['K']`` (B, S, 4, 4), ``inputs['stereo_T']`` (B, 4, 4) and
    ``data_samples`` a list of B elements (ground truth of different dates may differ in
    size); ``pseudo_collate`` gives the same structure with lists instead of stacked tensors.

    Args:
        ann_file: info JSON written by the converter (relative to ``data_root`` or absolute).
        data_root: the converter's output directory.
        raw_root: KITTI raw root; default the ``raw_root`` recorded in the info file.
        frame_ids: temporal offsets and/or ``'s'``; must contain 0. Default ``(0, -1, 1)``.
        height, width: training size (Monodepth2: 192 x 640).
        num_scales: pyramid levels (4).
        pipeline: transform configs/callables; default (None): train = flip (``flip_prob``),
            resize pyramid, colour jitter (``color_aug_prob``), pack; ``test_mode`` = resize
            pyramid, pack.
        test_mode: evaluation (no augmentation in the default pipeline).
        flip_prob, color_aug_prob: probabilities of the default training augmentations (0.5).
        color_jitter: ranges for :class:`~geo3d.datasets.transforms.MultiFrameColorJitter`
            (brightness, contrast, saturation, hue); default Monodepth2's.
        flip_principal_point: mirror ``cx`` with the image (default); False = Monodepth2's
            behaviour (K untouched), only exact for a centred principal point.
        intrinsics: ``'calib'`` (per-drive K from the calibration, default), ``'monodepth2'``
            (the fixed ``MONODEPTH2_KITTI_K``) or explicit ``[fx/W, fy/H, cx/W, cy/H]``.
        stereo_baseline: ``stereo_T`` translation magnitude: a number (Monodepth2 uses 0.1, its
            stereo scale factor 5.4 then maps to metres) or ``'calib'`` (metres from the
            calibration).
        gt_depth_file: ``gt_depths.npz`` of this split (relative to ``data_root``); ``'auto'``
            = the file named by the info (test subsets); None = no ground truth.
        gt_dynamic_mask_file: moving-object masks of the test frames (``GT_DYNAMIC_FILE``,
            written by the converter for demo drives only; relative to ``data_root``);
            ``'auto'`` (default) = ``gt_dynamic_masks.npz`` next to the ground-truth depth file
            if it exists (real KITTI: none, nothing loaded); None = never.
        missing_frame: ``'error'`` (default): a missing neighbour image raises
            ``FileNotFoundError`` naming it; ``'zeros'``: it is replaced by a black image and
            listed in ``missing_frames`` (ManyDepth's convention at sequence ends).
        interpolation: resize filter (``'lanczos'`` as the reference, or ``'bilinear'``, ...).
        max_samples: keep the first ``max_samples`` frames.
        seed: seed of the default pipeline's random transforms, for tests and debugging
            (every dataloader worker would replay the same stream); None (default) draws
            from numpy's global RNG, which mmengine seeds per worker.
    """

    METAINFO: dict = {'dataset': 'kitti_raw'}

    def __init__(self, ann_file: str, data_root: str = '', raw_root: str | None = None,
                 frame_ids: Sequence[int | str] = (0, -1, 1), height: int = 192,
                 width: int = 640, num_scales: int = 4,
                 pipeline: Sequence[dict | Callable] | None = None, test_mode: bool = False,
                 flip_prob: float = 0.5, color_aug_prob: float = 0.5,
                 color_jitter: dict | None = None, flip_principal_point: bool = True,
                 intrinsics: Literal['calib', 'monodepth2'] | Sequence[float] = 'calib',
                 stereo_baseline: float | Literal['calib'] = 0.1,
                 gt_depth_file: str | None = None,
                 gt_dynamic_mask_file: str | None = 'auto',
                 missing_frame: Literal['error', 'zeros'] = 'error',
                 interpolation: str = 'lanczos', max_samples: int | None = None,
                 seed: int | None = None, lazy_init: bool = False,
                 serialize_data: bool = True) -> None:
        self.frame_ids = self._check_frame_ids(frame_ids)
        if missing_frame not in ('error', 'zeros'):
            raise ValueError(f"missing_frame must be 'error' or 'zeros', got {missing_frame!r}")
        if not (stereo_baseline == 'calib' or isinstance(stereo_baseline, (int, float))):
            raise ValueError(f"stereo_baseline must be a number or 'calib', got "
                             f'{stereo_baseline!r}')
        if isinstance(intrinsics, str):
            if intrinsics not in ('calib', 'monodepth2'):
                raise ValueError(f"intrinsics must be 'calib', 'monodepth2' or [fx, fy, cx, cy], "
                                 f'got {intrinsics!r}')
        elif len(intrinsics) != 4:
            raise ValueError(f'explicit intrinsics must be [fx/W, fy/H, cx/W, cy/H], got '
                             f'{intrinsics!r}')
        self.raw_root_override = raw_root
        self.raw_root = raw_root or ''
        self.height, self.width, self.num_scales = height, width, num_scales
        self.intrinsics = intrinsics
        self.stereo_baseline = stereo_baseline
        self.missing_frame = missing_frame
        self.max_samples = max_samples
        self.gt_depth_file_arg = gt_depth_file
        self.gt_depth_path: str | None = None
        self._gt: np.ndarray | None = None
        self.gt_dynamic_mask_arg = gt_dynamic_mask_file
        self.gt_dynamic_mask_path: str | None = None
        self._dynamic: list[np.ndarray | None] | None = None
        self._info_meta: dict[str, Any] = {}
        if pipeline is None:
            pipeline = self.default_pipeline(test_mode, height, width, num_scales, flip_prob,
                                              color_aug_prob, color_jitter, flip_principal_point,
                                              interpolation, seed)
        built = list(build_pipeline(pipeline).transforms)
        super().__init__(ann_file=ann_file, data_root=data_root,
                         metainfo={'frame_ids': self.frame_ids, 'height': height,
                                   'width': width, 'num_scales': num_scales},
                         pipeline=built, test_mode=test_mode, lazy_init=lazy_init,
                         serialize_data=serialize_data)

    # ------------------------------------------------------------------ configuration
    @staticmethod
    def _check_frame_ids(frame_ids: Sequence[int | str]) -> tuple[int | str, ...]:
        out: list[int | str] = []
        for f in frame_ids:
            if f == STEREO_FRAME_ID:
                out.append(STEREO_FRAME_ID)
            elif isinstance(f, (int, np.integer)) and not isinstance(f, bool):
                out.append(int(f))
            else:
                raise ValueError(f"frame_ids must be integers or 's', got {f!r}")
        if 0 not in out:
            raise ValueError(f'frame_ids must contain the target frame 0, got {list(frame_ids)}')
        if len(set(out)) != len(out):
            raise ValueError(f'frame_ids has duplicates: {list(frame_ids)}')
        return tuple(out)

    @staticmethod
    def default_pipeline(test_mode: bool, height: int, width: int, num_scales: int,
                         flip_prob: float = 0.5, color_aug_prob: float = 0.5,
                         color_jitter: dict | None = None, flip_principal_point: bool = True,
                         interpolation: str = 'lanczos', seed: int | None = None) -> list[dict]:
        """Monodepth2's pipeline as transform configs (see the class docstring)."""
        resize = dict(type='MultiFrameResizePyramid', height=height, width=width,
                      num_scales=num_scales, interpolation=interpolation)
        if test_mode:
            return [resize, dict(type='PackMultiFrameInputs')]
        seeds = (None, None) if seed is None else (seed, seed + 1)
        return [dict(type='MultiFrameRandomFlip', prob=flip_prob,
                     flip_principal_point=flip_principal_point, seed=seeds[0]),
                resize,
                dict(type='MultiFrameColorJitter', prob=color_aug_prob, seed=seeds[1],
                     **(color_jitter or {})),
                dict(type='PackMultiFrameInputs')]

    # ------------------------------------------------------------------ index
    def load_data_list(self) -> list[dict]:
        path = self.ann_file
        if not os.path.isfile(path):
            raise DataNotFoundError(f'KITTI info file {path!r} does not exist: {CONVERT_HINT}')
        try:
            with open(path) as f:
                info = json.load(f)
        except (OSError, ValueError) as e:
            raise KITTIDataError(f'cannot read KITTI info file {path!r}: {e}') from e
        if not isinstance(info, dict) or not isinstance(info.get('frames'), list) or \
                not isinstance(info.get('drives'), dict):
            raise KITTIDataError(f'{path!r} is not a KITTI info file of data_converters/kitti.py '
                                 "(needs 'frames' and 'drives')")
        self.raw_root = self.raw_root_override or info.get('raw_root', '')
        if not os.path.isdir(self.raw_root):
            raise DataNotFoundError(f'KITTI raw root {self.raw_root!r} (from '
                                    f'{"raw_root" if self.raw_root_override else path!r}) is not '
                                    'a directory; pass raw_root= where the raw drives now are')
        self._info_meta = {k: info.get(k) for k in ('split', 'subset', 'gt_depth_file',
                                                    'gt_depth')}
        frames = info['frames'][:self.max_samples] if self.max_samples else info['frames']
        if not frames:
            raise KITTIDataError(f'KITTI info file {path!r} lists no frames')
        need = ('folder', 'frame_index', 'side', 'intrinsics', 'stereo_baseline')
        out = []
        for i, fr in enumerate(frames):
            missing = [k for k in need if k not in fr]
            if missing or fr.get('folder') not in info['drives'] or \
                    fr.get('side') not in SIDE_TO_CAM:
                raise KITTIDataError(f'{path!r}: frame {i} is malformed (missing {missing}, or '
                                     f'unknown drive/side): {fr!r}')
            drive = info['drives'][fr['folder']]
            out.append({'index': i, 'folder': fr['folder'], 'frame_index': int(fr['frame_index']),
                        'side': fr['side'], 'img_ext': drive.get('img_ext', '.png'),
                        'intrinsics': list(fr['intrinsics']),
                        'stereo_baseline': float(fr['stereo_baseline'])})
        self._setup_gt(out)
        self._setup_dynamic(out)
        return out

    def _setup_gt(self, data_list: list[dict]) -> None:
        arg = self.gt_depth_file_arg
        if arg is None:
            return
        split_dir = os.path.dirname(self.ann_file)
        if arg == 'auto':
            name = self._info_meta.get('gt_depth_file')
            if not name:
                raise DataNotFoundError(f"gt_depth_file='auto' but {self.ann_file!r} names no "
                                        'ground truth (only test subsets have gt_depths.npz)')
            path = os.path.join(split_dir, name)
        else:
            path = arg if os.path.isabs(arg) else os.path.join(self.data_root or '', arg)
        if not os.path.isfile(path):
            raise DataNotFoundError(f'ground-truth file {path!r} does not exist: {CONVERT_HINT} '
                                    '(it writes gt_depths.npz for test subsets)')
        try:
            with np.load(path, allow_pickle=False) as z:
                lines = z['lines'].tolist() if 'lines' in z.files else None
                n = len(lines) if lines is not None else None
        except (OSError, ValueError, EOFError) as e:
            raise KITTIDataError(f'cannot read ground-truth file {path!r}: {e}') from e
        if lines is not None:
            want = [(d['folder'], d['frame_index'], d['side']) for d in data_list]
            got = [(p[0], int(p[1]), p[2]) for p in (ln.split() for ln in lines)]
            if got[:len(want)] != want:
                raise KITTIDataError(f'ground-truth file {path!r} lists {n} frames that do not '
                                     f'match the {len(want)} frames of {self.ann_file!r}; convert '
                                     'the split again')
        self.gt_depth_path = path

    def _setup_dynamic(self, data_list: list[dict]) -> None:
        arg = self.gt_dynamic_mask_arg
        if arg is None:
            return
        if arg == 'auto':
            if self.gt_depth_path is None:
                return
            path = os.path.join(os.path.dirname(self.gt_depth_path), GT_DYNAMIC_FILE)
            if not os.path.isfile(path):
                return
        else:
            path = arg if os.path.isabs(arg) else os.path.join(self.data_root or '', arg)
            if not os.path.isfile(path):
                raise DataNotFoundError(f'dynamic-mask file {path!r} does not exist: '
                                        f'{CONVERT_HINT} (it writes {GT_DYNAMIC_FILE} for test '
                                        'subsets of demo drives with moving objects)')
        lines, masks = read_gt_dynamic_masks(path)
        want = [(d['folder'], d['frame_index'], d['side']) for d in data_list]
        got = [(p[0], int(p[1]), p[2]) for p in (ln.split() for ln in lines)]
        if got[:len(want)] != want:
            raise KITTIDataError(f'dynamic-mask file {path!r} lists {len(lines)} frames that do '
                                 f'not match the {len(want)} frames of {self.ann_file!r}; '
                                 'convert the split again')
        self.gt_dynamic_mask_path = path
        self._dynamic = masks[:len(want)]

    def gt_dynamic_mask(self, index: int) -> np.ndarray | None:
        """(H, W) bool moving-object mask of sample ``index``, or None (no mask)."""
        if self._dynamic is None:
            return None
        return self._dynamic[index]

    def gt_depth(self, index: int) -> np.ndarray:
        """(H, W) float32 ground truth of sample ``index`` (the npz is read once, lazily)."""
        if self.gt_depth_path is None:
            raise KITTIDataError('this dataset has no ground truth (gt_depth_file=None)')
        if self._gt is None:
            try:
                with np.load(self.gt_depth_path, allow_pickle=True) as z:
                    self._gt = z['data']
            except (OSError, ValueError, EOFError, KeyError) as e:
                raise KITTIDataError(f'cannot read ground-truth maps of {self.gt_depth_path!r}: '
                                     f'{e}') from e
        return np.asarray(self._gt[index], dtype=np.float32)

    # ------------------------------------------------------------------ loading
    def frame_path(self, info: dict, frame_id: int | str) -> str:
        """Path of the image of ``frame_id`` for the sample described by ``info``."""
        cam = SIDE_TO_CAM[info['side']]
        frame = info['frame_index']
        if frame_id == STEREO_FRAME_ID:
            cam = OTHER_CAM[cam]
        else:
            frame += int(frame_id)
        return os.path.join(self.raw_root, info['folder'], f'image_0{cam}', 'data',
                            f'{frame:010d}{info["img_ext"]}')

    def _line(self, info: dict) -> str:
        return f'"{info["folder"]} {info["frame_index"]} {info["side"]}" of {self.ann_file!r}'

    def load_image(self, path: str, what: str) -> Image.Image:
        """Read an RGB image with PIL; errors name the file and the sample it belongs to."""
        try:
            with Image.open(path) as im:
                im.load()
                return im.convert('RGB')
        except FileNotFoundError:
            raise FileNotFoundError(f'missing image {path} ({what})') from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise KITTIDataError(f'corrupt image {path} ({what}): {e}') from None

    def intrinsics_of(self, info: dict) -> np.ndarray:
        """(4, 4) normalised intrinsics of a sample (``intrinsics`` argument)."""
        if isinstance(self.intrinsics, str):
            if self.intrinsics == 'monodepth2':
                return MONODEPTH2_KITTI_K.copy()
            return _k_from_intrinsics(info['intrinsics'])
        return _k_from_intrinsics(self.intrinsics)

    def get_data(self, idx: int) -> dict[str, Any]:
        """The un-transformed sample: ``img`` (F PIL images in ``frame_ids`` order), ``K_norm``,
        ``stereo_T`` (with ``'s'``), ``gt_depth`` (with ground truth) and metadata."""
        info = self.get_data_info(idx)
        images: list[Image.Image | None] = []
        paths, missing = [], []
        for fid in self.frame_ids:
            path = self.frame_path(info, fid)
            what = f'frame {fid!r} of {self._line(info)}'
            if fid not in (0, STEREO_FRAME_ID) and self.missing_frame == 'zeros' and \
                    not os.path.exists(path):
                images.append(None)
                missing.append(fid)
            else:
                images.append(self.load_image(path, what))
            paths.append(path)
        target = images[self.frame_ids.index(0)]
        assert target is not None
        images = [im if im is not None else Image.new('RGB', target.size) for im in images]
        data: dict[str, Any] = {
            'img': images, 'frame_ids': self.frame_ids, 'image_paths': paths,
            'index': info['index'], 'folder': info['folder'],
            'frame_index': info['frame_index'], 'side': info['side'],
            'ori_shape': (target.size[1], target.size[0]), 'flip': False,
            'K_norm': self.intrinsics_of(info), 'missing_frames': missing}
        if STEREO_FRAME_ID in self.frame_ids:
            b = info['stereo_baseline'] if self.stereo_baseline == 'calib' else \
                float(self.stereo_baseline)
            t = np.eye(4, dtype=np.float32)
            t[0, 3] = (-1.0 if SIDE_TO_CAM[info['side']] == 2 else 1.0) * b
            data['stereo_T'] = t
            data['stereo_baseline'] = b
        if self.gt_depth_path is not None:
            data['gt_depth'] = self.gt_depth(info['index'])
        mask = self.gt_dynamic_mask(info['index'])
        if mask is not None:
            if mask.shape != tuple(data['ori_shape']):
                raise KITTIDataError(f'dynamic mask {info["index"]} of '
                                     f'{self.gt_dynamic_mask_path!r} is {mask.shape}, but the '
                                     f'image of {self._line(info)} is {data["ori_shape"]}')
            data['gt_dynamic_mask'] = mask
        return data

    def prepare_data(self, idx: int) -> Any:
        return self.pipeline(self.get_data(idx))

    def __repr__(self) -> str:
        n = len(self) if self._fully_initialized else '?'
        return (f'KITTIRawDataset(ann_file={self.ann_file!r}, samples={n}, frame_ids='
                f'{self.frame_ids}, size={self.height}x{self.width}, scales={self.num_scales}, '
                f'test_mode={self.test_mode})')
