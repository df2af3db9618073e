"""Multi-resolution feature sampling of a sparse U-Net's levels at stride-1 voxel coordinates.

This follows the probing protocol of Masked Scene Modeling (Hermosilla et al., "Masked Scene
Modeling: Narrowing the Gap Between Supervised and Self-Supervised Learning in 3D Scene
Understanding", CVPR 2025; phermosilla/msm, ``inference/model/decoders.py``): every level
``l`` (stride ``s = 2**l``) is sampled at ``(c + 0.5) / s`` for the stride-1 voxel ``c`` by
trilinear interpolation on the level's zero-filled voxel grid with ``align_corners=True``
semantics (integer grid positions hold the voxel features, empty voxels count as 0), and the
samples of all levels are concatenated, finest level first.

MSM densifies every scene and calls ``torch.nn.functional.grid_sample``; here the 8 corner
voxels of each query are looked up in the sparse level directly (sorted int64 keys +
``torch.searchsorted``), so memory grows with the number of voxels, not with the scene volume.
The weighted sum of the corner features is one ``embedding_bag`` call per chunk of queries.
"""
from __future__ import annotations

from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.ops.sparse import SparseLevel
from geo3d.registry import MODELS

# the 8 corner offsets (dx, dy, dz) of a trilinear cell
_CORNERS = torch.tensor([[(i >> 2) & 1, (i >> 1) & 1, i & 1] for i in range(8)], dtype=torch.long)


class SparseVoxelLookup:
    """Row index of (batch, voxel) pairs in one sparse level, by binary search on sorted keys.

    Args:
        grid_coord: (M, 3) non-negative int64 level coordinates of the occupied voxels.
        batch: (M,) sample index of every voxel.
        extent: (3,) int64 strictly larger than every coordinate that will be looked up (larger
            coordinates are reported as missing).
    """

    def __init__(self, grid_coord: Tensor, batch: Tensor, extent: Tensor) -> None:
        self.extent = extent.long()
        keys = self.encode(grid_coord.long(), batch.long())
        self.sorted_keys, self.order = torch.sort(keys)

    def encode(self, grid_coord: Tensor, batch: Tensor) -> Tensor:
        """(Q, 3) coords + (Q,) batch -> (Q,) int64 keys (coords must lie in [0, extent))."""
        e = self.extent
        return ((batch * e[0] + grid_coord[:, 0]) * e[1] + grid_coord[:, 1]) * e[2] \
            + grid_coord[:, 2]

    def find(self, grid_coord: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        """Rows of the queried voxels: (Q,) int64 row (0 where missing), (Q,) bool found."""
        inside = ((grid_coord >= 0) & (grid_coord < self.extent)).all(1)
        keys = self.encode(grid_coord.clamp(min=0), batch)
        if self.sorted_keys.numel() == 0:
            zero = torch.zeros_like(keys)
            return zero, torch.zeros_like(inside)
        pos = torch.searchsorted(self.sorted_keys, keys).clamp(max=self.sorted_keys.numel() - 1)
        found = inside & (self.sorted_keys[pos] == keys)
        rows = torch.where(found, self.order[pos], torch.zeros_like(pos))
        return rows, found


def trilinear_corners(grid_coord: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """MSM's trilinear stencil of stride-1 voxels ``c`` in the level of stride ``s``.

    The query ``p = (c + 0.5) / s`` is written exactly in integers: ``p = (2c + 1) / (2s)``,
    ``floor(p) = (2c + 1) // (2s)`` and ``frac(p) = ((2c + 1) mod 2s) / (2s)``.

    Args:
        grid_coord: (Q, 3) int64 stride-1 voxel coordinates.
        stride: level stride ``s`` (a positive integer).

    Returns:
        corners (Q, 8, 3) int64 level coordinates and weights (Q, 8) float64 (summing to 1).
    """
    num = 2 * grid_coord.long() + 1
    base = torch.div(num, 2 * stride, rounding_mode='floor')
    frac = (num - base * 2 * stride).double() / (2 * stride)            # (Q, 3) in (0, 1)
    off = _CORNERS.to(grid_coord.device)                                  # (8, 3)
    corners = base[:, None, :] + off[None]                                # (Q, 8, 3)
    w_axis = torch.where(off[None].bool(), frac[:, None, :], 1.0 - frac[:, None, :])
    return corners, w_axis.prod(2)


@MODELS.register_module()
class MultiResolutionSampler(nn.Module):
    """Sample and concatenate the features of several sparse levels at stride-1 voxels.

    Args:
        in_channels: channels of the backbone's levels in the backbone's order (e.g. SpUNet's
            ``out_channels``, coarsest first); only needed for :attr:`out_channels`.
        in_strides: strides of those levels (e.g. SpUNet's ``out_strides``).
        mode: ``'trilinear'`` (MSM's convention, see the module doc) or ``'nearest'`` (the
            parent voxel ``floor(c / s)``, which is always occupied when the queries are the
            backbone's input voxels; missing parents give zeros).
        levels: which levels to use, as indices into the levels sorted finest first (index
            ``i`` = stride ``2**i`` for a U-Net); None = all. Output blocks follow this order.
        chunk_size: queries processed at once (bounds the memory to ~``chunk_size * 8`` indices
            plus the ``(chunk_size, C)`` output block).

    Attributes:
        out_channels: total output channels ``sum C_l`` over the used levels (None when
            ``in_channels`` was not given).
    """

    def __init__(self, in_channels: Sequence[int] | None = None,
                 in_strides: Sequence[int] | None = None,
                 mode: Literal['trilinear', 'nearest'] = 'trilinear',
                 levels: Sequence[int] | None = None, chunk_size: int = 262144) -> None:
        super().__init__()
        if mode not in ('trilinear', 'nearest'):
            raise ValueError(f"mode must be 'trilinear' or 'nearest', got {mode!r}")
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be positive, got {chunk_size}')
        if levels is not None and len(levels) == 0:
            raise ValueError('levels must name at least one level (or be None for all)')
        self.mode = mode
        self.levels = None if levels is None else [int(i) for i in levels]
        self.chunk_size = int(chunk_size)
        self.out_channels: int | None = None
        if in_channels is not None:
            chans = list(in_channels)
            strides = list(in_strides) if in_strides is not None else None
            if strides is not None and len(strides) != len(chans):
                raise ValueError('in_channels and in_strides differ in length')
            if strides is None:  # SpUNet's order: coarsest first
                fine_first = chans[::-1]
            else:
                fine_first = [c for _, c in sorted(zip(strides, chans), key=lambda t: t[0])]
            used = self._select(list(range(len(fine_first))))
            self.out_channels = sum(fine_first[i] for i in used)

    def _select(self, fine_first: list) -> list:
        if self.levels is None:
            return fine_first
        n = len(fine_first)
        bad = [i for i in self.levels if not -n <= i < n]
        if bad:
            raise IndexError(f'levels {bad} out of range for {n} backbone levels')
        return [fine_first[i] for i in self.levels]

    def forward(self, levels: Sequence[SparseLevel], grid_coord: Tensor,
                batch: Tensor) -> Tensor:
        """Sample every used level at the query voxels.

        Args:
            levels: the backbone's levels (any order; sorted by stride here).
            grid_coord: (N, 3) integer stride-1 voxel coordinates of the queries.
            batch: (N,) sample index of every query.

        Returns:
            (N, sum C_l) features, the used levels' blocks concatenated finest first.
        """
        if grid_coord.ndim != 2 or grid_coord.shape[1] != 3 or grid_coord.is_floating_point():
            raise ValueError(f'grid_coord must be an integer (N, 3) tensor, '
                             f'got {tuple(grid_coord.shape)} {grid_coord.dtype}')
        used = self._select(sorted(levels, key=lambda lv: lv.stride))
        g, b = grid_coord.long(), batch.long()
        # written block by block into one buffer (no concatenation copies of an (N, C) tensor)
        out = used[0].feat.new_empty(g.shape[0], sum(lv.feat.shape[1] for lv in used))
        col = 0
        for lv in used:
            self.sample_level(lv, g, b, out[:, col:col + lv.feat.shape[1]])
            col += lv.feat.shape[1]
        return out

    def sample_level(self, level: SparseLevel, grid_coord: Tensor, batch: Tensor,
                     out: Tensor | None = None) -> Tensor:
        """(N, 3) stride-1 voxels + (N,) batch -> (N, C) features of one level (written into
        ``out`` (N, C) when given)."""
        s = int(level.stride)
        feat = level.feat
        n = grid_coord.shape[0]
        if out is None:
            out = feat.new_empty(n, feat.shape[1])
        if n == 0:
            return out
        lv_coord = level.grid_coord
        # every coordinate looked up is < extent: level voxels, parents and their +1 corners
        hi = torch.div(grid_coord.max(0).values, s, rounding_mode='floor') + 2
        if lv_coord.shape[0]:
            hi = torch.maximum(hi, lv_coord.max(0).values + 1)
        lookup = SparseVoxelLookup(lv_coord, level.batch, hi)
        for start in range(0, n, self.chunk_size):
            end = min(start + self.chunk_size, n)
            g, bb = grid_coord[start:end], batch[start:end]
            if self.mode == 'nearest':
                rows, found = lookup.find(torch.div(g, s, rounding_mode='floor'), bb)
                out[start:end] = feat[rows] * found[:, None].to(feat.dtype)
                continue
            corners, weights = trilinear_corners(g, s)                       # (q, 8, 3), (q, 8)
            q = g.shape[0]
            rows, found = lookup.find(corners.reshape(-1, 3), bb.repeat_interleave(8))
            weights = (weights.reshape(-1) * found).to(feat.dtype).reshape(q, 8)
            out[start:end] = F.embedding_bag(rows.reshape(q, 8), feat, mode='sum',
                                             per_sample_weights=weights)
        return out
