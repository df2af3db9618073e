"""Voxel-grid operations on batched point sets: keys, grid sampling, pooling maps.

All functions work on torch tensors (CPU or CUDA) and take the batch index of every point so
that points of different samples never share a voxel.

Conventions (the same as spconv's strided sparse convolutions with kernel = stride = 2^l and
no padding): the level-``l`` voxel of a level-0 grid coordinate ``g`` is ``floor(g / 2^l)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


def voxel_keys(grid_coord: Tensor, batch: Tensor | None = None) -> Tensor:
    """One int64 key per point, equal iff (batch, grid coordinate) are equal.

    Args:
        grid_coord: (N, 3) integer voxel coordinates (may be negative).
        batch: (N,) sample index of every point, or None for a single sample.

    Returns:
        (N,) int64 keys.
    """
    if grid_coord.ndim != 2 or grid_coord.shape[1] != 3:
        raise ValueError(f'grid_coord must be (N, 3), got {tuple(grid_coord.shape)}')
    if grid_coord.is_floating_point():
        raise TypeError('grid_coord must be an integer tensor')
    g = grid_coord.long()
    if g.shape[0] == 0:
        return g.new_zeros(0)
    g = g - g.min(0).values
    ext = g.max(0).values + 1
    b = torch.zeros_like(g[:, 0]) if batch is None else batch.long()
    nb = int(b.max()) + 1 if b.numel() else 1
    total = float(nb) * float(ext[0]) * float(ext[1]) * float(ext[2])
    if total >= 2.0 ** 62:
        raise OverflowError(f'voxel grid too large to key in int64: extent {ext.tolist()} x {nb}')
    return ((b * ext[0] + g[:, 0]) * ext[1] + g[:, 1]) * ext[2] + g[:, 2]


def unique_voxels(grid_coord: Tensor, batch: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Group points by voxel.

    Args:
        grid_coord: (N, 3) integer voxel coordinates.
        batch: (N,) sample index or None.

    Returns:
        first: (M,) index of one representative point per voxel (the first one in input order),
            voxels sorted by (batch, key) so every sample's voxels are contiguous.
        inverse: (N,) voxel index of every point (``first[inverse]`` is a point of the same voxel).
        counts: (M,) number of points per voxel.
    """
    keys = voxel_keys(grid_coord, batch)
    uniq, inverse, counts = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
    n = keys.shape[0]
    order = torch.arange(n, device=keys.device)
    first = torch.full((uniq.shape[0],), n, dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, order, reduce='amin', include_self=True)
    return first, inverse, counts


@dataclass
class GridSampleResult:
    """Result of :func:`grid_sample`.

    Attributes:
        grid_coord: (M, 3) int64 voxel coordinates of the kept voxels.
        batch: (M,) sample index of each voxel.
        index: (M,) index of the point chosen per voxel (``mode='random'``/``'first'``), or
            None for ``mode='mean'``.
        inverse: (N,) voxel of every input point: maps voxel predictions back to points.
        counts: (M,) points per voxel.
    """

    grid_coord: Tensor
    batch: Tensor
    index: Tensor | None
    inverse: Tensor
    counts: Tensor

    def reduce(self, value: Tensor) -> Tensor:
        """Per-voxel mean of a per-point value: (N, ...) -> (M, ...)."""
        m = self.counts.shape[0]
        out = value.new_zeros((m,) + tuple(value.shape[1:]))
        out.index_add_(0, self.inverse, value)
        shape = (m,) + (1,) * (value.ndim - 1)
        return out / self.counts.view(shape).to(value.dtype)

    def select(self, value: Tensor) -> Tensor:
        """The chosen point's value per voxel (random/first modes): (N, ...) -> (M, ...)."""
        if self.index is None:
            raise ValueError("select() needs mode 'random' or 'first'; use reduce() for 'mean'")
        return value[self.index]


def grid_sample(coord: Tensor, grid_size: float, batch: Tensor | None = None,
                mode: Literal['mean', 'random', 'first'] = 'random',
                generator: torch.Generator | None = None) -> GridSampleResult:
    """Voxelize points at ``grid_size``.

    Args:
        coord: (N, 3) float coordinates in metres.
        grid_size: voxel edge length.
        batch: (N,) sample index or None.
        mode: ``'mean'`` (values are averaged per voxel with :meth:`GridSampleResult.reduce`),
            ``'random'`` (one uniformly random point per voxel) or ``'first'``.
        generator: random generator for ``'random'``.

    Returns:
        GridSampleResult; grid coordinates are ``floor(coord / grid_size)`` minus the
        per-sample minimum, so they start at 0 in every sample.
    """
    if grid_size <= 0:
        raise ValueError(f'grid_size must be positive, got {grid_size}')
    if coord.ndim != 2 or coord.shape[1] != 3:
        raise ValueError(f'coord must be (N, 3), got {tuple(coord.shape)}')
    g = torch.floor(coord / grid_size).long()
    b = torch.zeros(coord.shape[0], dtype=torch.long, device=coord.device) if batch is None \
        else batch.long()
    if g.shape[0]:
        nb = int(b.max()) + 1
        mins = torch.full((nb, 3), torch.iinfo(torch.long).max, dtype=torch.long, device=g.device)
        mins = mins.scatter_reduce(0, b[:, None].expand(-1, 3), g, reduce='amin')
        g = g - mins[b]
    first, inverse, counts = unique_voxels(g, b)
    if mode == 'mean':
        index = None
    elif mode == 'first':
        index = first
    elif mode == 'random':
        # A uniformly random point per voxel: the point with the smallest random priority.
        prio = torch.rand(g.shape[0], generator=generator, device='cpu').to(g.device)
        best = torch.full((counts.shape[0],), 2.0, device=g.device)
        best = best.scatter_reduce(0, inverse, prio, reduce='amin')
        is_best = prio == best[inverse]
        idx = torch.nonzero(is_best).squeeze(1)
        index = torch.empty(counts.shape[0], dtype=torch.long, device=g.device)
        index[inverse[idx]] = idx
    else:
        raise ValueError(f"mode must be 'mean', 'random' or 'first', got {mode!r}")
    return GridSampleResult(grid_coord=g[first], batch=b[first], index=index, inverse=inverse,
                            counts=counts)


@dataclass
class PoolingMap:
    """Map between a fine voxel level and the level ``stride`` times coarser.

    Attributes:
        coarse_coord: (M, 3) int64 coarse voxel coordinates ``floor(fine / stride)``.
        coarse_batch: (M,) sample index per coarse voxel.
        inverse: (N,) coarse voxel of every fine voxel (the unpooling gather index).
        counts: (M,) fine voxels per coarse voxel.
    """

    coarse_coord: Tensor
    coarse_batch: Tensor
    inverse: Tensor
    counts: Tensor

    def pool(self, feat: Tensor, reduce: Literal['mean', 'max', 'sum'] = 'mean') -> Tensor:
        """(N, C) fine features -> (M, C) coarse features."""
        m = self.counts.shape[0]
        idx = self.inverse[:, None].expand_as(feat)
        if reduce == 'max':
            out = feat.new_full((m, feat.shape[1]), float('-inf'))
            return out.scatter_reduce(0, idx, feat, reduce='amax', include_self=True)
        out = feat.new_zeros((m, feat.shape[1])).index_add_(0, self.inverse, feat)
        if reduce == 'sum':
            return out
        if reduce == 'mean':
            return out / self.counts[:, None].to(feat.dtype)
        raise ValueError(f"reduce must be 'mean', 'max' or 'sum', got {reduce!r}")

    def unpool(self, coarse_feat: Tensor) -> Tensor:
        """(M, C) coarse features -> (N, C): every fine voxel takes its parent's feature."""
        return coarse_feat[self.inverse]


def pooling_map(grid_coord: Tensor, batch: Tensor | None = None, stride: int = 2) -> PoolingMap:
    """Pooling map from ``grid_coord`` to the grid ``stride`` times coarser.

    Args:
        grid_coord: (N, 3) integer voxel coordinates (non-negative for spconv compatibility).
        batch: (N,) sample index or None.
        stride: integer coarsening factor (2**levels for a U-Net hierarchy).
    """
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    b = torch.zeros(grid_coord.shape[0], dtype=torch.long, device=grid_coord.device) \
        if batch is None else batch.long()
    coarse = torch.div(grid_coord.long(), stride, rounding_mode='floor')
    first, inverse, counts = unique_voxels(coarse, b)
    return PoolingMap(coarse_coord=coarse[first], coarse_batch=b[first], inverse=inverse,
                      counts=counts)
