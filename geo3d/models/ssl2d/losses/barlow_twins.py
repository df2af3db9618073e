"""Barlow Twins: redundancy reduction on the cross-correlation of two views.

Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021
(facebookresearch/barlowtwins). Default lambda 0.0051 (the paper's ImageNet value);
standardisation as the official ``BatchNorm1d(affine=False)``: biased batch variance, eps 1e-5.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import (check_embeddings, check_min_batch, check_nonnegative, check_same_shape)


def standardize(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-dimension standardisation over the batch: (B, D) -> (B, D).

    ``(z - mean) / sqrt(var + eps)`` with the biased variance, i.e. BatchNorm without affine in
    training mode.
    """
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) / torch.sqrt(var + eps)


def cross_correlation(z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """(B, D), (B, D) -> (D, D) ``C = standardize(z_a)^T standardize(z_b) / B``."""
    return standardize(z_a, eps).T @ standardize(z_b, eps) / z_a.shape[0]


def redundancy_reduction(c: Tensor, lambda_offdiag: float) -> Tensor:
    """(D, D) -> scalar ``sum_i (1 - C_ii)^2 + lambda * sum_{i != j} C_ij^2``."""
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambda_offdiag * off


@MODELS.register_module()
class BarlowTwinsLoss(nn.Module):
    r"""Barlow Twins loss.

    .. math:: L = \sum_i (1 - C_{ii})^2 + \lambda \sum_i \sum_{j \ne i} C_{ij}^2,
              \quad C = \tfrac{1}{N} \tilde z_A^\top \tilde z_B

    with :math:`\tilde z` standardised per dimension over the batch (N samples).

    Args:
        lambda_offdiag: :math:`\lambda`, weight of the off-diagonal (redundancy) term.
        eps: added to the batch variance before the square root.
        gather_distributed: standardise and correlate over the batch of all ranks, so C is the
            global-batch cross-correlation (gradient convention in
            :mod:`geo3d.models.ssl2d.distributed`).
    """

    def __init__(self, lambda_offdiag: float = 0.0051, eps: float = 1e-5,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        self.lambda_offdiag = check_nonnegative('BarlowTwinsLoss', 'lambda_offdiag',
                                                lambda_offdiag)
        self.eps = check_nonnegative('BarlowTwinsLoss', 'eps', eps)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Loss of two views.

        Args:
            z_a: (B, D) projector outputs of view A.
            z_b: (B, D) projector outputs of view B.

        Returns:
            scalar.
        """
        owner = 'BarlowTwinsLoss'
        check_embeddings(owner, 'z_a', z_a)
        check_embeddings(owner, 'z_b', z_b)
        check_same_shape(owner, 'z_a', z_a, 'z_b', z_b)
        if self.gather_distributed:
            z_a, z_b = gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b')
        check_min_batch(owner, 'z_a', z_a.shape[0], 2, 'standardisation is over the batch')
        return redundancy_reduction(cross_correlation(z_a, z_b, self.eps), self.lambda_offdiag)
