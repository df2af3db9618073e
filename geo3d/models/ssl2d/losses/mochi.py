"""MoCHi: hard negative mixing for MoCo-style contrastive learning.

Kalantidis et al., "Hard Negative Mixing for Contrastive Learning", NeurIPS 2020. No official
code was found; this follows the paper. For each query q the N hardest queue entries (highest
q . n) are mixed into synthetic negatives:

* type 1 (s of them): ``h = normalize(alpha n_i + (1 - alpha) n_j)``, n_i, n_j among the N
  hardest, alpha ~ U(0, 1);
* type 2 (s' of them): ``h' = normalize(beta q + (1 - beta) n_j)``, beta ~ U(0, 0.5).

Synthetic negatives are per query, detached, and never enter the queue. The queue, its
update and the momentum key encoder belong to the algorithm. Defaults: MoCo-v2's temperature
0.2 and the paper's MoCHi(N=1024, s=1024, s'=128) configuration.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ._checks import check_embeddings, check_positive, check_same_shape


class HardNegatives(NamedTuple):
    """Synthetic negatives and how they were made (queue indices refer to rows of the queue).

    negatives: (B, s + s', D) unit-norm, detached; the first s are type 1, the rest type 2.
    hardest: (B, N) queue indices of the N hardest negatives per query, hardest first.
    mix_i, mix_j: (B, s) queue indices mixed by type 1; alpha: (B, s) their weights.
    query_j: (B, s') queue indices mixed with the query by type 2; beta: (B, s') the query's
    weights.
    """
    negatives: Tensor
    hardest: Tensor
    mix_i: Tensor
    mix_j: Tensor
    alpha: Tensor
    query_j: Tensor
    beta: Tensor


@torch.no_grad()
def mix_hard_negatives(q: Tensor, queue: Tensor, num_hard: int, num_mix: int,
                       num_query_mix: int, generator: torch.Generator | None = None
                       ) -> HardNegatives:
    """Synthesise MoCHi hard negatives for each query.

    Args:
        q: (B, D) queries (normalised here).
        queue: (K, D) negative keys (normalised here), K >= num_hard.
        num_hard: N, how many of the hardest queue entries are mixed.
        num_mix: s, type-1 negatives per query (mixes of two hard negatives).
        num_query_mix: s', type-2 negatives per query (mixes of the query and a hard negative).
        generator: random generator for reproducible mixes.

    Returns:
        :class:`HardNegatives`.
    """
    if queue.shape[0] < num_hard:
        raise ValueError(f'mix_hard_negatives: queue holds {queue.shape[0]} keys, fewer than '
                         f'num_hard={num_hard}')
    q = F.normalize(q, dim=1)
    queue = F.normalize(queue, dim=1)
    b, device = q.shape[0], q.device
    hardest = (q @ queue.T).topk(num_hard, dim=1).indices  # (B, N), hardest first

    def pick(count: int) -> Tensor:
        pos = torch.randint(num_hard, (b, count), generator=generator, device=device)
        return torch.gather(hardest, 1, pos)

    def uniform(count: int, high: float) -> Tensor:
        return torch.rand((b, count), generator=generator, device=device, dtype=q.dtype) * high

    mix_i, mix_j, alpha = pick(num_mix), pick(num_mix), uniform(num_mix, 1.0)
    type1 = alpha[..., None] * queue[mix_i] + (1.0 - alpha[..., None]) * queue[mix_j]
    query_j, beta = pick(num_query_mix), uniform(num_query_mix, 0.5)
    type2 = beta[..., None] * q[:, None, :] + (1.0 - beta[..., None]) * queue[query_j]
    negatives = F.normalize(torch.cat([type1, type2], dim=1), dim=2)
    return HardNegatives(negatives, hardest, mix_i, mix_j, alpha, query_j, beta)


@MODELS.register_module()
class MoCHiLoss(nn.Module):
    r"""InfoNCE against a queue plus MoCHi's synthetic hard negatives.

    .. math:: \ell = -\log \frac{\exp(q \cdot k^+/\tau)}{\exp(q \cdot k^+/\tau)
              + \sum_{n \in Q} \exp(q \cdot n/\tau) + \sum_{h \in H(q)} \exp(q \cdot h/\tau)}

    averaged over the queries. Keys, queue and synthetic negatives are detached (they come from
    the momentum encoder); the gradient flows through q only. ``num_mix = num_query_mix = 0``
    is plain MoCo-v2 (e.g. during the paper's warm-up epochs).

    Args:
        temperature: :math:`\tau`.
        num_hard: N, hardest queue entries used for mixing.
        num_mix: s, type-1 synthetic negatives per query.
        num_query_mix: s', type-2 synthetic negatives per query.
    """

    def __init__(self, temperature: float = 0.2, num_hard: int = 1024, num_mix: int = 1024,
                 num_query_mix: int = 128) -> None:
        super().__init__()
        owner = 'MoCHiLoss'
        self.temperature = check_positive(owner, 'temperature', temperature)
        if num_mix < 0 or num_query_mix < 0:
            raise ValueError(f'{owner}: num_mix and num_query_mix must be >= 0, got {num_mix}, '
                             f'{num_query_mix}')
        if (num_mix or num_query_mix) and num_hard < 1:
            raise ValueError(f'{owner}: num_hard must be >= 1 when mixing, got {num_hard}')
        self.num_hard, self.num_mix, self.num_query_mix = num_hard, num_mix, num_query_mix

    def forward(self, q: Tensor, k: Tensor, queue: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
        """Loss of queries against their keys, the queue and mixed hard negatives.

        Args:
            q: (B, D) queries from the trained encoder.
            k: (B, D) positive keys from the momentum encoder.
            queue: (K, D) negative keys.
            generator: random generator for the mixing.

        Returns:
            scalar.
        """
        owner = 'MoCHiLoss'
        check_embeddings(owner, 'q', q)
        check_embeddings(owner, 'k', k)
        check_embeddings(owner, 'queue', queue)
        check_same_shape(owner, 'q', q, 'k', k)
        if queue.shape[1] != q.shape[1]:
            raise ValueError(f'{owner}: queue has dim {queue.shape[1]} but q has dim {q.shape[1]}')
        q_n = F.normalize(q, dim=1)
        k_n = F.normalize(k.detach(), dim=1)
        queue_n = F.normalize(queue.detach(), dim=1)
        parts = [(q_n * k_n).sum(1, keepdim=True), q_n @ queue_n.T]
        if self.num_mix or self.num_query_mix:
            if queue.shape[0] < self.num_hard:
                raise ValueError(f'{owner}: queue holds {queue.shape[0]} keys, fewer than '
                                 f'num_hard={self.num_hard}')
            hard = mix_hard_negatives(q.detach(), queue_n, self.num_hard, self.num_mix,
                                      self.num_query_mix, generator)
            parts.append(torch.einsum('bd,bsd->bs', q_n, hard.negatives))
        logits = torch.cat(parts, dim=1) / self.temperature
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target)
