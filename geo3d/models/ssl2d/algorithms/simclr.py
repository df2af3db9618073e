"""SimCLR: contrastive learning of two augmented views with the NT-Xent loss.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020
(google-research/simclr). Backbone -> MLP projector ->
:class:`~geo3d.models.ssl2d.losses.NTXentLoss` over the 2B views of the (global) batch.
"""
from __future__ import annotations

from torch import nn

from geo3d.registry import MODELS

from .base import TwoViewSSL


@MODELS.register_module()
class SimCLR(TwoViewSSL):
    """SimCLR on (B, 2, 3, H, W) views.

    Args:
        backbone: backbone config. neck: projector config (default a 2-layer MLP to 128-D).
        loss: default ``NTXentLoss(temperature=0.5)`` (the CIFAR-10 recipe).
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=128)
                         if neck is None else neck,
                         loss or dict(type='NTXentLoss', temperature=0.5), data_preprocessor,
                         init_cfg)
