"""AMCL: Adaptive Multi-head Contrastive Learning (SimCLR form).

Wang et al., "Adaptive Multi-head Contrastive Learning", ECCV 2024 (arXiv 2310.05615; author
code LeiWangR/cl). C projection heads each give an embedding; every pair gets its own
temperature from a small network on the pair, and the loss of anchor i in head c is

    -s(z_i, z_i^+) / tau_i^+  +  mean_{n in top-k} s(z_i, z_n^-) / tau_in^-
    +  beta Omega(tau_i^+)  -  beta mean_{n in top-k} Omega(tau_in^-)

with ``Omega(tau) = (d / 2) log tau + 1 / tau`` (d the embedding dimension) and the top-k
hardest (most similar) negatives (k = 1 is the paper's max over negatives). The temperature
of a pair is ``tau_min + (tau_max - tau_min) sigmoid(-<phi(z_1), phi(z_2)>)`` with phi a
two-layer MLP shared by the heads (the author code's TemperatureHead). Negatives of an anchor
are the other samples' two views; the loss is summed over heads and averaged over both view
directions. The multi-head projector belongs to the algorithm. Defaults from the author code:
3 heads, beta 0.1, tau in [1e-5, 2].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import check_embeddings, check_min_batch, check_nonnegative, check_positive


def omega(tau: Tensor, dim: int) -> Tensor:
    """AMCL's temperature regulariser ``(dim / 2) log tau + 1 / tau`` (elementwise)."""
    return 0.5 * dim * torch.log(tau) + 1.0 / tau


class PairTemperature(nn.Module):
    """Temperature of embedding pairs: (..., D), (..., D) -> (...) in [tau_min, tau_max].

    Args:
        dim: D. hidden_dim: width of phi (default D). tau_min, tau_max: range.
    """

    def __init__(self, dim: int, hidden_dim: int | None = None, tau_min: float = 1e-5,
                 tau_max: float = 2.0) -> None:
        super().__init__()
        hidden = dim if hidden_dim is None else int(hidden_dim)
        self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)

    def from_features(self, f1: Tensor, f2: Tensor) -> Tensor:
        """Temperatures from already mapped ``phi(z)`` features (broadcasting)."""
        score = (f1 * f2).sum(-1)
        return self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(-score)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return self.from_features(self.phi(z1), self.phi(z2))


@MODELS.register_module()
class AMCLLoss(nn.Module):
    """AMCL loss for two views of C heads; holds the learnable pair-temperature network.

    Args:
        dim: embedding dimension D of every head.
        num_heads: C.
        beta: weight of the temperature regulariser.
        tau_min, tau_max: temperature range.
        topk: hardest negatives per anchor (1 = the paper's max).
        hidden_dim: width of the temperature MLP (default D).
        gather_distributed: negatives from the batch of all ranks.
    """

    def __init__(self, dim: int, num_heads: int = 3, beta: float = 0.1, tau_min: float = 1e-5,
                 tau_max: float = 2.0, topk: int = 1, hidden_dim: int | None = None,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        owner = 'AMCLLoss'
        if int(dim) < 1 or int(num_heads) < 1 or int(topk) < 1:
            raise ValueError(f'{owner}: dim, num_heads and topk must be >= 1, got {dim}, '
                             f'{num_heads}, {topk}')
        check_positive(owner, 'tau_min', tau_min)
        if not tau_max > tau_min:
            raise ValueError(f'{owner}: tau_max must exceed tau_min, got {tau_max} <= {tau_min}')
        self.dim, self.num_heads, self.topk = int(dim), int(num_heads), int(topk)
        self.beta = check_nonnegative(owner, 'beta', beta)
        self.temperature = PairTemperature(self.dim, hidden_dim, tau_min, tau_max)
        self.gather_distributed = bool(gather_distributed)

    def _direction(self, a: Tensor, b: Tensor, fa: Tensor, fb: Tensor) -> Tensor:
        """Mean loss of anchors ``a`` (N, D) with positives ``b``; ``f*`` are phi features."""
        n = a.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=a.device)
        tau_pos = self.temperature.from_features(fa, fb)  # (N,)
        s_pos = (a * b).sum(1)
        s_neg = torch.cat([(a @ a.T).masked_fill(eye, float('-inf')),
                           (a @ b.T).masked_fill(eye, float('-inf'))], dim=1)  # (N, 2N)
        k = min(self.topk, 2 * n - 2)
        s_top, idx = s_neg.topk(k, dim=1)
        f_other = torch.cat([fa, fb], dim=0)[idx]  # (N, k, D)
        tau_neg = self.temperature.from_features(fa[:, None, :], f_other)  # (N, k)
        per_anchor = (-s_pos / tau_pos + (s_top / tau_neg).mean(1)
                      + self.beta * omega(tau_pos, self.dim)
                      - self.beta * omega(tau_neg, self.dim).mean(1))
        return per_anchor.mean()

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Loss of two views.

        Args:
            z_a: (B, C, D) head outputs of view A (normalised here).
            z_b: (B, C, D) head outputs of view B.

        Returns:
            scalar, summed over heads, averaged over the two directions.
        """
        owner = 'AMCLLoss'
        check_embeddings(owner, 'z_a', z_a, ndim=3)
        check_embeddings(owner, 'z_b', z_b, ndim=3)
        expected = (self.num_heads, self.dim)
        for name, z in (('z_a', z_a), ('z_b', z_b)):
            if tuple(z.shape[1:]) != expected:
                raise ValueError(f'{owner}: {name} must have shape (B, {expected[0]}, '
                                 f'{expected[1]}), got {tuple(z.shape)}')
        if z_a.shape != z_b.shape:
            raise ValueError(f'{owner}: z_a has shape {tuple(z_a.shape)} but z_b has shape '
                             f'{tuple(z_b.shape)}; they must match')
        if self.gather_distributed:
            z_a, z_b = gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b')
        check_min_batch(owner, 'z_a', z_a.shape[0], 2, 'the other samples are the negatives')
        a_all, b_all = F.normalize(z_a, dim=2), F.normalize(z_b, dim=2)
        fa_all, fb_all = self.temperature.phi(a_all), self.temperature.phi(b_all)
        total = z_a.new_zeros(())
        for c in range(self.num_heads):
            a, b, fa, fb = a_all[:, c], b_all[:, c], fa_all[:, c], fb_all[:, c]
            total = total + 0.5 * (self._direction(a, b, fa, fb) + self._direction(b, a, fb, fa))
        return total
