"""iSogCLR: robust global contrastive loss with an individual, learned temperature per sample.

Qiu et al., "Not All Semantics are Created Equal: Contrastive Self-supervised Learning with
Automatic Temperature Individualization", ICML 2023 (arXiv 2305.11965; official code
zhqiu/contrastive-learning-iSogCLR, ``unimodal_exps/losses.py::SogCLR_DRO_Loss``). For anchor
i with temperature tau_i the KL-DRO objective is

    tau_i log mean_{j in S_i^-} exp((s_ij - s_ii^+) / tau_i) + tau_i rho,
    tau_i in [tau_min, tau_max]

optimised with a per-sample moving average s_i of ``mean_j exp(s_ij / tau_i)`` (gamma), detached
weights ``p_ij = exp(s_ij / tau_i) / s_i`` in the surrogate ``mean_j p_ij s_ij - s_ii^+`` (the
returned value; its gradient is the objective's), and a momentum-SGD step on tau_i with the
gradient ``log s_i + rho - mean_j p_ij s_ij / tau_i`` (clipped, then tau clamped).

The state (s, tau, u) is per dataset sample, so the dataloader must return sample indices; it
is kept in buffers (saved in checkpoints) and updated in training mode only. On a sample's
first visit s_i is set to the batch estimate (the reference code does so during epoch 0).
Negatives of an anchor are the other samples' two views (2N - 2). Defaults: the CIFAR recipe
(rho 0.4, gamma 0.8, tau_init 0.1, eta 0.03, beta_u 0.5, tau in [0.05, 1]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import (check_embeddings, check_min_batch, check_nonnegative, check_positive,
                      check_same_shape)


@MODELS.register_module()
class ISogCLRLoss(nn.Module):
    """iSogCLR loss with per-sample temperature buffers.

    Args:
        num_samples: dataset size; ``index`` values lie in [0, num_samples).
        rho: KL-ball radius rho of the DRO constraint.
        gamma: moving-average weight of the new batch estimate of s_i.
        tau_init, tau_min, tau_max: initial value and clamp range of the temperatures.
        eta: step size of the temperature update.
        beta_u: momentum weight of the temperature gradient.
        grad_clip: clip of the temperature gradient.
        gather_distributed: compute over the batch of all ranks; every rank applies the same
            state update for the global batch, so the buffers stay identical across ranks.

    Buffers (each (num_samples,)): ``s`` moving averages, ``tau`` temperatures, ``u`` momentum
    of the temperature gradient, ``seen`` whether a sample was visited.
    """

    def __init__(self, num_samples: int, rho: float = 0.4, gamma: float = 0.8,
                 tau_init: float = 0.1, tau_min: float = 0.05, tau_max: float = 1.0,
                 eta: float = 0.03, beta_u: float = 0.5, grad_clip: float = 3.0,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        owner = 'ISogCLRLoss'
        if int(num_samples) < 2:
            raise ValueError(f'{owner}: num_samples must be >= 2, got {num_samples}')
        if not 0 < gamma <= 1:
            raise ValueError(f'{owner}: gamma must lie in (0, 1], got {gamma}')
        if not 0 <= beta_u <= 1:
            raise ValueError(f'{owner}: beta_u must lie in [0, 1], got {beta_u}')
        check_positive(owner, 'tau_min', tau_min)
        if not tau_min <= tau_init <= tau_max:
            raise ValueError(f'{owner}: need tau_min <= tau_init <= tau_max, got {tau_min}, '
                             f'{tau_init}, {tau_max}')
        self.num_samples = int(num_samples)
        self.rho = check_nonnegative(owner, 'rho', rho)
        self.gamma, self.beta_u = float(gamma), float(beta_u)
        self.tau_min, self.tau_max = float(tau_min), float(tau_max)
        self.eta = check_nonnegative(owner, 'eta', eta)
        self.grad_clip = check_positive(owner, 'grad_clip', grad_clip)
        self.gather_distributed = bool(gather_distributed)
        self.register_buffer('s', torch.zeros(self.num_samples))
        self.register_buffer('tau', torch.full((self.num_samples,), float(tau_init)))
        self.register_buffer('u', torch.zeros(self.num_samples))
        self.register_buffer('seen', torch.zeros(self.num_samples, dtype=torch.bool))

    def _check_index(self, index: object, batch: int) -> Tensor:
        owner = 'ISogCLRLoss'
        if not isinstance(index, Tensor) or index.dtype != torch.long or index.shape != (batch,):
            raise ValueError(f'{owner}: index must be a ({batch},) long tensor of dataset '
                             f'indices, got {index!r:.80}')
        if batch and (int(index.min()) < 0 or int(index.max()) >= self.num_samples):
            raise ValueError(f'{owner}: index values must lie in [0, {self.num_samples}), got '
                             f'[{int(index.min())}, {int(index.max())}]')
        return index

    def forward(self, z_a: Tensor, z_b: Tensor, index: Tensor) -> Tensor:
        """Surrogate loss of a batch; updates s, u, tau of its samples in training mode.

        Args:
            z_a: (B, D) embeddings of view A (normalised here).
            z_b: (B, D) embeddings of view B.
            index: (B,) long dataset indices of the samples, without duplicates.

        Returns:
            scalar, the mean over samples of the surrogate summed over both view directions.
        """
        owner = 'ISogCLRLoss'
        check_embeddings(owner, 'z_a', z_a)
        check_embeddings(owner, 'z_b', z_b)
        check_same_shape(owner, 'z_a', z_a, 'z_b', z_b)
        index = self._check_index(index, z_a.shape[0]).to(self.s.device)
        if self.gather_distributed:
            z_a, z_b = gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b')
            index = gather_cat(index, 'index')
        n = z_a.shape[0]
        check_min_batch(owner, 'z_a', n, 2, 'the other samples are the negatives')
        if torch.unique(index).numel() != n:
            raise ValueError(f'{owner}: index has duplicate entries; each sample may appear '
                             'once per (global) batch')
        z = F.normalize(torch.cat([z_a, z_b], dim=0), dim=1)
        sim = z @ z.T  # (2N, 2N)
        rows = torch.arange(2 * n, device=z.device)
        positive = sim[rows, (rows + n) % (2 * n)]  # (2N,)
        same = torch.eye(n, dtype=torch.bool, device=z.device).repeat(2, 2)
        neg_mask = (~same).to(sim.dtype)  # excludes self and positive
        num_neg = 2 * n - 2

        tau = self.tau[index].to(sim.dtype).repeat(2)  # (2N,)
        scaled = (sim / tau[:, None]).detach()
        exp_neg = torch.exp(scaled) * neg_mask
        g = exp_neg.sum(1) / num_neg  # (2N,) batch estimates
        state = self.s[index].to(sim.dtype).repeat(2)
        seen = self.seen[index].repeat(2)
        s_new = torch.where(seen, (1.0 - self.gamma) * state + self.gamma * g, g)
        weights = exp_neg / s_new[:, None]
        per_row = (weights * sim).sum(1) / num_neg - positive  # (2N,)
        loss = (per_row[:n] + per_row[n:]).mean()

        if self.training:
            with torch.no_grad():
                grad_tau = torch.log(s_new) + self.rho - (weights * scaled).sum(1) / num_neg
                grad_tau = (0.5 * (grad_tau[:n] + grad_tau[n:])).clamp(-self.grad_clip,
                                                                       self.grad_clip)
                s_dtype = self.s.dtype
                self.s[index] = (0.5 * (s_new[:n] + s_new[n:])).to(s_dtype)
                u = (1.0 - self.beta_u) * self.u[index] + self.beta_u * grad_tau.to(s_dtype)
                self.u[index] = u
                self.tau[index] = (self.tau[index] - self.eta * u).clamp(self.tau_min,
                                                                         self.tau_max)
                self.seen[index] = True
        return loss
