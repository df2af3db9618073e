"""GroCo: learning by sorting — positives must rank above the hardest negatives.

Shvetsova et al., "Learning by Sorting: Self-supervised Learning with Group Ordering
Constraints", ICCV 2023 (ninatu/learning_by_sorting). Backbone -> projector ->
:class:`~geo3d.models.ssl2d.losses.GroCoLoss` (a relaxed odd-even sorting network from the
``diffsort`` package) on the (B, V, D) embeddings.
"""
from __future__ import annotations

from torch import nn

from geo3d.registry import MODELS

from .base import MultiViewSSL


@MODELS.register_module()
class GroCo(MultiViewSSL):
    """GroCo on (B, V, 3, H, W) views, V >= 2 (the paper: 2 or 4 views).

    Args:
        backbone: backbone config.
        neck: projector config (default a 3-layer MLP with BN to 2048-D, the paper's shape).
        loss: default ``GroCoLoss(topk_neg=10)``; the batch must hold more than ``topk_neg``
            images.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=2048,
                              num_layers=3) if neck is None else neck,
                         loss or dict(type='GroCoLoss'), data_preprocessor, init_cfg)
