"""Barlow Twins: redundancy reduction between the embeddings of two views.

Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021
(facebookresearch/barlowtwins). Backbone -> 3-layer projector with BN ->
:class:`~geo3d.models.ssl2d.losses.BarlowTwinsLoss` on the cross-correlation matrix.
"""
from __future__ import annotations

from torch import nn

from geo3d.registry import MODELS

from .base import TwoViewSSL


@MODELS.register_module()
class BarlowTwins(TwoViewSSL):
    """Barlow Twins on (B, 2, 3, H, W) views.

    Args:
        backbone: backbone config.
        neck: projector config (default the paper's shape, Linear-BN-ReLU x 2 + Linear, at
            width 2048 instead of 8192).
        loss: default ``BarlowTwinsLoss(lambda_offdiag=0.0051)``.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=2048,
                              num_layers=3) if neck is None else neck,
                         loss or dict(type='BarlowTwinsLoss'), data_preprocessor, init_cfg)
