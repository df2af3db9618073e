"""Decoupled Contrastive Learning (DCL) and its weighted variant (DCLW).

Yeh et al., "Decoupled Contrastive Learning", ECCV 2022 (arXiv 2110.06848): NT-Xent with the
positive pair removed from the denominator. DCLW weights the positive term with a negative
von Mises-Fisher weighting ``w_i = 2 - N softmax_i(s(z_i, z'_i) / sigma)`` (computed without
gradient). No official code was found; defaults follow lightly's DCLLoss/DCLWLoss
(temperature 0.1, sigma 0.5).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat
from ._checks import check_embeddings, check_min_batch, check_positive, check_same_shape


def _one_direction(a: Tensor, b: Tensor, temperature: float, weight: Tensor | None) -> Tensor:
    """Mean over i of ``-w_i s(a_i, b_i)/tau + log sum_{k != i} [e^{s(a_i,a_k)/tau}
    + e^{s(a_i,b_k)/tau}]`` for unit-norm (N, D) a, b."""
    n = a.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    sim_ab = a @ b.T / temperature
    sim_aa = a @ a.T / temperature
    positive = torch.diagonal(sim_ab)
    if weight is not None:
        positive = positive * weight
    negatives = torch.cat([sim_aa.masked_fill(eye, float('-inf')),
                           sim_ab.masked_fill(eye, float('-inf'))], dim=1)
    return (torch.logsumexp(negatives, dim=1) - positive).mean()


def vmf_weights(z_a: Tensor, z_b: Tensor, sigma: float) -> Tensor:
    """DCLW's weights ``2 - N softmax_i(s(z_a_i, z_b_i) / sigma)``: (N, D), (N, D) -> (N,).

    Computed without gradient; the weights average to 1.
    """
    with torch.no_grad():
        cos = F.cosine_similarity(z_a, z_b, dim=1)
        return 2.0 - z_a.shape[0] * torch.softmax(cos / sigma, dim=0)


class _DecoupledContrastive(nn.Module):
    """Shared forward of DCL and DCLW."""

    _owner = 'DCLLoss'

    def __init__(self, temperature: float, gather_distributed: bool) -> None:
        super().__init__()
        self.temperature = check_positive(self._owner, 'temperature', temperature)
        self.gather_distributed = bool(gather_distributed)

    def _weights(self, z_a: Tensor, z_b: Tensor) -> Tensor | None:
        return None

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Symmetric loss of two views.

        Args:
            z_a: (B, D) embeddings of view A (normalised here).
            z_b: (B, D) embeddings of view B.

        Returns:
            scalar, the mean of the A->B and B->A directions.
        """
        owner = self._owner
        check_embeddings(owner, 'z_a', z_a)
        check_embeddings(owner, 'z_b', z_b)
        check_same_shape(owner, 'z_a', z_a, 'z_b', z_b)
        if self.gather_distributed:
            z_a, z_b = gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b')
        check_min_batch(owner, 'z_a', z_a.shape[0], 2, 'the other samples are the negatives')
        a, b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
        weight = self._weights(a, b)
        return 0.5 * (_one_direction(a, b, self.temperature, weight)
                      + _one_direction(b, a, self.temperature, weight))


@MODELS.register_module()
class DCLLoss(_DecoupledContrastive):
    r"""Decoupled contrastive loss.

    .. math:: \ell_i = -s(z_i, z'_i)/\tau + \log \sum_{k \ne i} \big[e^{s(z_i, z_k)/\tau}
              + e^{s(z_i, z'_k)/\tau}\big]

    averaged over i and over both view directions; s is the cosine similarity.

    Args:
        temperature: :math:`\tau`.
        gather_distributed: compute over the batch of all ranks.
    """

    _owner = 'DCLLoss'

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__(temperature, gather_distributed)


@MODELS.register_module()
class DCLWLoss(_DecoupledContrastive):
    r"""Weighted decoupled contrastive loss: DCL with the positive term scaled by
    :math:`w_i = 2 - N\,\mathrm{softmax}_i(s(z_i, z'_i)/\sigma)` (no gradient through w).

    Args:
        temperature: :math:`\tau`.
        sigma: :math:`\sigma` of the von Mises-Fisher weighting.
        gather_distributed: compute over the batch of all ranks (N is the global batch).
    """

    _owner = 'DCLWLoss'

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5,
                 gather_distributed: bool = False) -> None:
        super().__init__(temperature, gather_distributed)
        self.sigma = check_positive(self._owner, 'sigma', sigma)

    def _weights(self, z_a: Tensor, z_b: Tensor) -> Tensor | None:
        return vmf_weights(z_a, z_b, self.sigma)
