"""NT-Xent (normalised temperature-scaled cross entropy), the SimCLR loss.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
ICML 2020 (google-research/simclr). Default temperature 0.5 (SimCLR's CIFAR-10 recipe).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import check_embeddings, check_min_batch, check_positive, check_same_shape


@MODELS.register_module()
class NTXentLoss(nn.Module):
    r"""Symmetric NT-Xent over the 2N views of a batch.

    With :math:`\hat z` the L2-normalised embeddings of both views stacked (2N rows),
    :math:`s_{ik} = \hat z_i \cdot \hat z_k` and :math:`j(i)` the other view of sample i,

    .. math:: \ell_i = -\log \frac{\exp(s_{i j(i)}/\tau)}{\sum_{k \ne i} \exp(s_{ik}/\tau)}

    averaged over all 2N anchors; the denominator includes the positive.

    Args:
        temperature: :math:`\tau` > 0.
        gather_distributed: compute the loss over the batch of all ranks (see
            :mod:`geo3d.models.ssl2d.distributed` for the gradient convention).
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False) -> None:
        super().__init__()
        self.temperature = check_positive('NTXentLoss', 'temperature', temperature)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Loss of two views.

        Args:
            z_a: (B, D) embeddings of view A (any norm; normalised here).
            z_b: (B, D) embeddings of view B, row b the same image as ``z_a[b]``.

        Returns:
            scalar, the mean over 2 * B anchors (B of the global batch when gathering).
        """
        owner = 'NTXentLoss'
        check_embeddings(owner, 'z_a', z_a)
        check_embeddings(owner, 'z_b', z_b)
        check_same_shape(owner, 'z_a', z_a, 'z_b', z_b)
        if self.gather_distributed:
            z_a, z_b = gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b')
        n = z_a.shape[0]
        check_min_batch(owner, 'z_a', n, 2, 'the other samples are the negatives')
        z = F.normalize(torch.cat([z_a, z_b], dim=0), dim=1)
        logits = z @ z.T / self.temperature
        self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float('-inf'))
        target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)
        return F.cross_entropy(logits, target)
