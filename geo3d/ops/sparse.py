"""The one place geo3d imports spconv (after the CPU fixes of :mod:`geo3d.ops.spconv_cpu`).

Use ``from geo3d.ops.sparse import spconv`` instead of importing ``spconv.pytorch`` directly so
that the CPU fixes are always in place.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .spconv_cpu import apply_spconv_cpu_fixes

apply_spconv_cpu_fixes()

import spconv.pytorch as spconv  # noqa: E402

__all__ = ['spconv', 'SparseLevel', 'to_sparse_tensor', 'sparse_indices']


def sparse_indices(grid_coord: Tensor, batch: Tensor) -> Tensor:
    """(N, 3) grid coords + (N,) batch -> (N, 4) int32 spconv indices ``[b, x, y, z]``."""
    return torch.cat([batch.reshape(-1, 1), grid_coord.reshape(-1, 3)], 1).int().contiguous()


def to_sparse_tensor(feat: Tensor, grid_coord: Tensor, batch: Tensor, batch_size: int,
                     spatial_shape: Sequence[int] | None = None,
                     shape_multiple: int = 1) -> spconv.SparseConvTensor:
    """Wrap voxel features as a ``spconv.SparseConvTensor``.

    Args:
        feat: (N, C) float features, one row per voxel.
        grid_coord: (N, 3) non-negative integer voxel coordinates.
        batch: (N,) sample index of every row, in ``[0, batch_size)``.
        batch_size: number of samples.
        spatial_shape: (3,) grid extent; default ``max(grid_coord) + 1`` per axis.
        shape_multiple: the spatial shape is rounded up to a multiple of this (a U-Net with
            ``L`` stride-2 levels needs ``2**L`` so no voxel falls off the coarser grids).

    Returns:
        SparseConvTensor with int32 indices (N, 4) ``[b, x, y, z]`` in input row order.
    """
    if feat.ndim != 2 or feat.shape[0] != grid_coord.shape[0]:
        raise ValueError(f'feat must be (N, C) with N={grid_coord.shape[0]}, '
                         f'got {tuple(feat.shape)}')
    if grid_coord.ndim != 2 or grid_coord.shape[1] != 3 or grid_coord.is_floating_point():
        raise ValueError(f'grid_coord must be an integer (N, 3) tensor, '
                         f'got {tuple(grid_coord.shape)} {grid_coord.dtype}')
    n = grid_coord.shape[0]
    if n and int(grid_coord.min()) < 0:
        raise ValueError('grid_coord must be non-negative for spconv')
    if n and int(grid_coord.max()) >= torch.iinfo(torch.int32).max:
        raise ValueError('grid_coord does not fit in int32')
    if spatial_shape is None:
        ext = (grid_coord.max(0).values + 1).tolist() if n else [1, 1, 1]
    else:
        ext = [int(s) for s in spatial_shape]
        if n and any(int(m) >= s for m, s in zip(grid_coord.max(0).values.tolist(), ext)):
            raise ValueError(f'grid_coord exceeds spatial_shape {ext}')
    m = max(int(shape_multiple), 1)
    ext = [max(-(-int(s) // m) * m, m) for s in ext]
    return spconv.SparseConvTensor(feat, sparse_indices(grid_coord, batch), ext, batch_size)


@dataclass
class SparseLevel:
    """Voxel features of one U-Net level.

    Attributes:
        feat: (M, C) features.
        indices: (M, 4) int32 ``[b, x, y, z]``; ``x, y, z`` are level coordinates, i.e.
            ``floor(level0_grid_coord / stride)``.
        stride: voxel size of this level in level-0 voxels (``2**l``).
    """

    feat: Tensor
    indices: Tensor
    stride: int

    @property
    def grid_coord(self) -> Tensor:
        """(M, 3) int64 level coordinates."""
        return self.indices[:, 1:].long()

    @property
    def batch(self) -> Tensor:
        """(M,) int64 sample index."""
        return self.indices[:, 0].long()

    @property
    def num_voxels(self) -> int:
        return int(self.feat.shape[0])

    @classmethod
    def from_sparse(cls, x: spconv.SparseConvTensor, stride: int) -> 'SparseLevel':
        return cls(feat=x.features, indices=x.indices, stride=stride)
