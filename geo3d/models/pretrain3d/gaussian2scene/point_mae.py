"""Point branch of Gaussian2Scene stage 1: masked voxel patches of a sparse U-Net's input.

Gaussian2Scene (Liu et al., arXiv 2506.08777, no public code) describes its point branch as
Point-MAE / PiMAE (FPS + kNN patches, ~60 % of them dropped, Chamfer distance between the
dropped patches and their reconstruction). That loss does not fit a sparse U-Net: a SpUNet
keeps every voxel's POSITION through the network (its output lives on the input voxels), so
there is no point set to regress and a Chamfer target would be trivially known. Here the
masking follows Masked Scene Contrast / MSM instead (Wu et al. CVPR 2023; Hermosilla et al.
CVPR 2025): voxel patches (the occupied cells of a ``patch_stride``-voxel grid, chosen by
MSM's :func:`~geo3d.models.pretrain3d.masking.random_patch_mask`) are masked, the masked voxels
keep their position, and the U-Net must reconstruct what they carried: a linear head on the
finest decoder level predicts the masked voxels' colour (and optionally normal); the loss
counts masked voxels only.

Two ways to hide a masked voxel (``mode``):

* ``'input_token'`` (MSC's input masking): its input features are replaced by a learnable
  mask token and the unmodified SpUNet runs on all voxels;
* ``'msm'``: MSM's masked pass (:func:`~geo3d.models.pretrain3d.masked_unet_forward`): the
  encoder sees the visible voxels only, masked voxels enter the decoder as MSM's mask / skip
  tokens.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from geo3d.models.backbones.spunet import SpUNet
from geo3d.structures import PointBatch

from ..masked_unet import MaskTokens, masked_unet_forward
from ..masking import random_patch_mask

__all__ = ['VoxelPatchMasking', 'MaskedVoxelHead', 'MaskingMode']

MaskingMode = Literal['input_token', 'msm']


class VoxelPatchMasking(nn.Module):
    """Random voxel-patch masking of a SpUNet's input and the masked forward pass.

    Args:
        unet: the SpUNet that will be run (only read, to size the tokens; not stored).
        mask_ratio: fraction of every sample's occupied patches masked (PiMAE / G2S: 0.6).
        patch_stride: patch edge in voxels (e.g. 8 at 2 cm = 16 cm patches).
        mode: ``'input_token'`` or ``'msm'`` (module docstring).
        skip_token, mask_token_at: MSM's options for ``mode='msm'`` (see
            :func:`~geo3d.models.pretrain3d.masked_unet_forward`).
    """

    def __init__(self, unet: SpUNet, mask_ratio: float = 0.6, patch_stride: int = 8,
                 mode: MaskingMode = 'input_token', skip_token: bool = True,
                 mask_token_at: Literal['bottleneck', 'bottleneck_input'] = 'bottleneck'
                 ) -> None:
        super().__init__()
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f'point mask_ratio must be in [0, 1), got {mask_ratio}')
        if int(patch_stride) < 1:
            raise ValueError(f'patch_stride must be >= 1, got {patch_stride}')
        if mode not in ('input_token', 'msm'):
            raise ValueError(f"point masking mode must be 'input_token' or 'msm', got {mode!r}")
        self.mask_ratio = float(mask_ratio)
        self.patch_stride = int(patch_stride)
        self.mode = mode
        self.mask_token_at = mask_token_at
        if mode == 'input_token':
            self.mask_token = nn.Parameter(torch.randn(unet.in_channels) * 0.02)
        else:
            self.tokens = MaskTokens.for_unet(unet, skip_token)

    def sample(self, points: PointBatch, generator: torch.Generator | None = None) -> Tensor:
        """(N,) bool masked voxels: ``round(ratio * P_b)`` random patches of every sample."""
        if points.grid_coord is None:
            raise ValueError('point masking needs a voxelized PointBatch (grid_coord is None)')
        g, b = points.grid_coord.cpu(), points.batch.cpu()
        pm = random_patch_mask(g, b, self.patch_stride, self.mask_ratio, generator)
        return pm.level_mask(g, b, 1).to(points.device)

    def masked_input(self, points: PointBatch, masked: Tensor) -> PointBatch:
        """A copy of ``points`` whose masked rows' features are the mask token (input mode)."""
        feat = torch.where(masked[:, None], self.mask_token.to(points.feat.dtype)[None],
                           points.feat)
        return PointBatch(coord=points.coord, feat=feat, offset=points.offset,
                          grid_coord=points.grid_coord, grid_size=points.grid_size,
                          extras=points.extras, meta=points.meta)

    def forward(self, unet: SpUNet, points: PointBatch, masked: Tensor) -> Tensor:
        """Finest decoder features (N, C) of every input row (input row order).

        Args:
            unet: the backbone; points: voxelized batch (N rows); masked: (N,) bool.
        """
        if masked.shape != (points.num_points,) or masked.dtype != torch.bool:
            raise ValueError(f'masked must be a ({points.num_points},) bool tensor, got '
                             f'{tuple(masked.shape)} {masked.dtype}')
        if self.mode == 'input_token':
            return unet(self.masked_input(points, masked))[-1].feat
        return masked_unet_forward(unet, points, ~masked, self.tokens,
                                   self.mask_token_at)[-1].level.feat


class MaskedVoxelHead(nn.Module):
    """Linear head reconstructing per-voxel attributes, with an MSE on masked voxels only.

    Args:
        in_channels: width of the finest decoder level.
        targets: ``{extras key: channels}`` predicted per voxel, e.g. ``{'color': 3}`` or
            ``{'color': 3, 'normal': 3}`` (the batch must carry these keys, e.g. from
            ``Collect(keys=(..., 'color', 'normal'))`` after ``NormalizeColor``).
        weights: per-target loss weights (default 1 each).
    """

    def __init__(self, in_channels: int, targets: dict[str, int] | None = None,
                 weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.targets = dict(targets or {'color': 3})
        if not self.targets or any(int(c) < 1 for c in self.targets.values()):
            raise ValueError(f'targets must map extras keys to channel counts >= 1, got '
                             f'{self.targets}')
        self.weights = {k: 1.0 for k in self.targets}
        unknown = set(weights or {}) - set(self.targets)
        if unknown:
            raise ValueError(f'weights for unknown targets {sorted(unknown)}; targets are '
                             f'{sorted(self.targets)}')
        self.weights.update(weights or {})
        self.head = nn.Linear(in_channels, sum(self.targets.values()))

    def forward(self, feat: Tensor) -> dict[str, Tensor]:
        """(N, C) -> ``{key: (N, channels)}`` predictions."""
        out = self.head(feat)
        return dict(zip(self.targets, out.split(list(self.targets.values()), dim=1)))

    def loss(self, feat: Tensor, points: PointBatch, masked: Tensor) -> dict[str, Tensor]:
        """``{key: MSE over the masked voxels}`` (unweighted) and ``'total'`` (weighted sum).

        Args:
            feat: (N, C) finest features; points: the batch with the target extras;
                masked: (N,) bool.
        """
        pred = self.forward(feat[masked])
        out: dict[str, Tensor] = {}
        total = feat.new_zeros(())
        for key, p in pred.items():
            if key not in points:
                raise KeyError(f'point reconstruction target {key!r} is not in the batch (its '
                               f'extras are {sorted(points.extras)}); keep it in Collect(keys=...)')
            target = points[key][masked].to(p.dtype).reshape(p.shape[0], -1)
            if target.shape != p.shape:
                raise ValueError(f'target {key!r} has {target.shape[1]} channels, the head '
                                 f'predicts {p.shape[1]}')
            mse = (p - target).square().mean() if p.shape[0] else p.sum() * 0.0
            out[key] = mse
            total = total + self.weights[key] * mse
        out['total'] = total
        return out
