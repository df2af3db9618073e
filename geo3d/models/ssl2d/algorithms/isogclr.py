"""iSogCLR: contrastive learning with an individual, learned temperature per training image.

Qiu et al., "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with
Automatic Temperature Individualization", ICML 2023 (zhqiu/contrastive-learning-iSogCLR). The
SimCLR pipeline with :class:`~geo3d.models.ssl2d.losses.ISogCLRLoss`, whose per-sample state
(moving averages, temperatures) is indexed by the dataset indices the loader returns in
``data_samples['sample_idx']`` (``PackImageViews(meta_keys=(..., 'sample_idx'))``).
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from geo3d.registry import MODELS

from .base import BaseSSL2D, sample_values


@MODELS.register_module()
class ISogCLR(BaseSSL2D):
    """iSogCLR on (B, 2, 3, H, W) views with dataset indices.

    Args:
        backbone: backbone config. neck: projector config (default a 2-layer MLP to 128-D).
        loss: ``ISogCLRLoss`` config; ``num_samples`` must be the training set's size.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, loss: dict, neck: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        if loss.get('type') != 'ISogCLRLoss' or 'num_samples' not in loss:
            raise ValueError('ISogCLR: loss must be an ISogCLRLoss config with num_samples (the '
                             f'training set size), got {loss!r}')
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=2048, out_channels=128)
                         if neck is None else neck, loss, data_preprocessor, init_cfg)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        index = sample_values(self.owner, data_samples, 'sample_idx', views.shape[0],
                              "dataset indices; add 'sample_idx' to PackImageViews' meta_keys")
        z = self.embed(views)
        return {'loss': self.loss_module(z[:, 0], z[:, 1], index.long())}
