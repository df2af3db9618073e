"""Per-point semantic segmentation head."""
from __future__ import annotations

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from geo3d.registry import MODELS


@MODELS.register_module()
class LinearSegHead(BaseModule):
    """A linear classifier on per-point (per-voxel) features.

    Args:
        in_channels: feature width C.
        num_classes: K.
        dropout: dropout before the classifier.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0,
                 init_cfg: dict | None = None) -> None:
        super().__init__(init_cfg)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.cls = nn.Linear(in_channels, num_classes)

    def forward(self, feat: Tensor) -> Tensor:
        """(N, C) -> (N, K) logits."""
        return self.cls(self.dropout(feat))
