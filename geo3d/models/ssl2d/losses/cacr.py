"""CACR: Contrastive Attraction and Contrastive Repulsion.

Zheng et al., "Contrastive Attraction and Contrastive Repulsion for Representation Learning",
TMLR 2023 (arXiv 2105.03746; official code JegZheng/CACR-SSL,
``small_scale_experiments/losses``). With L2-normalised views of each image:

* attraction: for each query view, its other views of the same image are positives, weighted by
  ``softmax_k(tau_pos * ||z_q - z_k||^2)`` (farther positives weigh more), cost
  ``alpha ||z_q - z_k||^2``; averaged over query views and samples;
* repulsion: for each pair of views (x < y), the other images' view y are negatives of z_x[i],
  weighted by ``softmax_j(-tau_neg * ||z_x[i] - z_y[j]||^2)`` (closer negatives weigh more),
  cost ``-beta ||z_x[i] - z_y[j]||^2``; averaged over samples and view pairs.

The weights are not detached (as in the reference code). Defaults: alpha = beta = 1,
tau_pos = 1, tau_neg = 0.9 (the CIFAR-10 value; 2.0 for CIFAR-100 and STL-10).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import check_embeddings, check_min_batch, check_nonnegative


@MODELS.register_module()
class CACRLoss(nn.Module):
    """Contrastive attraction + contrastive repulsion over V >= 2 views.

    Args:
        alpha: scale of the attraction cost.
        beta: scale of the repulsion cost.
        tau_pos: sharpness of the positive (attraction) weights.
        tau_neg: sharpness of the negative (repulsion) weights.
        gather_distributed: negatives from the batch of all ranks.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, tau_pos: float = 1.0,
                 tau_neg: float = 0.9, gather_distributed: bool = False) -> None:
        super().__init__()
        owner = 'CACRLoss'
        self.alpha = check_nonnegative(owner, 'alpha', alpha)
        self.beta = check_nonnegative(owner, 'beta', beta)
        self.tau_pos = check_nonnegative(owner, 'tau_pos', tau_pos)
        self.tau_neg = check_nonnegative(owner, 'tau_neg', tau_neg)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z: Tensor) -> Tensor:
        """Loss of V views of B images.

        Args:
            z: (B, V, D) embeddings (normalised here), ``z[b, v]`` view v of image b.

        Returns:
            scalar, attraction + repulsion.
        """
        owner = 'CACRLoss'
        check_embeddings(owner, 'z', z, ndim=3)
        if z.shape[1] < 2:
            raise ValueError(f'{owner}: z must hold at least 2 views (dim 1), got shape '
                             f'{tuple(z.shape)}')
        if self.gather_distributed:
            z = gather_cat(z, 'z')
        n, views = z.shape[0], z.shape[1]
        check_min_batch(owner, 'z', n, 2, 'the other images are the negatives')
        z = F.normalize(z, dim=2)
        # squared distances of unit vectors: ||a - b||^2 = 2 - 2 a.b
        dist2 = 2.0 - 2.0 * torch.einsum('bvd,bwd->bvw', z, z)  # (B, V, V)
        off_view = ~torch.eye(views, dtype=torch.bool, device=z.device)
        pos_d2 = dist2[:, off_view].view(n, views, views - 1)  # (B, V, V-1)
        pos_w = torch.softmax(self.tau_pos * pos_d2, dim=2)
        attraction = (pos_w * self.alpha * pos_d2).sum(2).mean()

        off_sample = ~torch.eye(n, dtype=torch.bool, device=z.device)
        repulsion = z.new_zeros(())
        pairs = 0
        for x in range(views):
            for y in range(x + 1, views):
                d2 = (2.0 - 2.0 * z[:, x] @ z[:, y].T)[off_sample].view(n, n - 1)
                w = torch.softmax(-self.tau_neg * d2, dim=1)
                repulsion = repulsion + (w * (-self.beta) * d2).sum(1).mean()
                pairs += 1
        return attraction + repulsion / pairs
