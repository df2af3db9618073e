"""Mixed Barlow Twins: Barlow Twins plus a regulariser on a third, mixed-sample forward pass.

Bandara et al., "Guarding Barlow Twins Against Overfitting with Mixed Samples", arXiv 2312.02151
(wgcban/mix-bt). Each step draws ``alpha ~ Beta(mix_alpha, mix_alpha)`` (Beta(1, 1) = U(0, 1),
the paper's choice) and a random permutation of the batch, embeds
``x_m = alpha x_a + (1 - alpha) x_b[perm]`` (:func:`~geo3d.models.ssl2d.losses.mix_views`) in
a separate forward pass (as the reference code), and passes the three embeddings to
:class:`~geo3d.models.ssl2d.losses.MixedBarlowTwinsLoss`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..losses import mix_views
from .base import BaseSSL2D


@MODELS.register_module()
class MixedBarlowTwins(BaseSSL2D):
    """Mixed Barlow Twins on (B, 2, 3, H, W) views.

    Args:
        backbone: backbone config.
        neck: projector config (default the CIFAR recipe's Linear(C, 512)-BN-ReLU-Linear(512,
            1024)).
        loss: default ``MixedBarlowTwinsLoss()`` (lambda 1/128, mixup_loss_scale 4).
        mix_alpha: the Beta(a, a) parameter of the mixing weight.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 mix_alpha: float = 1.0, data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        if not mix_alpha > 0:
            raise ValueError(f'MixedBarlowTwins: mix_alpha must be > 0, got {mix_alpha}')
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=512, out_channels=1024,
                              num_layers=2) if neck is None else neck,
                         loss or dict(type='MixedBarlowTwinsLoss'), data_preprocessor, init_cfg)
        self.mix_alpha = float(mix_alpha)

    def draw_mix(self, batch: int, device: torch.device) -> tuple[float, Tensor]:
        """alpha ~ Beta(a, a) and a random permutation of ``batch`` (torch's global RNG)."""
        a = torch.tensor(self.mix_alpha)
        alpha = float(torch.distributions.Beta(a, a).sample())
        return alpha, torch.randperm(batch).to(device)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        if views.shape[1] != 2:
            raise ValueError(f'MixedBarlowTwins: needs exactly 2 views per image, got '
                             f'{views.shape[1]}')
        alpha, perm = self.draw_mix(views.shape[0], views.device)
        z = self.embed(views)
        z_m = self.project(mix_views(views[:, 0], views[:, 1], alpha, perm))
        return {'loss': self.loss_module(z[:, 0], z[:, 1], z_m, alpha, perm)}
