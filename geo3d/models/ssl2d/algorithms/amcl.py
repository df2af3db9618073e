"""AMCL: adaptive multi-head contrastive learning (SimCLR form).

Wang et al., "Adaptive Multi-head Contrastive Learning", ECCV 2024 (arXiv 2310.05615). C
projection heads (:class:`~geo3d.models.ssl2d.necks.MultiHeadProjection`) embed both views;
:class:`~geo3d.models.ssl2d.losses.AMCLLoss` gives every pair its own temperature from a small
network (trained with the model: it is a submodule of the loss).
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from geo3d.registry import MODELS

from .base import BaseSSL2D


@MODELS.register_module()
class AMCL(BaseSSL2D):
    """AMCL on (B, 2, 3, H, W) views.

    Args:
        backbone: backbone config.
        neck: ``MultiHeadProjection`` config (default 3 heads, 512 -> 128, the author code's).
        loss: ``AMCLLoss`` config; ``dim`` and ``num_heads`` default to the neck's.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        neck = dict(neck or dict(type='MultiHeadProjection', num_heads=3, hidden_channels=512,
                                 out_channels=128))
        loss = dict(loss or dict(type='AMCLLoss'))
        loss.setdefault('dim', neck.get('out_channels', 128))
        loss.setdefault('num_heads', neck.get('num_heads', 3))
        super().__init__(backbone, neck, loss, data_preprocessor, init_cfg)
        heads = getattr(self.neck, 'num_heads', None)
        if heads != self.loss_module.num_heads or \
                getattr(self.neck, 'out_channels', None) != self.loss_module.dim:
            raise ValueError(f'AMCL: the neck gives {heads} heads of '
                             f'{getattr(self.neck, "out_channels", None)}-D but the loss expects '
                             f'{self.loss_module.num_heads} of {self.loss_module.dim}-D')

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        if views.shape[1] != 2:
            raise ValueError(f'AMCL: needs exactly 2 views per image, got {views.shape[1]}')
        z = self.embed(views)  # (B, 2, C, D)
        return {'loss': self.loss_module(z[:, 0], z[:, 1])}
