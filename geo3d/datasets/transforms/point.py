"""Point-cloud transforms acting on a dict of numpy arrays (one scene).

A sample is a dict with ``coord`` (N, 3) float32 and any number of other per-point fields
(first dimension N: ``color`` (N, 3) float32 in 0..255, ``normal`` (N, 3), ``segment`` (N,)
int64, ``instance`` (N,), ...). Every transform that drops or reorders points index-selects
ALL per-point fields, including ones it does not know about, so labels stay aligned.

Fields that are not per current point:

* ``origin_*`` (N_orig, ...): values on the original (un-voxelized) points, e.g.
  ``origin_segment``; ``inverse`` (N_orig,) maps every original point to its current row.
  Both are created by :class:`GridSample` with ``return_inverse``/``mode='test'``; points may
  not be dropped afterwards (that would break ``inverse``).
* non-array values (``name``, ``grid_size``) and the keys in :data:`SAMPLE_KEYS`.

Randomness: every random transform draws from a fresh ``np.random.Generator`` seeded per call
from numpy's global RNG (which mmengine seeds per dataloader worker), unless ``seed`` is given
at construction (then one private generator is used: a reproducible sequence) or a generator is
passed as ``rng`` to ``__call__``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
from mmengine.dataset import Compose

from geo3d.registry import TRANSFORMS
from geo3d.structures import grid_sample

__all__ = [
    'per_point_keys', 'select_points', 'build_pipeline', 'CenterShift', 'RandomRotate',
    'RandomScale', 'RandomFlip', 'RandomJitter', 'ChromaticAutoContrast', 'ChromaticTranslation',
    'ChromaticJitter', 'NormalizeColor', 'GridSample', 'SphereCrop', 'BoxCrop', 'Collect',
    'MultiViewGenerator',
]

ORIGIN_PREFIX = 'origin_'
INVERSE_KEY = 'inverse'
# Per-sample arrays that are never per point, whatever their first dimension.
SAMPLE_KEYS: frozenset[str] = frozenset({'grid_size', 'name', 'axis_align_matrix'})


# ============================================================================= helpers
def num_points(data: dict) -> int:
    return int(data['coord'].shape[0])


def per_point_keys(data: dict) -> list[str]:
    """Keys of the per-current-point arrays of ``data`` (first dim N = len(coord))."""
    n = num_points(data)
    return [k for k, v in data.items()
            if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim >= 1 and v.shape[0] == n
            and not k.startswith(ORIGIN_PREFIX) and k != INVERSE_KEY and k not in SAMPLE_KEYS]


def select_points(data: dict, index: np.ndarray) -> dict:
    """Index-select every per-point field with ``index`` (M,) (int or (N,) bool).

    Raises if ``data`` has an ``inverse`` (dropping points would invalidate it).
    """
    if INVERSE_KEY in data:
        raise ValueError('cannot drop or reorder points after GridSample(return_inverse=True) '
                         "/ mode='test': 'inverse' would no longer be valid; crop before it")
    keys = per_point_keys(data)
    out = dict(data)
    for k in keys:
        out[k] = data[k][index]
    return out


def build_pipeline(pipeline: Sequence[dict | Callable] | None) -> Compose:
    """``mmengine.dataset.Compose`` of transforms built from geo3d's TRANSFORMS registry."""
    return Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline or []])


def _is_float(v: np.ndarray | torch.Tensor) -> bool:
    if isinstance(v, torch.Tensor):
        return v.is_floating_point()
    return bool(np.issubdtype(v.dtype, np.floating))


def _bbox_center(coord: np.ndarray) -> np.ndarray:
    return (coord.min(0) + coord.max(0)) / 2.0


class RandomTransform:
    """Base of the random transforms: where the ``np.random.Generator`` of a call comes from."""

    def __init__(self, seed: int | None = None) -> None:
        self._generator = None if seed is None else np.random.default_rng(seed)

    def rng(self, rng: np.random.Generator | None = None) -> np.random.Generator:
        if rng is not None:
            return rng
        if self._generator is not None:
            return self._generator
        return np.random.default_rng(np.random.randint(np.iinfo(np.int64).max, dtype=np.int64))

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        return self.transform(data, self.rng(rng))

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items() if not k.startswith('_'))
        return f'{type(self).__name__}({args})'


# ============================================================================= geometry
@TRANSFORMS.register_module()
class CenterShift:
    """Centre x/y on the bounding box centre; with ``apply_z`` also move the lowest z to 0.

    Reads/writes ``coord`` (N, 3).
    """

    def __init__(self, apply_z: bool = True) -> None:
        self.apply_z = apply_z

    def __call__(self, data: dict) -> dict:
        coord = data['coord']
        if coord.shape[0] == 0:
            return data
        lo, hi = coord.min(0), coord.max(0)
        shift = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2,
                          lo[2] if self.apply_z else 0.0], dtype=np.float64)
        data['coord'] = (coord - shift).astype(np.float32)
        return data

    def __repr__(self) -> str:
        return f'CenterShift(apply_z={self.apply_z})'


def rotation_matrix(axis: Literal['x', 'y', 'z'], theta: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``theta`` radians about ``axis``."""
    c, s = math.cos(theta), math.sin(theta)
    if axis == 'x':
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == 'y':
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    if axis == 'z':
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")


@TRANSFORMS.register_module()
class RandomRotate(RandomTransform):
    """With probability ``p`` rotate about ``axis`` by ``U(angle) * pi`` radians.

    The rotation is about ``center`` (default: the bounding-box centre). Reads/writes ``coord``
    (N, 3) and ``normal`` (N, 3) (rotated, not shifted) when present.
    """

    def __init__(self, angle: Sequence[float] = (-1.0, 1.0), axis: Literal['x', 'y', 'z'] = 'z',
                 center: Sequence[float] | None = None, p: float = 1.0,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        rotation_matrix(axis, 0.0)  # validates axis
        self.angle = tuple(angle)
        self.axis = axis
        self.center = None if center is None else np.asarray(center, dtype=np.float64)
        self.p = p

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p or data['coord'].shape[0] == 0:
            return data
        theta = rng.uniform(self.angle[0], self.angle[1]) * math.pi
        rot = rotation_matrix(self.axis, theta)
        coord = data['coord'].astype(np.float64)
        center = _bbox_center(coord) if self.center is None else self.center
        data['coord'] = ((coord - center) @ rot.T + center).astype(np.float32)
        if 'normal' in data:
            data['normal'] = (data['normal'].astype(np.float64) @ rot.T).astype(np.float32)
        return data


@TRANSFORMS.register_module()
class RandomScale(RandomTransform):
    """Multiply ``coord`` by ``U(scale)`` (one factor, or one per axis if ``anisotropic``).

    Scales about the origin, so centre the cloud first to keep its centroid. With an
    anisotropic scale ``normal`` is transformed by the inverse scale and renormalised.
    Reads/writes ``coord`` (N, 3), ``normal`` (N, 3).
    """

    def __init__(self, scale: Sequence[float] = (0.9, 1.1), anisotropic: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        self.scale = tuple(scale)
        self.anisotropic = anisotropic

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        s = rng.uniform(self.scale[0], self.scale[1], size=3 if self.anisotropic else 1)
        data['coord'] = (data['coord'] * s).astype(np.float32)
        if self.anisotropic and 'normal' in data:
            n = data['normal'] / s
            norm = np.linalg.norm(n, axis=1, keepdims=True)
            data['normal'] = (n / np.maximum(norm, 1e-12)).astype(np.float32)
        return data


@TRANSFORMS.register_module()
class RandomFlip(RandomTransform):
    """Mirror x and (independently) y through 0, each with probability ``p``.

    Reads/writes ``coord`` (N, 3), ``normal`` (N, 3).
    """

    def __init__(self, p: float = 0.5, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = p

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        for axis in (0, 1):
            if rng.random() < self.p:
                for key in ('coord', 'normal'):
                    if key in data:
                        data[key] = data[key].copy()
                        data[key][:, axis] = -data[key][:, axis]
        return data


@TRANSFORMS.register_module()
class RandomJitter(RandomTransform):
    """Add per-point Gaussian noise ``N(0, sigma)`` clipped to ``[-clip, clip]`` to ``coord``."""

    def __init__(self, sigma: float = 0.005, clip: float = 0.02, seed: int | None = None) -> None:
        super().__init__(seed)
        if clip <= 0:
            raise ValueError(f'clip must be positive, got {clip}')
        self.sigma = sigma
        self.clip = clip

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        noise = np.clip(self.sigma * rng.standard_normal(data['coord'].shape),
                        -self.clip, self.clip)
        data['coord'] = (data['coord'] + noise).astype(np.float32)
        return data


# ============================================================================= colour
@TRANSFORMS.register_module()
class ChromaticAutoContrast(RandomTransform):
    """With probability ``p`` blend ``color`` with its per-channel min-max stretch to 0..255.

    ``blend_factor`` None draws the blend weight from U(0, 1). Reads/writes ``color`` (N, 3)
    in 0..255.
    """

    def __init__(self, p: float = 0.2, blend_factor: float | None = None,
                 seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = p
        self.blend_factor = blend_factor

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p or data['color'].shape[0] == 0:
            return data
        color = data['color'].astype(np.float64)
        lo, hi = color.min(0, keepdims=True), color.max(0, keepdims=True)
        span = hi - lo
        contrast = np.where(span > 0, (color - lo) * 255.0 / np.where(span > 0, span, 1.0),
                            color)
        blend = rng.random() if self.blend_factor is None else self.blend_factor
        data['color'] = ((1 - blend) * color + blend * contrast).astype(np.float32)
        return data


@TRANSFORMS.register_module()
class ChromaticTranslation(RandomTransform):
    """With probability ``p`` add one random RGB offset in ``±ratio * 255`` to all points.

    Reads/writes ``color`` (N, 3), clipped to 0..255.
    """

    def __init__(self, p: float = 0.95, ratio: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = p
        self.ratio = ratio

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p:
            return data
        shift = (rng.random(3) - 0.5) * 2 * 255 * self.ratio
        data['color'] = np.clip(data['color'] + shift, 0, 255).astype(np.float32)
        return data


@TRANSFORMS.register_module()
class ChromaticJitter(RandomTransform):
    """With probability ``p`` add per-point Gaussian noise ``N(0, std * 255)`` to ``color``.

    Reads/writes ``color`` (N, 3), clipped to 0..255.
    """

    def __init__(self, p: float = 0.95, std: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.p = p
        self.std = std

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.p:
            return data
        noise = rng.standard_normal(data['color'].shape) * self.std * 255
        data['color'] = np.clip(data['color'] + noise, 0, 255).astype(np.float32)
        return data


@TRANSFORMS.register_module()
class NormalizeColor:
    """``color`` (N, 3) from 0..255 to [-1, 1] float32."""

    def __call__(self, data: dict) -> dict:
        data['color'] = (np.asarray(data['color'], dtype=np.float32) / 127.5 - 1.0)
        return data

    def __repr__(self) -> str:
        return 'NormalizeColor()'


# ============================================================================= voxelization
@TRANSFORMS.register_module()
class GridSample(RandomTransform):
    """Voxelize at ``grid_size`` with :func:`geo3d.structures.grid_sample`: one row per voxel.

    ``sample='random'`` keeps one uniformly random point per voxel, ``'first'`` the first one;
    in both every per-point field is taken from that point. ``sample='mean'`` averages the
    fields named in ``keys`` over the voxel and takes every other per-point field (labels) from
    the voxel's first point.

    Writes ``grid_coord`` (M, 3) int64 (``floor(coord / grid_size)`` minus its minimum; if
    ``return_grid_coord``) and ``grid_size``. With ``mode='test'`` or ``return_inverse``, also
    ``inverse`` (N_orig,) int64 mapping every original point to its voxel row and
    ``origin_<key>`` (N_orig, ...) copies of the un-voxelized fields in ``origin_keys`` (those
    present). Applied to a sample that already has ``inverse``, the maps are composed.
    """

    def __init__(self, grid_size: float = 0.02, mode: Literal['train', 'test'] = 'train',
                 sample: Literal['random', 'mean', 'first'] = 'random',
                 keys: Sequence[str] = ('coord', 'color', 'normal'),
                 return_grid_coord: bool = True, return_inverse: bool = False,
                 origin_keys: Sequence[str] = ('segment',), seed: int | None = None) -> None:
        super().__init__(seed)
        if grid_size <= 0:
            raise ValueError(f'grid_size must be positive, got {grid_size}')
        if mode not in ('train', 'test'):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if sample not in ('random', 'mean', 'first'):
            raise ValueError(f"sample must be 'random', 'mean' or 'first', got {sample!r}")
        self.grid_size = grid_size
        self.mode = mode
        self.sample = sample
        self.keys = tuple(keys)
        self.return_grid_coord = return_grid_coord
        self.return_inverse = return_inverse or mode == 'test'
        self.origin_keys = tuple(origin_keys)

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        coord = torch.from_numpy(np.ascontiguousarray(data['coord'], dtype=np.float32))
        gen = None
        if self.sample == 'random':
            gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
        res = grid_sample(coord, self.grid_size, None,
                          mode='random' if self.sample == 'random' else 'first', generator=gen)
        index = res.index.numpy()
        out = dict(data)
        for k in per_point_keys(data):
            v = data[k]
            if self.sample == 'mean' and k in self.keys and _is_float(v):
                mean = res.reduce(torch.as_tensor(np.asarray(v, dtype=np.float64))).numpy()
                out[k] = mean.astype(np.float32)
            else:
                out[k] = v[index]
        if self.return_grid_coord:
            out['grid_coord'] = res.grid_coord.numpy()
        out['grid_size'] = self.grid_size
        if self.return_inverse:
            inverse = res.inverse.numpy()
            if INVERSE_KEY in data:
                out[INVERSE_KEY] = inverse[data[INVERSE_KEY]]
            else:
                out[INVERSE_KEY] = inverse
                for k in self.origin_keys:
                    if k in data:
                        out[ORIGIN_PREFIX + k] = data[k]
        elif INVERSE_KEY in data:
            out[INVERSE_KEY] = res.inverse.numpy()[data[INVERSE_KEY]]
        return out


# ============================================================================= crops
@TRANSFORMS.register_module()
class SphereCrop(RandomTransform):
    """Keep at most ``point_max`` points: the ones nearest to a centre.

    ``sample_rate`` (if given) sets the budget to ``ceil(sample_rate * N)`` instead. The centre
    is a random point (``mode='random'``) or the bounding-box centre (``'center'``). Kept
    points stay in their original order; all per-point fields are selected alike.
    """

    def __init__(self, point_max: int = 80000, sample_rate: float | None = None,
                 mode: Literal['random', 'center'] = 'random', seed: int | None = None) -> None:
        super().__init__(seed)
        if mode not in ('random', 'center'):
            raise ValueError(f"mode must be 'random' or 'center', got {mode!r}")
        if point_max < 1:
            raise ValueError(f'point_max must be >= 1, got {point_max}')
        self.point_max = point_max
        self.sample_rate = sample_rate
        self.mode = mode

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        coord = data['coord']
        n = coord.shape[0]
        budget = self.point_max if self.sample_rate is None \
            else max(1, math.ceil(self.sample_rate * n))
        if n <= budget:
            return data
        center = coord[rng.integers(n)] if self.mode == 'random' else _bbox_center(coord)
        dist = np.square(coord.astype(np.float64) - center).sum(1)
        keep = np.sort(np.argpartition(dist, budget - 1)[:budget])
        return select_points(data, keep)


@TRANSFORMS.register_module()
class BoxCrop(RandomTransform):
    """Keep the points inside an axis-aligned box.

    Args:
        size: box edge lengths (x, y, z) in metres, or a fraction of the scene's extent per
            axis if ``relative``; a single number for a cube; None on an axis = no limit.
        relative: interpret ``size`` as fractions of the bounding-box extent.
        center: ``'random'`` (centred on a random point, so the box is never empty) or
            ``'center'`` (the bounding-box centre).
    """

    def __init__(self, size: float | Sequence[float | None] = (2.0, 2.0, None),
                 relative: bool = False, center: Literal['random', 'center'] = 'random',
                 seed: int | None = None) -> None:
        super().__init__(seed)
        size = [size] * 3 if isinstance(size, (int, float)) else list(size)
        if len(size) != 3 or any(s is not None and s <= 0 for s in size):
            raise ValueError(f'size must be 3 positive numbers or None, got {size}')
        if center not in ('random', 'center'):
            raise ValueError(f"center must be 'random' or 'center', got {center!r}")
        self.size = tuple(size)
        self.relative = relative
        self.center = center

    def transform(self, data: dict, rng: np.random.Generator) -> dict:
        coord = data['coord']
        n = coord.shape[0]
        if n == 0:
            return data
        c = coord[rng.integers(n)] if self.center == 'random' else _bbox_center(coord)
        extent = coord.max(0) - coord.min(0)
        keep = np.ones(n, dtype=bool)
        for axis, s in enumerate(self.size):
            if s is None:
                continue
            half = (s * extent[axis] if self.relative else s) / 2.0
            keep &= np.abs(coord[:, axis] - c[axis]) <= half
        return select_points(data, np.nonzero(keep)[0])


# ============================================================================= packing
@TRANSFORMS.register_module()
class Collect:
    """Keep ``keys`` and build ``feat`` (N, C) float32 = concatenation of ``feat_keys``.

    Non-array ``meta_keys`` (``name``, ``grid_size``) are kept when present. A missing entry of
    ``keys`` or ``feat_keys`` raises ``KeyError``.
    """

    def __init__(self, keys: Sequence[str] = ('coord', 'grid_coord', 'segment'),
                 feat_keys: Sequence[str] = ('color', 'normal'),
                 meta_keys: Sequence[str] = ('name', 'grid_size')) -> None:
        self.keys = tuple(keys)
        self.feat_keys = tuple(feat_keys)
        self.meta_keys = tuple(meta_keys)

    def __call__(self, data: dict) -> dict:
        missing = [k for k in self.keys + self.feat_keys if k not in data]
        if missing:
            raise KeyError(f'Collect: sample has no {missing}; it has {sorted(data)}')
        out = {k: data[k] for k in self.keys}
        if self.feat_keys:
            n = num_points(data)
            out['feat'] = np.concatenate(
                [np.asarray(data[k], dtype=np.float32).reshape(n, -1) for k in self.feat_keys], 1)
        elif 'feat' in data:
            out['feat'] = data['feat']
        for k in self.meta_keys:
            if k in data:
                out[k] = data[k]
        return out

    def __repr__(self) -> str:
        return f'Collect(keys={self.keys}, feat_keys={self.feat_keys})'


@TRANSFORMS.register_module()
class MultiViewGenerator:
    """Several independently augmented views of one sample, with point correspondences.

    Each view starts from a copy of the per-point fields in ``keys`` (default: all) plus
    ``index`` = arange(N), runs ``view_pipeline`` (random transforms draw afresh per view;
    include crops so views overlap only partly), and ``index`` — carried through crops and
    grid sampling like any per-point field — becomes ``view{i}_index``: for every row of view
    ``i`` the index of the ORIGINAL point (row of the input sample) it came from. With
    ``raw_coord`` each view also gets ``raw_coord`` (n_i, 3), the un-augmented coordinates
    ``coord[view{i}_index]`` of the input, from which a method can match points across views.

    Output: ``view0`` ... ``view{num_views-1}`` (dicts), ``view{i}_index`` (n_i,) int64, and the
    input's non-per-point entries (``name``, ...). If the view pipeline ends with
    :class:`Collect`, list ``'index'`` in its keys.
    """

    INDEX_KEY = 'index'

    def __init__(self, view_pipeline: Sequence[dict | Callable], num_views: int = 2,
                 keys: Sequence[str] | None = None, raw_coord: bool = True) -> None:
        if num_views < 1:
            raise ValueError(f'num_views must be >= 1, got {num_views}')
        self.pipeline = build_pipeline(view_pipeline)
        self.num_views = num_views
        self.keys = None if keys is None else tuple(keys)
        self.raw_coord = raw_coord

    def __call__(self, data: dict) -> dict:
        point_keys = per_point_keys(data)
        keys = point_keys if self.keys is None else list(self.keys)
        missing = [k for k in keys if k not in point_keys]
        if missing:
            raise KeyError(f'MultiViewGenerator: no per-point field(s) {missing} in the sample')
        if self.INDEX_KEY in keys:
            raise KeyError(f'MultiViewGenerator: the sample already has a {self.INDEX_KEY!r} field')
        n = num_points(data)
        out: dict[str, Any] = {k: v for k, v in data.items()
                               if k not in point_keys and not k.startswith(ORIGIN_PREFIX)
                               and k != INVERSE_KEY}
        for i in range(self.num_views):
            view = {k: data[k].copy() for k in keys}
            view[self.INDEX_KEY] = np.arange(n, dtype=np.int64)
            view = self.pipeline(view)
            if view is None or self.INDEX_KEY not in view:
                raise KeyError(f"MultiViewGenerator: the view pipeline dropped {self.INDEX_KEY!r}"
                               " (add it to the keys of its Collect)")
            index = np.asarray(view.pop(self.INDEX_KEY), dtype=np.int64)
            if self.raw_coord:
                view['raw_coord'] = data['coord'][index]
            out[f'view{i}'] = view
            out[f'view{i}_index'] = index
        return out

    def __repr__(self) -> str:
        return (f'MultiViewGenerator(num_views={self.num_views}, keys={self.keys}, '
                f'view_pipeline={self.pipeline})')
