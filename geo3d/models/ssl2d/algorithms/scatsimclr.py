"""ScatSimCLR: SimCLR on a scattering backbone, regularised by a rotation pretext task.

Kinakh et al., "ScatSimCLR: self-supervised contrastive learning with pretext task
regularization for small-scale datasets", ICCV 2021 workshops (arXiv 2108.13939; official code
vkinakh/scatsimclr, ``src/trainer/pretext_task_trainer.py``). The loss is

    L = NT-Xent(z_a, z_b)  +  lambda CE(g(h(rot_k(x))), k)

with h the backbone (:class:`~geo3d.models.backbones.scattering.ScatNetBackbone` in the paper),
g a pretext head on the backbone features (Linear-ReLU-Dropout x 2 + Linear to 4 classes, as the
reference) and rot_k a rotation by k * 90 degrees, k drawn uniformly per image. Here the pretext
images are view 0 of each sample (one extra backbone pass of B images); the reference code
builds them in its data loader. Defaults: temperature 0.5, lambda 0.3.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from .base import TwoViewSSL

NUM_ROTATIONS = 4


def rotate_each(images: Tensor, k: Tensor) -> Tensor:
    """Rotate image b of (B, C, S, S) by ``k[b] * 90`` degrees (counter-clockwise)."""
    out = images.clone()
    for j in range(NUM_ROTATIONS):
        rows = k == j
        if rows.any():
            out[rows] = torch.rot90(images[rows], j, dims=(2, 3))
    return out


@MODELS.register_module()
class ScatSimCLR(TwoViewSSL):
    """SimCLR + rotation pretext on (B, 2, 3, S, S) views.

    Args:
        backbone: backbone config (the paper: ``ScatNetBackbone``).
        neck: projector config (default a 2-layer MLP to 128-D).
        loss: default ``NTXentLoss(temperature=0.5)``.
        pretext_weight: lambda of the rotation loss.
        pretext_hidden: widths of the pretext head's two hidden layers.
        pretext_dropout: dropout after each hidden layer.
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    def __init__(self, backbone: dict, neck: dict | None = None, loss: dict | None = None,
                 pretext_weight: float = 0.3, pretext_hidden: tuple[int, int] = (512, 128),
                 pretext_dropout: float = 0.5, data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        super().__init__(backbone,
                         dict(type='ProjectionMLP', hidden_channels=512, out_channels=128)
                         if neck is None else neck,
                         loss or dict(type='NTXentLoss', temperature=0.5), data_preprocessor,
                         init_cfg)
        if pretext_weight < 0:
            raise ValueError(f'ScatSimCLR: pretext_weight must be >= 0, got {pretext_weight}')
        self.pretext_weight = float(pretext_weight)
        h1, h2 = pretext_hidden
        self.pretext_head = nn.Sequential(
            nn.Linear(int(self.backbone.out_channels), h1), nn.ReLU(inplace=True),
            nn.Dropout(pretext_dropout), nn.Linear(h1, h2), nn.ReLU(inplace=True),
            nn.Dropout(pretext_dropout), nn.Linear(h2, NUM_ROTATIONS))

    def draw_rotations(self, batch: int, device: torch.device) -> Tensor:
        """(B,) rotation classes in 0..3 (torch's global RNG)."""
        return torch.randint(NUM_ROTATIONS, (batch,)).to(device)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        views = self.views(inputs)
        if views.shape[1] != 2:
            raise ValueError(f'ScatSimCLR: needs exactly 2 views per image, got {views.shape[1]}')
        if views.shape[-1] != views.shape[-2]:
            raise ValueError(f'ScatSimCLR: rotations need square images, got '
                             f'{tuple(views.shape)}')
        z = self.embed(views)
        k = self.draw_rotations(views.shape[0], views.device)
        logits = self.pretext_head(self.backbone(rotate_each(views[:, 0], k)))
        return {'loss_contrastive': self.loss_module(z[:, 0], z[:, 1]),
                'loss_rotation': self.pretext_weight * F.cross_entropy(logits, k)}
