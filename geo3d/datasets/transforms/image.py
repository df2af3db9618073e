"""Multi-frame image transforms for self-supervised depth (one sample = several frames).

A sample of temporally adjacent frames (and the stereo partner) must be augmented
*consistently*: one flip decision, one colour-jitter draw, one resize for all of its frames,
as Monodepth2's ``MonoDataset`` intends (Godard et al., ICCV 2019,
https://github.com/nianticlabs/monodepth2). Newer torchvision breaks the reference's
``ColorJitter.get_params(...)`` call; the usual fix (instantiating ``ColorJitter``) silently
draws *different* jitter per frame. Here parameters are sampled once
(:func:`sample_color_jitter_params`) and applied with ``torchvision.transforms.v2.functional``.

The transforms act on a dict (the dataset's ``results``):

``img``        list of F PIL images (or (3, H, W) uint8 tensors), native size, before
               :class:`MultiFrameResizePyramid`; frame order = the dataset's ``frame_ids``.
``K_norm``     (4, 4) float64 normalised intrinsics (row 0 / W, row 1 / H) of the frames.
``stereo_T``   (4, 4) float32 target -> stereo-partner camera transform (only with frame 's').
``gt_depth``   (H, W) float32 ground-truth depth at the raw size (optional).
``gt_dynamic_mask`` (H, W) bool moving-object mask at the raw size (optional, demo drives).
``flip``       bool, set by :class:`MultiFrameRandomFlip`.
``color``      list over scales s of (F, 3, H // 2**s, W // 2**s) float32 in [0, 1] (resized).
``color_aug``  the same, colour-jittered (what the networks see; losses use ``color``).
``K``/``inv_K`` (S, 4, 4) float32 pixel intrinsics of each scale and their inverses.

Randomness: as the point transforms (:class:`~geo3d.datasets.transforms.point.RandomTransform`),
every random transform draws from a fresh generator seeded from numpy's global RNG (seeded per
dataloader worker by mmengine) unless ``seed`` is given (a private reproducible stream) or a
generator is passed to ``__call__``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from geo3d.registry import TRANSFORMS
from geo3d.structures.camera import scale_intrinsics

from .point import RandomTransform

__all__ = [
    'ColorJitterParams', 'sample_color_jitter_params', 'apply_color_jitter', 'flip_intrinsics',
    'intrinsics_pyramid_stack', 'resize_pyramid', 'MultiFrameRandomFlip',
    'MultiFrameResizePyramid', 'MultiFrameColorJitter', 'PackMultiFrameInputs',
]

_INTERP = {'nearest': InterpolationMode.NEAREST, 'bilinear': InterpolationMode.BILINEAR,
           'bicubic': InterpolationMode.BICUBIC, 'lanczos': InterpolationMode.LANCZOS}
_JITTER_NAMES = ('brightness', 'contrast', 'saturation', 'hue')


# ============================================================================= colour jitter
@dataclass(frozen=True)
class ColorJitterParams:
    """One colour-jitter draw (torchvision ``ColorJitter`` semantics).

    ``order`` is a permutation of ``(0, 1, 2, 3)`` = brightness, contrast, saturation, hue, the
    order in which the factors are applied; a ``None`` factor is skipped.
    """
    order: tuple[int, ...]
    brightness: float | None
    contrast: float | None
    saturation: float | None
    hue: float | None


def _range(name: str, value: float | Sequence[float] | None, center: float,
           bound: tuple[float, float]) -> tuple[float, float] | None:
    """torchvision's ``ColorJitter`` argument rule: x -> (center - x, center + x) clipped to
    ``bound``; a pair is used as is; None or the identity range (center, center) -> None."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f'{name} must be non-negative, got {value}')
        lo, hi = center - value, center + value
        lo = max(lo, bound[0])
    else:
        if len(value) != 2:
            raise ValueError(f'{name} must be a number or a (min, max) pair, got {value!r}')
        lo, hi = float(value[0]), float(value[1])
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f'{name} range ({lo}, {hi}) must satisfy {bound[0]} <= min <= max <= '
                         f'{bound[1]}')
    return None if lo == hi == center else (lo, hi)


def sample_color_jitter_params(rng: np.random.Generator,
                               brightness: float | Sequence[float] | None = (0.8, 1.2),
                               contrast: float | Sequence[float] | None = (0.8, 1.2),
                               saturation: float | Sequence[float] | None = (0.8, 1.2),
                               hue: float | Sequence[float] | None = (-0.1, 0.1)
                               ) -> ColorJitterParams:
    """Draw one :class:`ColorJitterParams`: a random application order and one uniform factor
    per enabled adjustment. Defaults are Monodepth2's (0.8-1.2 for brightness, contrast and
    saturation, +-0.1 for hue)."""
    ranges = (_range('brightness', brightness, 1.0, (0.0, math.inf)),
              _range('contrast', contrast, 1.0, (0.0, math.inf)),
              _range('saturation', saturation, 1.0, (0.0, math.inf)),
              _range('hue', hue, 0.0, (-0.5, 0.5)))
    order = tuple(int(i) for i in rng.permutation(4))
    values = [None if r is None else float(rng.uniform(r[0], r[1])) for r in ranges]
    return ColorJitterParams(order, *values)


def apply_color_jitter(images: Tensor, params: ColorJitterParams) -> Tensor:
    """Apply one jitter draw to every image of ``images``.

    Args:
        images: (..., 3, H, W) float in [0, 1] (or uint8); all leading dims get the same draw.
        params: from :func:`sample_color_jitter_params`.

    Returns:
        same shape and dtype. Contrast uses each image's own mean grey level, as per-frame
        ``torchvision.transforms.ColorJitter`` does.
    """
    if not isinstance(images, Tensor) or images.ndim < 3 or images.shape[-3] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f'images must be a (..., 3, H, W) tensor, got {shape}')
    fns = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    out = images
    for i in params.order:
        value = getattr(params, _JITTER_NAMES[i])
        if value is not None:
            out = fns[i](out, value)
    return out


# ============================================================================= geometry
def flip_intrinsics(K_norm: np.ndarray | Tensor) -> np.ndarray | Tensor:
    """Normalised intrinsics of the horizontally mirrored image.

    Mirroring maps normalised image coordinates ``x -> 1 - x`` and camera points
    ``X -> -X``, so ``K' = A K D`` with ``A = [[-1, 0, 1], [0, 1, 0], [0, 0, 1]]`` and
    ``D = diag(-1, 1, 1)``: ``cx' = 1 - cx`` and the skew changes sign, the focal lengths stay.
    In pixels of any pyramid level (``scale_intrinsics`` multiplies by the level width)
    this is ``cx' = W - cx``: exact for continuous image coordinates, where a pixel ``i`` covers
    ``[i, i + 1)``. Monodepth2's centred ``cx = 0.5`` is unchanged, matching the reference
    (which never updates K when flipping).

    Args:
        K_norm: (..., 3, 3) or (..., 4, 4) normalised intrinsics.
    """
    if K_norm.shape[-2:] not in ((3, 3), (4, 4)):
        raise ValueError(f'K_norm must be (..., 3, 3) or (..., 4, 4), got {tuple(K_norm.shape)}')
    out = K_norm.clone() if isinstance(K_norm, Tensor) else np.array(K_norm, copy=True)
    out[..., 0, 1] = -K_norm[..., 0, 1]
    out[..., 0, 2] = 1 - K_norm[..., 0, 2]
    return out


def intrinsics_pyramid_stack(K_norm: np.ndarray | Tensor, height: int, width: int,
                             num_scales: int = 4) -> tuple[Tensor, Tensor]:
    """Pixel intrinsics of every pyramid level and their inverses.

    Level ``s`` has size ``(height // 2**s, width // 2**s)``; ``K_s`` = ``K_norm`` with row 0
    times ``width // 2**s`` and row 1 times ``height // 2**s``
    (:func:`geo3d.structures.camera.scale_intrinsics`, Monodepth2's loader).

    Args:
        K_norm: (4, 4) (or (3, 3)) normalised intrinsics.

    Returns:
        ``K`` (S, 4, 4) and ``inv_K`` (S, 4, 4), float32 (inverted in float64).
    """
    k = torch.as_tensor(np.asarray(K_norm, dtype=np.float64))
    Ks = torch.stack([scale_intrinsics(k, height, width, s) for s in range(num_scales)])
    return Ks.float(), torch.linalg.inv(Ks).float()


def _to_float_image(img: Image.Image | Tensor) -> Tensor:
    """(3, H, W) float32 in [0, 1] from an RGB PIL image or a uint8/float (3, H, W) tensor."""
    t = TF.pil_to_tensor(img.convert('RGB')) if isinstance(img, Image.Image) else img
    return TF.to_dtype(t, torch.float32, scale=True).as_subclass(Tensor)


def resize_pyramid(images: Sequence[Image.Image | Tensor], height: int, width: int,
                   num_scales: int = 4, interpolation: str = 'lanczos') -> list[Tensor]:
    """Resize every frame to ``(height, width)`` and build the scale pyramid.

    As Monodepth2, level 0 is resized from the native image and level ``s`` from level
    ``s - 1``, to ``(height // 2**s, width // 2**s)``; PIL images are resized as PIL images
    (``'lanczos'`` = the reference's ``ANTIALIAS``) before conversion to float.

    Args:
        images: F RGB PIL images or (3, H, W) tensors (tensors do not support ``'lanczos'``).

    Returns:
        list of ``num_scales`` float32 tensors (F, 3, height // 2**s, width // 2**s) in [0, 1].
    """
    if interpolation not in _INTERP:
        raise ValueError(f'interpolation must be one of {sorted(_INTERP)}, got {interpolation!r}')
    if num_scales < 1 or height // 2 ** (num_scales - 1) < 1 or width // 2 ** (num_scales - 1) < 1:
        raise ValueError(f'num_scales={num_scales} does not fit a {height}x{width} input')
    if not images:
        raise ValueError('resize_pyramid needs at least one image')
    mode = _INTERP[interpolation]
    levels: list[list[Tensor]] = [[] for _ in range(num_scales)]
    for img in images:
        if isinstance(img, Tensor) and mode == InterpolationMode.LANCZOS:
            raise ValueError("'lanczos' resizing needs PIL images; use 'bilinear' or 'bicubic' "
                             'for tensors')
        cur = img
        for s in range(num_scales):
            size = [height // 2 ** s, width // 2 ** s]
            cur = TF.resize(cur, size, interpolation=mode, antialias=True)
            levels[s].append(_to_float_image(cur))
    return [torch.stack(level) for level in levels]


def _flip_image(img: Image.Image | Tensor) -> Image.Image | Tensor:
    if isinstance(img, Image.Image):
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img.flip(-1)


# ============================================================================= transforms
@TRANSFORMS.register_module()
class MultiFrameRandomFlip(RandomTransform):
    """Mirror every frame of the sample left-right, with probability ``prob``.

    Reads/writes ``img`` (list), ``color``/``color_aug`` (lists of (F, 3, H, W), if already
    resized), ``gt_depth`` and ``gt_dynamic_mask`` (H, W), ``K_norm`` (:func:`flip_intrinsics`,
    unless ``flip_principal_point=False``: then K is left untouched exactly as Monodepth2 does,
    which is only right for a centred principal point) and ``stereo_T`` (the x translation
    changes sign: a mirrored left image is a right image, Monodepth2's ``baseline_sign``). Sets
    ``flip``.
    """

    def __init__(self, prob: float = 0.5, flip_principal_point: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.flip_principal_point = flip_principal_point

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        do_flip = bool(rng.random() < self.prob)
        data['flip'] = bool(data.get('flip', False)) ^ do_flip
        if not do_flip:
            return data
        if 'img' in data:
            data['img'] = [_flip_image(im) for im in data['img']]
        for key in ('color', 'color_aug'):
            if key in data:
                data[key] = [t.flip(-1) for t in data[key]]
        for key in ('gt_depth', 'gt_dynamic_mask'):
            if data.get(key) is not None:
                data[key] = np.ascontiguousarray(np.asarray(data[key])[..., ::-1])
        if 'K_norm' in data and self.flip_principal_point:
            data['K_norm'] = flip_intrinsics(data['K_norm'])
        if 'stereo_T' in data:
            t = np.array(data['stereo_T'], copy=True)
            t[0, 3] = -t[0, 3]
            data['stereo_T'] = t
        return data


@TRANSFORMS.register_module()
class MultiFrameResizePyramid:
    """Resize ``img`` (F frames) to ``(height, width)`` and its ``num_scales``-level pyramid
    (:func:`resize_pyramid`) into ``color``; build ``K``/``inv_K`` (S, 4, 4) from ``K_norm``
    (:func:`intrinsics_pyramid_stack`). ``img`` is removed."""

    def __init__(self, height: int = 192, width: int = 640, num_scales: int = 4,
                 interpolation: str = 'lanczos') -> None:
        if height < 1 or width < 1:
            raise ValueError(f'height and width must be positive, got {height}x{width}')
        if interpolation not in _INTERP:
            raise ValueError(f'interpolation must be one of {sorted(_INTERP)}, got '
                             f'{interpolation!r}')
        if num_scales < 1 or height // 2 ** (num_scales - 1) < 1 or \
                width // 2 ** (num_scales - 1) < 1:
            raise ValueError(f'num_scales={num_scales} does not fit a {height}x{width} input')
        self.height, self.width = height, width
        self.num_scales = num_scales
        self.interpolation = interpolation

    def __call__(self, data: dict) -> dict:
        if 'img' not in data:
            raise KeyError("MultiFrameResizePyramid needs 'img' (a list of frames)")
        data['color'] = resize_pyramid(data.pop('img'), self.height, self.width,
                                       self.num_scales, self.interpolation)
        if 'K_norm' in data:
            data['K'], data['inv_K'] = intrinsics_pyramid_stack(
                data['K_norm'], self.height, self.width, self.num_scales)
        return data

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(height={self.height}, width={self.width}, '
                f'num_scales={self.num_scales}, interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class MultiFrameColorJitter(RandomTransform):
    """With probability ``prob`` draw ONE colour jitter and apply it to every frame and scale
    of ``color`` into ``color_aug``; otherwise ``color_aug`` is ``color`` (same tensors).

    Ranges follow torchvision ``ColorJitter`` (a number x means (1 - x, 1 + x), hue (-x, x));
    defaults are Monodepth2's. The draw is stored as ``color_aug_params`` (None if not applied).
    """

    def __init__(self, prob: float = 0.5,
                 brightness: float | Sequence[float] | None = (0.8, 1.2),
                 contrast: float | Sequence[float] | None = (0.8, 1.2),
                 saturation: float | Sequence[float] | None = (0.8, 1.2),
                 hue: float | Sequence[float] | None = (-0.1, 0.1),
                 seed: int | None = None) -> None:
        super().__init__(seed)
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        # validate the ranges once, at construction
        sample_color_jitter_params(np.random.default_rng(0), brightness, contrast, saturation,
                                   hue)
        self.prob = prob
        self.brightness, self.contrast = brightness, contrast
        self.saturation, self.hue = saturation, hue

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        if 'color' not in data:
            raise KeyError("MultiFrameColorJitter needs 'color' (run MultiFrameResizePyramid "
                           'first)')
        if rng.random() < self.prob:
            params = sample_color_jitter_params(rng, self.brightness, self.contrast,
                                                self.saturation, self.hue)
            data['color_aug'] = [apply_color_jitter(c, params) for c in data['color']]
        else:
            params = None
            data['color_aug'] = list(data['color'])
        data['color_aug_params'] = params
        return data


@TRANSFORMS.register_module()
class PackMultiFrameInputs:
    """Pack a multi-frame sample as ``{'inputs': dict, 'data_samples': BaseDataElement}``.

    ``inputs``: ``color``, ``color_aug`` (lists over scales of (F, 3, H_s, W_s)), ``K``,
    ``inv_K`` (S, 4, 4), and ``stereo_T`` (4, 4) when present. ``color_aug`` defaults to
    ``color``. ``data_samples``: a :class:`~mmengine.structures.BaseDataElement` with
    ``gt_depth`` (1, H, W) float32 tensor when the sample has one, and the ``meta_keys`` present
    in the sample as metainfo; ``gt_dynamic_mask`` (1, H, W) bool tensor likewise. Both mmengine
    collates keep data elements as a list, so batches of ground truth of different sizes work.
    """

    def __init__(self, meta_keys: Sequence[str] = (
            'index', 'folder', 'frame_index', 'side', 'frame_ids', 'image_paths', 'ori_shape',
            'flip', 'color_aug_params', 'K_norm', 'stereo_baseline', 'missing_frames')) -> None:
        self.meta_keys = tuple(meta_keys)

    def __call__(self, data: dict) -> dict:
        for key in ('color', 'K', 'inv_K'):
            if key not in data:
                raise KeyError(f'PackMultiFrameInputs needs {key!r} (run MultiFrameResizePyramid '
                               'first)')
        inputs: dict[str, Any] = {'color': data['color'],
                                  'color_aug': data.get('color_aug', data['color']),
                                  'K': data['K'], 'inv_K': data['inv_K']}
        if data.get('stereo_T') is not None:
            inputs['stereo_T'] = torch.as_tensor(np.asarray(data['stereo_T'], np.float32))
        sample = BaseDataElement(metainfo={k: data[k] for k in self.meta_keys if k in data})
        if data.get('gt_depth') is not None:
            sample.gt_depth = torch.from_numpy(
                np.ascontiguousarray(data['gt_depth'], dtype=np.float32))[None]
        if data.get('gt_dynamic_mask') is not None:
            sample.gt_dynamic_mask = torch.from_numpy(
                np.ascontiguousarray(data['gt_dynamic_mask'], dtype=bool))[None]
        return {'inputs': inputs, 'data_samples': sample}

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
