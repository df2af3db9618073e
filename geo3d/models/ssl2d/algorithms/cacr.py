"""CACR: contrastive attraction and contrastive repulsion over V >= 2 views of each image.

Zheng et al., "Contrastive Attraction and Contrastive Repulsion for Representation Learning",
TMLR 2023 (JegZheng/CACR-SSL). Backbone -> projector -> :class:`~geo3d.models.ssl2d.losses.CACRLoss`
on the (B, V, D) embeddings (the paper's small-scale recipe: 4 views).
"""
from __future__ import annotations

from torch import nn

from geo3d.registry import MODELS

from .base import MultiViewSSL


@MODELS.register_module()
class CACR(MultiViewSSL):
    """CACR on (B, V, 3, H, W) views, V >= 2.

    Args:
        backbone: backbone config. neck: projector config (default a 2-layer MLP to 128-D).
        loss: default ``CACRLoss()`` (alpha = beta = 1, tau_pos 1, tau_neg 0.9).
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=128)
                         if neck is None else neck,
                         loss or dict(type='CACRLoss'), data_preprocessor, init_cfg)
