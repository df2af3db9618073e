"""Sparse-convolution U-Net backbone (in the style of Pointcept's SpUNet-v1m1).

Layout for ``L = len(channels) // 2`` stages (default ``L = 4``)::

    stem:   SubMConv3d(in_channels -> base_channels, k=stem_kernel_size) + BN + ReLU   stride 1
    enc s:  SparseConv3d(k=2, s=2) + BN + ReLU, then layers[s] BasicBlocks            stride 2^(s+1)
            channels[s]
    dec s:  SparseInverseConv3d(k=2) + BN + ReLU (inverse of enc s's down conv),      stride 2^s
            concat the skip (stem output for s=0, else enc s-1 output),
            then layers[2L-1-s] BasicBlocks (the first one projects the concat)
            channels[2L-1-s]

A BasicBlock is SubM(k=3)+BN+ReLU, SubM(k=3)+BN, plus the identity (or a bias-free linear + BN
projection when the channel count changes), then ReLU. Every BatchNorm is
``BatchNorm1d(eps=1e-3, momentum=0.01)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.ops.sparse import SparseLevel, spconv, to_sparse_tensor
from geo3d.registry import MODELS
from geo3d.structures import PointBatch
from geo3d.structures.grid import voxel_keys

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class SparseConvBNReLU(spconv.SparseModule):
    """A spconv conv (bias-free) followed by BN and ReLU on the features: (M, Cin) -> (M', Cout)."""

    def __init__(self, conv: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.conv = conv
        self.bn = _bn(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        x = self.conv(x)
        return x.replace_feature(self.act(self.bn(x.features)))


class BasicBlock(spconv.SparseModule):
    """Residual block of two SubM k=3 convs at one level: (M, in_channels) -> (M, out_channels)."""

    def __init__(self, in_channels: int, out_channels: int, indice_key: str) -> None:
        super().__init__()
        if in_channels != out_channels:
            self.proj: nn.Module | None = nn.Sequential(
                nn.Linear(in_channels, out_channels, bias=False), _bn(out_channels))
        else:
            self.proj = None
        self.conv1 = spconv.SubMConv3d(in_channels, out_channels, 3, padding=1, bias=False,
                                       indice_key=indice_key)
        self.bn1 = _bn(out_channels)
        self.conv2 = spconv.SubMConv3d(out_channels, out_channels, 3, padding=1, bias=False,
                                       indice_key=indice_key)
        self.bn2 = _bn(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: spconv.SparseConvTensor) -> spconv.SparseConvTensor:
        identity = x.features if self.proj is None else self.proj(x.features)
        out = self.conv1(x)
        out = out.replace_feature(self.act(self.bn1(out.features)))
        out = self.conv2(out)
        return out.replace_feature(self.act(self.bn2(out.features) + identity))


def check_unique_voxels(grid_coord: Tensor, batch: Tensor) -> None:
    """Raise ValueError if two rows share (batch, grid_coord)."""
    keys = voxel_keys(grid_coord, batch)
    n_unique = int(torch.unique(keys).numel())
    if n_unique != keys.numel():
        raise ValueError(
            f'SpUNet needs voxelized input (one row per (batch, grid_coord)), but '
            f'{keys.numel() - n_unique} of {keys.numel()} rows duplicate another row\'s voxel; '
            'voxelize first (e.g. PointBatch.grid_sample)')


@MODELS.register_module()
class SpUNet(BaseModule):
    """Sparse-conv U-Net backbone over voxelized point batches.

    Args:
        in_channels: input feature channels C_in.
        base_channels: stem output channels.
        channels: ``2L`` channel counts: the first ``L`` are the encoder stages (strides
            2, 4, ..., 2^L), the last ``L`` the decoder stages (strides 2^(L-1), ..., 1).
        layers: BasicBlocks per entry of ``channels`` (encoder entries may be 0, decoder
            entries must be >= 1).
        stem_kernel_size: odd kernel size of the stem SubM conv (5 as in Pointcept; 3 is cheaper).
        bn_momentum: momentum of every BatchNorm's running statistics (0.01 as in Pointcept,
            for runs of many thousand iterations; short runs need more, e.g. 0.1, or the
            running statistics used in eval mode are still mostly their initial values).
        init_cfg: mmengine init config.

    Forward returns ``L + 1`` :class:`SparseLevel`, coarsest first:

    * ``[0]``: the bottleneck (last encoder stage), stride ``2^L``, ``channels[L-1]`` channels;
    * ``[1 + i]`` for ``i = 0..L-1``: decoder stage ``L-1-i``, stride ``2^(L-1-i)``,
      ``channels[L+i]`` channels.

    The last level has stride 1 and its rows are the input rows, in input order. The level
    with stride ``2^l`` holds exactly the voxels ``unique((batch, floor(grid_coord / 2^l)))``
    (in spconv's order, not sorted). ``out_channels[i]`` / ``out_strides[i]`` describe level
    ``i``. Default config: strides (16, 8, 4, 2, 1), channels (256, 256, 128, 96, 96).
    """

    def __init__(self, in_channels: int, base_channels: int = 32,
                 channels: Sequence[int] = (32, 64, 128, 256, 256, 128, 96, 96),
                 layers: Sequence[int] = (2, 3, 4, 6, 2, 2, 2, 2),
                 stem_kernel_size: int = 5, bn_momentum: float = BN_MOMENTUM,
                 init_cfg: dict | list[dict] | None = None) -> None:
        super().__init__(init_cfg=init_cfg)
        channels, layers = list(channels), list(layers)
        if len(channels) == 0 or len(channels) % 2:
            raise ValueError(f'channels must have an even, non-zero length, got {channels}')
        if len(layers) != len(channels):
            raise ValueError(f'layers ({len(layers)}) and channels ({len(channels)}) '
                             'differ in length')
        n = len(channels) // 2
        if any(x < 0 for x in layers[:n]) or any(x < 1 for x in layers[n:]):
            raise ValueError(f'encoder layers must be >= 0 and decoder layers >= 1, got {layers}')
        if stem_kernel_size < 1 or stem_kernel_size % 2 == 0:
            raise ValueError(f'stem_kernel_size must be odd, got {stem_kernel_size}')
        self.in_channels = in_channels
        self.num_stages = n
        self.channels = channels
        self.layers = layers

        self.stem = SparseConvBNReLU(
            spconv.SubMConv3d(in_channels, base_channels, stem_kernel_size,
                              padding=stem_kernel_size // 2, bias=False, indice_key='stem'),
            base_channels)
        self.down = nn.ModuleList()
        self.enc = nn.ModuleList()
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        enc_in = base_channels  # channels of the level above stage s (the skip of decoder s)
        for s in range(n):
            c = channels[s]
            self.down.append(SparseConvBNReLU(
                spconv.SparseConv3d(enc_in, c, 2, stride=2, bias=False,
                                    indice_key=f'spconv{s + 1}'), c))
            self.enc.append(nn.Sequential(
                *[BasicBlock(c, c, f'subm{s + 1}') for _ in range(layers[s])]))
            # decoder stage s: from the level below (stride 2^(s+1)) up to stride 2^s
            below = channels[2 * n - s - 2]  # s = n-1: channels[n-1], the bottleneck
            dec_c = channels[2 * n - s - 1]
            self.up.append(SparseConvBNReLU(
                spconv.SparseInverseConv3d(below, dec_c, 2, bias=False,
                                           indice_key=f'spconv{s + 1}'), dec_c))
            blocks = [BasicBlock(dec_c + enc_in, dec_c, f'subm{s}')]
            blocks += [BasicBlock(dec_c, dec_c, f'subm{s}')
                       for _ in range(layers[2 * n - s - 1] - 1)]
            self.dec.append(nn.Sequential(*blocks))
            enc_in = c
        if not 0.0 < bn_momentum <= 1.0:
            raise ValueError(f'bn_momentum must be in (0, 1], got {bn_momentum}')
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = bn_momentum
        self.out_channels: list[int] = [channels[n - 1]] + channels[n:]
        self.out_strides: list[int] = [2 ** (n - i) for i in range(n + 1)]

    def to_sparse(self, points: PointBatch) -> spconv.SparseConvTensor:
        """Validate the batch and wrap it: rows (N, C_in) at int32 indices [b, x, y, z]."""
        if points.grid_coord is None:
            raise ValueError('SpUNet needs a voxelized PointBatch (grid_coord is None)')
        if points.num_points == 0:
            raise ValueError('SpUNet got an empty batch')
        if points.feat.shape[1] != self.in_channels:
            raise ValueError(f'expected {self.in_channels} input channels, '
                             f'got {points.feat.shape[1]}')
        batch = points.batch
        check_unique_voxels(points.grid_coord, batch)
        return to_sparse_tensor(points.feat, points.grid_coord, batch, points.batch_size,
                                shape_multiple=2 ** self.num_stages)

    def forward(self, points: PointBatch) -> list[SparseLevel]:
        """PointBatch with N voxels -> ``L + 1`` levels, coarsest first (see the class doc)."""
        x = self.stem(self.to_sparse(points))
        skips = [x]
        for s in range(self.num_stages):
            x = self.enc[s](self.down[s](x))
            skips.append(x)
        levels = [SparseLevel.from_sparse(x, 2 ** self.num_stages)]
        for s in reversed(range(self.num_stages)):
            x = self.up[s](x)
            skip = skips[s]
            # the inverse conv outputs exactly the sites (and row order) of the down conv's input
            x = x.replace_feature(torch.cat([x.features, skip.features], 1))
            x = self.dec[s](x)
            levels.append(SparseLevel.from_sparse(x, 2 ** s))
        return levels
