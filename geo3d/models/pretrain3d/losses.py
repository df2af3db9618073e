"""Feature-regression losses for teacher-student masked prediction.

MSM (arXiv 2504.06719) regresses teacher features at masked voxels but does not state the
loss; two common choices are offered: ``'cosine'`` (``1 - cos``, as BYOL / iBOT-style feature
prediction) and ``'smooth_l1'`` on normalised targets (as data2vec: targets normalised per
level, then a Smooth-L1 regression).
"""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

LossType = Literal['cosine', 'smooth_l1']
TargetNorm = Literal['layer', 'standardize', 'none']


def normalize_target(target: Tensor, norm: TargetNorm = 'layer', eps: float = 1e-6) -> Tensor:
    """Normalise (M, C) targets.

    ``'layer'``: per row, LayerNorm without affine (zero mean, unit variance over C);
    ``'standardize'``: per feature over the M rows (zero mean, unit variance per channel);
    ``'none'``: unchanged.
    """
    if norm == 'layer':
        return F.layer_norm(target, target.shape[-1:], eps=eps)
    if norm == 'standardize':
        if target.shape[0] < 2:
            return target - target.mean(0, keepdim=True)
        mean = target.mean(0, keepdim=True)
        var = target.var(0, unbiased=False, keepdim=True)
        return (target - mean) / (var + eps).sqrt()
    if norm == 'none':
        return target
    raise ValueError(f"target norm must be 'layer', 'standardize' or 'none', got {norm!r}")


def cosine_loss(pred: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean of ``1 - cos(pred_i, target_i)`` over rows: (M, C), (M, C) -> scalar."""
    return (1.0 - F.cosine_similarity(pred, target, dim=-1, eps=eps)).mean()


def smooth_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Smooth-L1 (Huber / beta) averaged over rows and channels: (M, C), (M, C) -> scalar."""
    return F.smooth_l1_loss(pred, target, beta=beta, reduction='mean')


def feature_loss(pred: Tensor, target: Tensor, loss: LossType = 'cosine',
                 target_norm: TargetNorm = 'layer', beta: float = 1.0) -> Tensor:
    """Loss between student predictions and (detached, normalised) teacher targets.

    Args:
        pred: (M, C) student predictions; target: (M, C) teacher features (detached here).
        loss: ``'cosine'`` or ``'smooth_l1'``.
        target_norm: see :func:`normalize_target`.
        beta: Smooth-L1 transition point.

    Returns:
        scalar; ``0 * pred.sum()`` (keeps the graph) when M = 0.
    """
    if pred.shape != target.shape:
        raise ValueError(f'pred {tuple(pred.shape)} and target {tuple(target.shape)} differ')
    if pred.shape[0] == 0:
        return pred.sum() * 0.0
    target = normalize_target(target.detach(), target_norm)
    if loss == 'cosine':
        return cosine_loss(pred, target)
    if loss == 'smooth_l1':
        return smooth_l1_loss(pred, target, beta)
    raise ValueError(f"loss must be 'cosine' or 'smooth_l1', got {loss!r}")
