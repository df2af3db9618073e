"""The MSM student's masked pass over an :class:`~geo3d.models.backbones.SpUNet`'s modules.

Following Masked Scene Modeling (Hermosilla et al., CVPR 2025, arXiv 2504.06719, Fig. 4/5):
the stem and encoder run on the VISIBLE voxels only; at the coarsest level the masked voxels are
re-inserted with a learnable mask token; the decoder then works bottom-up on ALL voxels of every
level (visible + masked). spconv's ``SparseInverseConv3d`` can only produce the sites recorded
by the visible pass's down conv, so the k=2 s=2 up conv is done here in torch with the SAME
weight tensor (:func:`transposed_conv_k2s2`); the skip of a masked voxel is a learnable
per-level token (or zeros); the decoder blocks (SubM convs) run on a fresh sparse tensor
holding every voxel of the level.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from geo3d.models.backbones.spunet import SpUNet
from geo3d.ops.sparse import SparseLevel, sparse_indices, spconv, to_sparse_tensor
from geo3d.structures import PointBatch, pooling_map

from .masking import match_voxels


def transposed_conv_k2s2(parent_feat: Tensor, parent_index: Tensor, child_offset: Tensor,
                         weight: Tensor) -> Tensor:
    """Kernel-2 stride-2 transposed sparse conv onto an arbitrary set of child voxels.

    Child voxel ``g`` (parent ``p = floor(g / 2)``, offset ``o = g - 2p`` in {0,1}^3) gets
    ``weight[:, o_x, o_y, o_z, :] @ parent_feat[p]`` — spconv's ``SparseInverseConv3d`` with
    its KRSC weight layout ``(C_out, 2, 2, 2, C_in)`` (checked against spconv in the tests).

    Args:
        parent_feat: (P, C_in) features of the coarse voxels.
        parent_index: (M,) row of ``parent_feat`` of every child voxel.
        child_offset: (M, 3) int offsets in {0, 1}.
        weight: (C_out, 2, 2, 2, C_in).

    Returns:
        (M, C_out) child features.
    """
    c_out, c_in = weight.shape[0], weight.shape[-1]
    if weight.shape[1:4] != (2, 2, 2):
        raise ValueError(f'expected a (C_out, 2, 2, 2, C_in) weight, got {tuple(weight.shape)}')
    # (P, C_in) @ (C_in, 8 * C_out): all eight offsets' outputs of every parent in one GEMM
    w = weight.reshape(c_out, 8, c_in).permute(2, 1, 0).reshape(c_in, 8 * c_out)
    per_offset = (parent_feat @ w).view(-1, 8, c_out)
    k = (child_offset[:, 0] * 4 + child_offset[:, 1] * 2 + child_offset[:, 2]).long()
    return per_offset[parent_index, k]


class MaskTokens(nn.Module):
    """Learnable tokens of the masked pass.

    Args:
        bottleneck_channels: width of the coarsest level (the mask token).
        skip_channels: width of the skip of every decoder stage ``s = 0..L-1`` (the SpUNet's
            stem width for ``s = 0``, else ``channels[s - 1]``).
        skip_token: learnable per-level skip tokens (True) or zeros (False) for masked voxels.
    """

    def __init__(self, bottleneck_channels: int, skip_channels: list[int],
                 skip_token: bool = True, init_std: float = 0.02) -> None:
        super().__init__()
        self.mask_token = nn.Parameter(torch.randn(bottleneck_channels) * init_std)
        self.skip_tokens = nn.ParameterList(
            [nn.Parameter(torch.randn(c) * init_std) for c in skip_channels]) if skip_token \
            else None
        self.skip_channels = list(skip_channels)

    @classmethod
    def for_unet(cls, unet: SpUNet, skip_token: bool = True) -> 'MaskTokens':
        stem_c = unet.stem.conv.out_channels
        skips = [stem_c] + list(unet.channels[:unet.num_stages - 1])
        return cls(unet.channels[unet.num_stages - 1], skips, skip_token)

    def skip(self, stage: int, ref: Tensor) -> Tensor:
        """(C_s,) skip token of decoder stage ``stage`` (zeros like ``ref`` without tokens)."""
        if self.skip_tokens is None:
            return ref.new_zeros(self.skip_channels[stage])
        return self.skip_tokens[stage].to(ref.dtype)


@dataclass
class MaskedLevel:
    """One level of the masked pass: all voxels of the level and which are masked.

    Attributes:
        level: features (M, C) and indices (M, 4) of every voxel of the full view at this level.
        masked: (M,) bool, True where the voxel has no visible level-0 voxel.
    """

    level: SparseLevel
    masked: Tensor


def _fill(masked: Tensor, token: Tensor, visible_feat: Tensor, row: Tensor) -> Tensor:
    """(M, C): ``visible_feat[row]`` where not masked, else ``token``."""
    picked = visible_feat[row.clamp(min=0)]
    return torch.where(masked[:, None], token.to(picked.dtype)[None], picked)


def masked_unet_forward(unet: SpUNet, points: PointBatch, visible: Tensor,
                        tokens: MaskTokens,
                        mask_token_at: Literal['bottleneck', 'bottleneck_input'] = 'bottleneck'
                        ) -> list[MaskedLevel]:
    """Student pass: encoder on the visible voxels, decoder on all voxels of every level.

    Args:
        unet: the SpUNet whose modules (stem, down, enc, up, dec) are used.
        points: voxelized batch with N rows (the full view).
        visible: (N,) bool; with all True the result equals ``unet(points)`` (up to float
            summation order; rows of a level may be ordered differently, the stride-1 level
            keeps the input row order).
        tokens: mask / skip tokens.
        mask_token_at: ``'bottleneck'``: masked coarsest voxels are the mask token (the
            encoder, last stage included, sees visible voxels only); ``'bottleneck_input'``:
            the token is inserted after the last down conv, so the last encoder stage's blocks
            run on all coarsest voxels and give the masked ones context (SpUNet has no decoder
            blocks at the coarsest level, unlike MSM's HUNet; with ``'bottleneck'`` the
            bottleneck prediction of a masked voxel is the same for all of them).

    Returns:
        ``L + 1`` :class:`MaskedLevel`, coarsest first, like ``SpUNet.forward``.
    """
    full = unet.to_sparse(points)
    n_stages = unet.num_stages
    if visible.shape != (points.num_points,):
        raise ValueError(f'visible must be ({points.num_points},), got {tuple(visible.shape)}')
    if not bool(visible.any()):
        raise ValueError('masked_unet_forward needs at least one visible voxel')
    batch = points.batch
    x = to_sparse_tensor(points.feat[visible], points.grid_coord[visible], batch[visible],
                         points.batch_size, spatial_shape=full.spatial_shape,
                         shape_multiple=2 ** n_stages)
    if mask_token_at not in ('bottleneck', 'bottleneck_input'):
        raise ValueError(f"mask_token_at must be 'bottleneck' or 'bottleneck_input', "
                         f'got {mask_token_at!r}')
    # full voxel hierarchy of the view: coords/batch per level and the parent of every voxel
    coords, batches, parents = [points.grid_coord.long()], [batch], []
    for _ in range(n_stages):
        pm = pooling_map(coords[-1], batches[-1], 2)
        parents.append(pm.inverse)
        coords.append(pm.coarse_coord)
        batches.append(pm.coarse_batch)
    shape = list(full.spatial_shape)

    def visible_rows(level: int, t: spconv.SparseConvTensor) -> Tensor:
        idx = t.indices
        return match_voxels(coords[level], batches[level], idx[:, 1:].long(), idx[:, 0].long())

    x = unet.stem(x)
    skips = [x]
    for s in range(n_stages):
        x = unet.down[s](x)
        if s == n_stages - 1:
            row = visible_rows(n_stages, x)
            masked = row < 0
            if mask_token_at == 'bottleneck_input':
                x = spconv.SparseConvTensor(
                    _fill(masked, tokens.mask_token, x.features, row),
                    sparse_indices(coords[-1], batches[-1]),
                    [d // 2 ** n_stages for d in shape], points.batch_size)
        x = unet.enc[s](x)
        skips.append(x)
    if mask_token_at == 'bottleneck_input':
        feat = x.features  # rows = coords[-1] order
    else:
        feat = _fill(masked, tokens.mask_token, skips[n_stages].features, row)
    out = [MaskedLevel(SparseLevel(feat, sparse_indices(coords[-1], batches[-1]),
                                   2 ** n_stages), masked)]
    for s in reversed(range(n_stages)):
        up = unet.up[s]
        offset = coords[s] - 2 * coords[s + 1][parents[s]]
        y = transposed_conv_k2s2(feat, parents[s], offset, up.conv.weight)
        y = up.act(up.bn(y))
        row = visible_rows(s, skips[s])
        masked = row < 0
        skip = _fill(masked, tokens.skip(s, y), skips[s].features, row)
        indices = sparse_indices(coords[s], batches[s])
        t = spconv.SparseConvTensor(torch.cat([y, skip], 1), indices,
                                    [d // 2 ** s for d in shape], points.batch_size)
        t = unet.dec[s](t)
        feat = t.features
        out.append(MaskedLevel(SparseLevel(feat, indices, 2 ** s), masked))
    return out
