"""SLA: self-supervised label augmentation (supervised: needs class labels).

Lee et al., "Self-supervised Label Augmentation via Input Transformations", ICML 2020
(hankook/SLA). Each image is rotated by 0/90/180/270 degrees
(:func:`~geo3d.models.ssl2d.losses.rotate_views`) and one linear classifier on the backbone
features predicts the joint (class, rotation) label over 4 N classes
(:class:`~geo3d.models.ssl2d.losses.SLALoss`). With ``self_distill`` a single-label head on the
unrotated images is trained as well, distilled from the aggregate (SLA+SD,
:class:`~geo3d.models.ssl2d.losses.SLASDLoss`). Prediction is SLA+AG: the mean over rotations j
of the joint logit of (y, j) on the image rotated by j.

Labels come from ``data_samples['gt_label']``. Inputs may be images (B, 3, H, W) or views
(B, V, 3, H, W), of which view 0 (an augmented copy) is used.
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from geo3d.registry import MODELS

from ..losses import aggregate_joint_logits, rotate_views
from .base import BaseSSL2D, sample_values

NUM_ROTATIONS = 4


@MODELS.register_module()
class SLA(BaseSSL2D):
    """SLA (or SLA+SD) classifier.

    Args:
        backbone: backbone config.
        num_classes: N.
        self_distill: add the single-label head and self-distillation (SLA+SD).
        temperature: distillation temperature T (SLA+SD).
        large_loss: sum over rotations instead of the mean (the reference's large-dataset
            option).
        data_preprocessor: default ``ImageViewsDataPreprocessor``.
    """

    min_views = None

    def __init__(self, backbone: dict, num_classes: int, self_distill: bool = False,
                 temperature: float = 1.0, large_loss: bool = False,
                 data_preprocessor: dict | nn.Module | None = None,
                 init_cfg: dict | None = None) -> None:
        if int(num_classes) < 2:
            raise ValueError(f'SLA: num_classes must be >= 2, got {num_classes}')
        loss = dict(type='SLASDLoss', temperature=temperature) if self_distill \
            else dict(type='SLALoss')
        super().__init__(backbone, None, dict(loss, num_transforms=NUM_ROTATIONS,
                                              large_loss=large_loss),
                         data_preprocessor, init_cfg)
        self.num_classes = int(num_classes)
        channels = int(self.backbone.out_channels)
        self.joint_head = nn.Linear(channels, self.num_classes * NUM_ROTATIONS)
        self.single_head = nn.Linear(channels, self.num_classes) if self_distill else None

    def images(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) images, view 0 of (B, V, 3, H, W) views."""
        if isinstance(inputs, Tensor) and inputs.ndim == 5:
            return inputs[:, 0]
        if not isinstance(inputs, Tensor) or inputs.ndim != 4:
            raise ValueError(f'SLA: inputs must be (B, 3, H, W) images or (B, V, 3, H, W) views, '
                             f'got {getattr(inputs, "shape", type(inputs).__name__)}')
        if inputs.shape[-1] != inputs.shape[-2]:
            raise ValueError(f'SLA: rotations need square images, got {tuple(inputs.shape)}')
        return inputs

    def joint_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, H, W) -> joint logits (4 B, 4 N) of the rotated images (sample-major) and
        their backbone features (4 B, C)."""
        feats = self.backbone(rotate_views(images))
        return self.joint_head(feats), feats

    def predict_scores(self, images: Tensor) -> Tensor:
        """SLA+AG class scores (B, N)."""
        joint, _ = self.joint_logits(self.images(images))
        return aggregate_joint_logits(joint, NUM_ROTATIONS)

    def loss(self, inputs: Tensor, data_samples: Any = None) -> dict[str, Tensor]:
        images = self.images(inputs)
        labels = sample_values(self.owner, data_samples, 'gt_label', images.shape[0],
                               "class labels; SLA is supervised: add 'gt_label' to "
                               "PackImageViews' meta_keys").long()
        joint, feats = self.joint_logits(images)
        if self.single_head is None:
            return {'loss': self.loss_module(joint, labels)}
        single = self.single_head(feats[0::NUM_ROTATIONS])  # rotation 0 rows
        return {'loss': self.loss_module(joint, labels, single)}

    def forward(self, inputs: Tensor, data_samples: Any = None, mode: str = 'tensor') -> Any:
        if mode == 'predict':
            return self.predict_scores(inputs)
        return super().forward(inputs, data_samples, mode)
