"""GroCo: learning by sorting — a group-ranking contrastive loss through a differentiable
sorting network.

Shvetsova et al., "Learning by Sorting: Self-supervised Learning with Group Ordering
Constraints", ICCV 2023 (arXiv 2301.02009; official code ninatu/learning_by_sorting). For each
anchor view, the cosine similarities to its P positives (the image's other views) and to the
k hardest negatives (the other images under the anchor's view) are pre-ordered ascending and
concatenated as ``[k negatives | P positives]``. A relaxed odd-even sorting network
(``diffsort``, Cauchy relaxation) gives a soft permutation matrix ``X[i, r]`` (probability that
entry i lands at ascending rank r). The loss asks every negative to land in the k lowest ranks
and every positive in the P highest: the mean of the binary cross entropies of
``sum_{r >= k} X[i, r]`` against ``[i >= k]`` and of ``sum_{r < k} X[i, r]`` against ``[i < k]``,
averaged over anchors and anchor views. With ``stop_grad`` (default, as the paper) positives and
negatives are detached and only the anchor receives gradient.

Needs the ``diffsort`` package (``pip install diffsort==0.2.0``). Defaults: the paper's
``topk_neg=10``, steepness 1, art_lambda 0.25. The multi-crop variant (only full crops as
positives) is not implemented.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import check_embeddings, check_min_batch, check_positive


def _import_diffsort():
    try:
        import diffsort.functional
        import diffsort.networks
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError('GroCoLoss needs the diffsort package: pip install diffsort==0.2.0'
                          ) from err
    return diffsort


@MODELS.register_module()
class GroCoLoss(nn.Module):
    """Group-ordering contrastive loss over V >= 2 views.

    Args:
        topk_neg: k, hardest negatives per anchor (the batch must hold more than k images).
        steepness: steepness of the Cauchy relaxation of each swap.
        art_lambda: diffsort's ``art_lambda`` (used by its logistic_phi relaxation only).
        stop_grad: detach positives and negatives.
        gather_distributed: negatives from the batch of all ranks.
    """

    def __init__(self, topk_neg: int = 10, steepness: float = 1.0, art_lambda: float = 0.25,
                 stop_grad: bool = True, gather_distributed: bool = False) -> None:
        super().__init__()
        _import_diffsort()  # fail early; not kept as an attribute (modules do not deepcopy)
        if int(topk_neg) < 1:
            raise ValueError(f'GroCoLoss: topk_neg must be >= 1, got {topk_neg}')
        self.topk_neg = int(topk_neg)
        self.steepness = check_positive('GroCoLoss', 'steepness', steepness)
        self.art_lambda = float(art_lambda)
        self.stop_grad = bool(stop_grad)
        self.gather_distributed = bool(gather_distributed)
        self._networks: dict[tuple[int, str], list] = {}

    def _network(self, size: int, device: torch.device) -> list:
        """diffsort's odd-even network for ``size`` entries, cached per device."""
        key = (size, str(device))
        if key not in self._networks:
            self._networks[key] = _import_diffsort().networks.get_sorting_network(
                'odd_even', size, device)
        return self._networks[key]

    def soft_permutation(self, sims: Tensor) -> Tensor:
        """(A, n) scores -> (A, n, n) relaxed permutation, ``[a, i, r]`` = P(entry i at rank r)."""
        _, perm = _import_diffsort().functional.sort(self._network(sims.shape[1], sims.device),
                                                 sims, self.steepness, self.art_lambda, 'cauchy')
        return perm

    def forward(self, z: Tensor) -> Tensor:
        """Loss of V views of B images.

        Args:
            z: (B, V, D) embeddings (cosine similarities are used), ``z[b, v]`` view v of b.

        Returns:
            scalar.
        """
        owner = 'GroCoLoss'
        check_embeddings(owner, 'z', z, ndim=3)
        if z.shape[1] < 2:
            raise ValueError(f'{owner}: z must hold at least 2 views (dim 1), got shape '
                             f'{tuple(z.shape)}')
        if self.gather_distributed:
            z = gather_cat(z, 'z')
        n, views, k = z.shape[0], z.shape[1], self.topk_neg
        check_min_batch(owner, 'z', n, k + 1, f'topk_neg={k} negatives are other images')
        z = F.normalize(z, dim=2)
        others = z.detach() if self.stop_grad else z
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        labels = torch.cat([torch.zeros(k), torch.ones(views - 1)]).to(z)  # 1 = positive
        total = z.new_zeros(())
        for v in range(views):
            anchor = z[:, v]
            pos = torch.einsum('bd,bpd->bp', anchor,
                               others[:, [p for p in range(views) if p != v]])
            pos = pos.sort(dim=1).values  # ascending
            neg = (anchor @ others[:, v].T).masked_fill(eye, float('-inf'))
            neg = neg.topk(k, dim=1).values.flip(1)  # the k hardest, ascending
            perm = self.soft_permutation(torch.cat([neg, pos], dim=1))  # (B, k+P, k+P)
            pred_pos = perm[:, :, k:].sum(2).clamp(0, 1)
            pred_neg = perm[:, :, :k].sum(2).clamp(0, 1)
            target = labels.expand_as(pred_pos)
            total = total + 0.5 * (F.binary_cross_entropy(pred_pos, target)
                                   + F.binary_cross_entropy(pred_neg, 1.0 - target))
        return total / views
