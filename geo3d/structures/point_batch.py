"""PointBatch: the one batch structure every point model in geo3d consumes.

Points of ``B`` samples are concatenated; ``offset`` holds the cumulative end index of every
sample (Pointcept's convention): sample ``i`` owns rows ``offset[i-1]:offset[i]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from .grid import GridSampleResult, PoolingMap, grid_sample, pooling_map


def offset_to_batch(offset: Tensor) -> Tensor:
    """(B,) cumulative ends -> (N,) sample index of every row."""
    counts = torch.diff(offset, prepend=offset.new_zeros(1))
    return torch.repeat_interleave(torch.arange(offset.shape[0], device=offset.device), counts)


def batch_to_offset(batch: Tensor, batch_size: int | None = None) -> Tensor:
    """(N,) sorted sample index -> (B,) cumulative ends."""
    n = int(batch.max()) + 1 if batch_size is None else batch_size
    return torch.bincount(batch, minlength=n).cumsum(0)


def _as_tensor(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


# Keys whose values index rows of the (voxelized) point set of their own sample: collate shifts
# them by the number of rows of the preceding samples so they stay valid in the batch.
INDEX_KEYS: tuple[str, ...] = ('inverse',)
# Keys that live on the original (un-voxelized) points: concatenated, with their own offsets.
ORIGIN_PREFIX = 'origin_'


@dataclass
class PointBatch:
    """A batch of point clouds.

    Attributes:
        coord: (N, 3) float coordinates.
        feat: (N, C) float input features.
        offset: (B,) int64 cumulative sample ends.
        grid_coord: (N, 3) int64 voxel coordinates, or None before voxelization.
        grid_size: voxel size that produced ``grid_coord`` (None if unknown).
        extras: named per-row tensors, e.g. ``segment`` (N,), ``instance`` (N,); keys
            starting with ``origin_`` are per ORIGINAL point (their offsets in ``origin_offset``),
            ``inverse`` (N_orig,) maps original points to rows; ``meta`` holds non-tensor data.
    """

    coord: Tensor
    feat: Tensor
    offset: Tensor
    grid_coord: Tensor | None = None
    grid_size: float | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)
    meta: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.coord.shape[0]
        if self.coord.ndim != 2 or self.coord.shape[1] != 3:
            raise ValueError(f'coord must be (N, 3), got {tuple(self.coord.shape)}')
        if self.feat.shape[0] != n:
            raise ValueError(f'feat has {self.feat.shape[0]} rows, coord has {n}')
        if self.grid_coord is not None and self.grid_coord.shape != (n, 3):
            raise ValueError(f'grid_coord must be ({n}, 3), got {tuple(self.grid_coord.shape)}')
        last = int(self.offset[-1]) if self.offset.ndim == 1 and self.offset.numel() else 0
        if self.offset.ndim != 1 or last != n:
            raise ValueError(f'offset must be (B,) cumulative ends ending at N={n}, '
                             f'got {self.offset.tolist()}')

    # ------------------------------------------------------------------ basic properties
    @property
    def batch_size(self) -> int:
        return int(self.offset.shape[0])

    @property
    def batch(self) -> Tensor:
        """(N,) sample index of every row."""
        return offset_to_batch(self.offset)

    @property
    def num_points(self) -> int:
        return int(self.coord.shape[0])

    @property
    def device(self) -> torch.device:
        return self.coord.device

    def __getitem__(self, key: str) -> Tensor:
        return self.extras[key]

    def __contains__(self, key: str) -> bool:
        return key in self.extras

    def to(self, device: torch.device | str, non_blocking: bool = False) -> 'PointBatch':
        def mv(t: Tensor) -> Tensor:
            return t.to(device, non_blocking=non_blocking)
        return PointBatch(
            coord=mv(self.coord), feat=mv(self.feat), offset=mv(self.offset),
            grid_coord=None if self.grid_coord is None else mv(self.grid_coord),
            grid_size=self.grid_size,
            extras={k: mv(v) if isinstance(v, Tensor) else v for k, v in self.extras.items()},
            meta=self.meta)

    def split(self) -> list[dict[str, Tensor]]:
        """Per-sample dicts of the row tensors (coord, feat, grid_coord and row extras)."""
        starts = torch.cat([self.offset.new_zeros(1), self.offset[:-1]]).tolist()
        ends = self.offset.tolist()
        out = []
        for s, e in zip(starts, ends):
            d = {'coord': self.coord[s:e], 'feat': self.feat[s:e]}
            if self.grid_coord is not None:
                d['grid_coord'] = self.grid_coord[s:e]
            for k, v in self.extras.items():
                if isinstance(v, Tensor) and v.shape[:1] == (self.num_points,) \
                        and not k.startswith(ORIGIN_PREFIX) and k not in INDEX_KEYS:
                    d[k] = v[s:e]
            out.append(d)
        return out

    # ------------------------------------------------------------------ construction
    @classmethod
    def collate(cls, samples: Sequence[Mapping[str, Any]],
                feat_keys: Iterable[str] | None = None) -> 'PointBatch':
        """Batch per-sample dicts.

        Every sample has ``coord`` (n_i, 3) and either ``feat`` (n_i, C) or the fields named in
        ``feat_keys`` (concatenated along channels, e.g. ``('color', 'normal')``). Arrays may be
        numpy or torch. Per-row fields (first dim n_i) are concatenated; ``inverse`` is shifted
        by the rows of the preceding samples; ``origin_*`` fields are concatenated with their own
        ``origin_offset``; non-array fields go to ``meta``.
        """
        if len(samples) == 0:
            raise ValueError('cannot collate an empty list of samples')
        coords, feats, grids, counts = [], [], [], []
        extras: dict[str, list[Tensor]] = {}
        origin_counts: list[int] = []
        metas: list[dict[str, Any]] = []
        grid_size = samples[0].get('grid_size')
        row_base = 0
        for i, s in enumerate(samples):
            coord = _as_tensor(s['coord']).float()
            n = coord.shape[0]
            if feat_keys is not None:
                feat = torch.cat([_as_tensor(s[k]).float().reshape(n, -1) for k in feat_keys], 1)
            elif 'feat' in s:
                feat = _as_tensor(s['feat']).float()
            else:
                raise KeyError(f'sample {i} has no "feat" and no feat_keys were given')
            coords.append(coord)
            feats.append(feat)
            if 'grid_coord' in s:
                grids.append(_as_tensor(s['grid_coord']).long())
            counts.append(n)
            meta: dict[str, Any] = {}
            n_origin = None
            for k, v in s.items():
                if k in ('coord', 'feat', 'grid_coord', 'grid_size'):
                    continue
                v = _as_tensor(v)
                if isinstance(v, Tensor) and v.ndim >= 1:
                    if k in INDEX_KEYS:
                        v = v.long() + row_base
                        n_origin = v.shape[0]
                    elif k.startswith(ORIGIN_PREFIX):
                        n_origin = v.shape[0]
                    elif v.shape[0] != n:
                        raise ValueError(f'sample {i}: field {k!r} has {v.shape[0]} rows, '
                                         f'coord has {n}')
                    extras.setdefault(k, []).append(v)
                elif k not in ('feat_keys',):
                    meta[k] = v
            origin_counts.append(n if n_origin is None else n_origin)
            metas.append(meta)
            row_base += n
        if grids and len(grids) != len(samples):
            raise ValueError('either all samples or none must have grid_coord')
        for k, vs in extras.items():
            if len(vs) != len(samples):
                raise ValueError(f'field {k!r} is missing in some samples')
        ex = {k: torch.cat(v, 0) for k, v in extras.items()}
        if any(k.startswith(ORIGIN_PREFIX) or k in INDEX_KEYS for k in ex):
            ex['origin_offset'] = torch.tensor(origin_counts, dtype=torch.long).cumsum(0)
        return cls(coord=torch.cat(coords), feat=torch.cat(feats),
                   offset=torch.tensor(counts, dtype=torch.long).cumsum(0),
                   grid_coord=torch.cat(grids) if grids else None, grid_size=grid_size,
                   extras=ex, meta=metas)

    # ------------------------------------------------------------------ voxel operations
    def grid_sample(self, grid_size: float, mode: Literal['mean', 'random', 'first'] = 'mean',
                    generator: torch.Generator | None = None
                    ) -> tuple['PointBatch', GridSampleResult]:
        """Voxelize the batch: one row per occupied voxel.

        ``mean`` averages coord, feat and float extras per voxel and takes integer extras
        (labels) from the voxel's first point; ``random``/``first`` keep one point per voxel.
        Returns the voxelized batch and the raw :class:`GridSampleResult`. The batch carries
        ``inverse`` and ``origin_offset``: the input rows are its original points (N,), unless
        the input already had an ``inverse``; then the maps are composed, ``origin_*`` fields
        are kept, and ``inverse`` (N_orig,) still maps the original points to the new rows.
        """
        res = grid_sample(self.coord, grid_size, self.batch, mode=mode, generator=generator)

        def take(v: Tensor) -> Tensor:
            if res.index is not None:
                return v[res.index]
            if v.is_floating_point():
                return res.reduce(v)
            first = torch.full((res.counts.shape[0],), v.shape[0], dtype=torch.long,
                               device=v.device)
            first = first.scatter_reduce(0, res.inverse,
                                         torch.arange(v.shape[0], device=v.device), 'amin')
            return v[first]

        n = self.num_points
        extras = {k: take(v) for k, v in self.extras.items()
                  if isinstance(v, Tensor) and v.shape[:1] == (n,)
                  and not k.startswith(ORIGIN_PREFIX) and k not in INDEX_KEYS}
        if 'inverse' in self.extras:
            # Already voxelized: keep the original points and compose the maps so that
            # ``inverse`` still goes from the ORIGINAL points to the new rows.
            extras.update({k: v for k, v in self.extras.items() if k.startswith(ORIGIN_PREFIX)})
            extras['inverse'] = res.inverse[self.extras['inverse']]
            extras.setdefault('origin_offset', self.offset)
        else:
            # This batch's rows become the original points.
            extras['inverse'] = res.inverse
            extras['origin_offset'] = self.offset
        out = PointBatch(coord=take(self.coord), feat=take(self.feat),
                         offset=batch_to_offset(res.batch, self.batch_size),
                         grid_coord=res.grid_coord, grid_size=grid_size, extras=extras,
                         meta=self.meta)
        return out, res

    def pooling_map(self, stride: int) -> PoolingMap:
        """Map from this batch's voxels to the level ``stride`` times coarser."""
        if self.grid_coord is None:
            raise ValueError('pooling_map needs grid_coord: voxelize the batch first')
        return pooling_map(self.grid_coord, self.batch, stride)
