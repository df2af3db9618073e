"""Patch masking for Masked Scene Modeling (MSM, Hermosilla et al., CVPR 2025, arXiv 2504.06719).

Masking is decided on the voxels of a coarse grid (``patch_stride = 2^mask_level`` level-0
voxels, by default the U-Net bottleneck): a fraction ``ratio`` of every sample's occupied coarse
voxels ("patches") is masked, and a finer voxel at stride ``2^l`` is masked iff its patch
``floor(g / 2^(mask_level - l))`` is. Because patches are aligned with the coarse grid, the
visible voxels of every level ``l <= mask_level`` are exactly the coarsened visible level-0
voxels (the paper masks bottom-up from the coarsest level; the patch size is not given there,
so it is the ``mask_level`` option of :class:`~geo3d.models.pretrain3d.MSM`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from geo3d.structures import pooling_map, voxel_keys


def match_voxels(query_coord: Tensor, query_batch: Tensor, ref_coord: Tensor,
                 ref_batch: Tensor) -> Tensor:
    """Row of ``ref`` holding the same (batch, voxel) as each query row, or -1.

    Args:
        query_coord: (M, 3) integer coordinates; query_batch: (M,) sample index.
        ref_coord: (R, 3) integer coordinates with unique (batch, coord) rows; ref_batch: (R,).

    Returns:
        (M,) int64 index into ``ref`` (-1 where the voxel is not in ``ref``).
    """
    m = query_coord.shape[0]
    if m == 0 or ref_coord.shape[0] == 0:
        return torch.full((m,), -1, dtype=torch.long, device=query_coord.device)
    keys = voxel_keys(torch.cat([query_coord, ref_coord]).long(),
                      torch.cat([query_batch, ref_batch]).long())
    return match_keys(keys[:m], keys[m:])


def match_keys(query: Tensor, ref: Tensor) -> Tensor:
    """(M,) int64 position of every query key in the unique keys ``ref`` (R,), or -1."""
    if ref.numel() == 0:
        return torch.full_like(query, -1)
    sorted_ref, order = torch.sort(ref)
    pos = torch.searchsorted(sorted_ref, query).clamp(max=ref.numel() - 1)
    found = sorted_ref[pos] == query
    return torch.where(found, order[pos], torch.full_like(pos, -1))


@dataclass
class PatchMask:
    """Masked coarse patches of a batch.

    Attributes:
        patch_coord: (P, 3) int64 patch coordinates (level-0 coordinate // patch_stride).
        patch_batch: (P,) int64 sample index of each patch.
        patch_masked: (P,) bool, True for a masked patch.
        patch_stride: patch edge in level-0 voxels.
    """

    patch_coord: Tensor
    patch_batch: Tensor
    patch_masked: Tensor
    patch_stride: int

    def level_mask(self, grid_coord: Tensor, batch: Tensor, stride: int = 1) -> Tensor:
        """(M,) bool: the masked voxels of a level with ``stride`` (a divisor of ``patch_stride``).

        Args:
            grid_coord: (M, 3) level coordinates ``floor(level0 / stride)``; batch: (M,).
        """
        if self.patch_stride % stride:
            raise ValueError(f'stride {stride} does not divide patch_stride {self.patch_stride}')
        parent = torch.div(grid_coord.long(), self.patch_stride // stride, rounding_mode='floor')
        row = match_voxels(parent, batch, self.patch_coord, self.patch_batch)
        if bool((row < 0).any()):
            raise ValueError('some voxels lie in no patch of this mask')
        return self.patch_masked[row]


def random_patch_mask(grid_coord: Tensor, batch: Tensor, patch_stride: int, ratio: float,
                      generator: torch.Generator | None = None) -> PatchMask:
    """Mask ``round(ratio * P_b)`` random patches of every sample ``b`` (P_b occupied patches).

    At least one patch per sample stays visible (so the student always sees something of every
    sample); ``ratio = 0`` masks nothing.

    Args:
        grid_coord: (N, 3) level-0 voxel coordinates; batch: (N,) sample index.
        patch_stride: patch edge in level-0 voxels (``2^mask_level``).
        ratio: fraction in [0, 1) of the occupied patches to mask.
        generator: torch RNG (CPU) for reproducible masks.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'mask ratio must be in [0, 1), got {ratio}')
    pm = pooling_map(grid_coord, batch, patch_stride)
    pb = pm.coarse_batch
    p = pb.shape[0]
    nb = int(pb.max()) + 1 if p else 0
    per_sample = torch.bincount(pb, minlength=nb)
    k = torch.clamp(torch.floor(per_sample.double() * ratio + 0.5).long(), max=per_sample - 1)
    k = k.clamp(min=0)
    prio = torch.rand(p, generator=generator).to(pb.device)
    # rank of every patch among its sample's patches by random priority
    order = torch.argsort(prio)
    order = order[torch.argsort(pb[order], stable=True)]
    starts = torch.cumsum(per_sample, 0) - per_sample
    rank = torch.empty(p, dtype=torch.long, device=pb.device)
    rank[order] = torch.arange(p, device=pb.device) - starts[pb[order]]
    masked = rank < k[pb]
    return PatchMask(patch_coord=pm.coarse_coord, patch_batch=pb, patch_masked=masked,
                     patch_stride=patch_stride)
