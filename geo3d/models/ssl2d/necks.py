"""Necks of the 2D SSL algorithms: projector and predictor MLPs, multi-head projector.

The projector maps pooled backbone features to the space the loss sees (SimCLR's "projection
head", Chen et al. ICML 2020; Barlow Twins' 3-layer projector with BN, Zbontar et al. ICML
2021; MoCo v2's 2-layer MLP). Hidden layers are ``Linear -> [BatchNorm1d] -> ReLU``; the last
layer is a ``Linear`` with an optional ``BatchNorm1d`` (``with_last_bn``, e.g. SimCLR v2 /
mmpretrain's ``NonLinearNeck``). Linear layers followed by BN have no bias (it would be
cancelled by the BN mean).
"""
from __future__ import annotations

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS

__all__ = ['ProjectionMLP', 'PredictionMLP', 'MultiHeadProjection']


def _check(owner: str, **sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f'{owner}: {name} must be >= 1, got {value}')


@MODELS.register_module()
class ProjectionMLP(BaseModule):
    """MLP projector: (B, in_channels) -> (B, out_channels).

    Args:
        in_channels: input width (the algorithms fill it from ``backbone.out_channels``).
        hidden_channels: width of the hidden layers.
        out_channels: output width.
        num_layers: number of linear layers (1 = a single linear map).
        with_bn: BatchNorm1d after every hidden linear layer.
        with_last_bn: BatchNorm1d after the last linear layer.
        last_bn_affine: whether that last BN has a learnable scale and shift.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 2048, out_channels: int = 128,
                 num_layers: int = 2, with_bn: bool = True, with_last_bn: bool = False,
                 last_bn_affine: bool = True, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        owner = type(self).__name__
        _check(owner, in_channels=in_channels, hidden_channels=hidden_channels,
               out_channels=out_channels, num_layers=num_layers)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        layers: list[nn.Module] = []
        width = self.in_channels
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_channels, bias=not with_bn))
            if with_bn:
                layers.append(nn.BatchNorm1d(hidden_channels))
            layers.append(nn.ReLU(inplace=True))
            width = hidden_channels
        layers.append(nn.Linear(width, self.out_channels, bias=not with_last_bn))
        if with_last_bn:
            layers.append(nn.BatchNorm1d(self.out_channels, affine=last_bn_affine))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels) -> (B, out_channels)."""
        if x.ndim != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: input must be (B, {self.in_channels}), got '
                             f'{tuple(x.shape)}')
        return self.mlp(x)


@MODELS.register_module()
class PredictionMLP(ProjectionMLP):
    """Predictor MLP (BYOL / SimSiam style): a bottleneck MLP that keeps the width,
    ``in -> hidden -> in`` by default.

    Args: as :class:`ProjectionMLP`; ``out_channels`` defaults to ``in_channels`` and
    ``hidden_channels`` to 512.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 512,
                 out_channels: int | None = None, num_layers: int = 2, with_bn: bool = True,
                 with_last_bn: bool = False, last_bn_affine: bool = True,
                 init_cfg: dict | None = None) -> None:
        super().__init__(in_channels, hidden_channels,
                         in_channels if out_channels is None else out_channels, num_layers,
                         with_bn, with_last_bn, last_bn_affine, init_cfg)


@MODELS.register_module()
class MultiHeadProjection(BaseModule):
    """C independent projectors (AMCL's multi-head projector): (B, in) -> (B, C, out).

    Args:
        in_channels: input width. num_heads: C.
        hidden_channels, out_channels, num_layers, with_bn, with_last_bn: of every head, as
            :class:`ProjectionMLP` (AMCL's author code: 512 -> 512 -> 128, no BN).
    """

    def __init__(self, in_channels: int, num_heads: int = 3, hidden_channels: int = 512,
                 out_channels: int = 128, num_layers: int = 2, with_bn: bool = False,
                 with_last_bn: bool = False, init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        _check('MultiHeadProjection', num_heads=num_heads)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.num_heads = int(num_heads)
        self.heads = nn.ModuleList(
            ProjectionMLP(in_channels, hidden_channels, out_channels, num_layers, with_bn,
                          with_last_bn) for _ in range(self.num_heads))

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels) -> (B, num_heads, out_channels)."""
        return torch.stack([h(x) for h in self.heads], dim=1)
