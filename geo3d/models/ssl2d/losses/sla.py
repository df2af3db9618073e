"""SLA: Self-supervised Label Augmentation (supervised; needs class labels).

Lee et al., "Self-supervised Label Augmentation via Input Transformations", ICML 2020 (official
code hankook/SLA, ``trainers.py``). Each image is seen under M transforms (rotations by 0, 90,
180, 270 degrees: M = 4) and one classifier predicts the *joint* label ``label * M + j`` over
N * M classes:

    L_SLA = (1 / M) sum_j CE(f(t_j x), (y, j))

At test time SLA+AG aggregates ``score_y = (1 / M) sum_j f_{(y, j)}(t_j x)``
(:func:`aggregate_joint_logits`). SLA+SD (:class:`SLASDLoss`) adds a single-label head g trained
with ``CE(g(x), y) + T^2 KL(softmax(agg / T) || softmax(g(x) / T))`` (aggregate detached).

Batches are sample-major as in the reference code: row ``b * M + j`` holds transform j of
image b (:func:`rotate_views`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ._checks import check_positive


def rotate_views(images: Tensor) -> Tensor:
    """The four rotations of each image, sample-major: (B, C, H, W) -> (4 B, C, H, W).

    Row ``b * 4 + j`` is image b rotated by ``j * 90`` degrees (counter-clockwise).
    """
    if images.ndim != 4:
        raise ValueError(f'rotate_views: images must be (B, C, H, W), got {tuple(images.shape)}')
    views = torch.stack([torch.rot90(images, j, dims=(2, 3)) for j in range(4)], dim=1)
    return views.flatten(0, 1)


def joint_labels(labels: Tensor, num_transforms: int = 4) -> Tensor:
    """Joint labels ``label * M + j`` for the sample-major layout: (B,) -> (B * M,)."""
    j = torch.arange(num_transforms, device=labels.device)
    return (labels[:, None] * num_transforms + j[None, :]).flatten()


def aggregate_joint_logits(joint_logits: Tensor, num_transforms: int = 4) -> Tensor:
    """SLA+AG scores: (B * M, N * M) joint logits -> (B, N), the mean over j of the logit of
    (y, j) on transform j."""
    m = num_transforms
    b, n = joint_logits.shape[0] // m, joint_logits.shape[1] // m
    per = joint_logits.view(b, m, n, m)  # [image, transform row, class, transform column]
    return torch.diagonal(per, dim1=1, dim2=3).mean(-1)


def _check_joint(owner: str, joint_logits: Tensor, labels: Tensor, m: int) -> int:
    """Validate shapes; returns the number of classes N."""
    if not isinstance(joint_logits, Tensor) or joint_logits.ndim != 2:
        raise ValueError(f'{owner}: joint_logits must be a (B * {m}, N * {m}) tensor')
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.dtype != torch.long:
        raise ValueError(f'{owner}: labels must be a (B,) long tensor')
    rows, cols = joint_logits.shape
    if rows != labels.shape[0] * m:
        raise ValueError(f'{owner}: joint_logits has {rows} rows but labels has '
                         f'{labels.shape[0]} samples x {m} transforms = {labels.shape[0] * m}')
    if cols % m:
        raise ValueError(f'{owner}: joint_logits has {cols} columns, not a multiple of '
                         f'num_transforms={m}')
    n = cols // m
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n):
        raise ValueError(f'{owner}: labels must lie in [0, {n}), got '
                         f'[{int(labels.min())}, {int(labels.max())}]')
    return n


@MODELS.register_module()
class SLALoss(nn.Module):
    """Joint-label cross entropy of SLA.

    Args:
        num_transforms: M (4 rotations).
        large_loss: multiply by M (the reference code's ``--with-large-loss`` for large
            datasets: a sum over transforms instead of a mean).
    """

    def __init__(self, num_transforms: int = 4, large_loss: bool = False) -> None:
        super().__init__()
        if int(num_transforms) < 1:
            raise ValueError(f'SLALoss: num_transforms must be >= 1, got {num_transforms}')
        self.num_transforms = int(num_transforms)
        self.large_loss = bool(large_loss)

    def forward(self, joint_logits: Tensor, labels: Tensor) -> Tensor:
        """Loss of sample-major joint logits.

        Args:
            joint_logits: (B * M, N * M) classifier outputs on :func:`rotate_views` images.
            labels: (B,) long class labels.

        Returns:
            scalar.
        """
        m = self.num_transforms
        _check_joint('SLALoss', joint_logits, labels, m)
        loss = F.cross_entropy(joint_logits, joint_labels(labels, m))
        return loss * m if self.large_loss else loss


@MODELS.register_module()
class SLASDLoss(SLALoss):
    """SLA+SD: joint CE + single-label CE + T^2-scaled self-distillation from the aggregate.

    Args:
        num_transforms: M.
        temperature: T of the distillation.
        large_loss: as :class:`SLALoss`.
    """

    def __init__(self, num_transforms: int = 4, temperature: float = 1.0,
                 large_loss: bool = False) -> None:
        super().__init__(num_transforms, large_loss)
        self.temperature = check_positive('SLASDLoss', 'temperature', temperature)

    def forward(self, joint_logits: Tensor, labels: Tensor,  # type: ignore[override]
                single_logits: Tensor) -> Tensor:
        """Loss of joint logits plus the single-label head.

        Args:
            joint_logits: (B * M, N * M) joint classifier outputs.
            labels: (B,) long class labels.
            single_logits: (B, N) single-label head outputs on the untransformed images.

        Returns:
            scalar.
        """
        m, t = self.num_transforms, self.temperature
        n = _check_joint('SLASDLoss', joint_logits, labels, m)
        if single_logits.shape != (labels.shape[0], n):
            raise ValueError(f'SLASDLoss: single_logits must have shape ({labels.shape[0]}, {n}),'
                             f' got {tuple(single_logits.shape)}')
        joint = super().forward(joint_logits, labels)
        agg = aggregate_joint_logits(joint_logits, m).detach()
        distill = F.kl_div(F.log_softmax(single_logits / t, dim=1), F.softmax(agg / t, dim=1),
                           reduction='batchmean')
        return joint + F.cross_entropy(single_logits, labels) + distill * t * t
