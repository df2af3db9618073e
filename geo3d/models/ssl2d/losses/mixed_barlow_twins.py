"""Mixed Barlow Twins: Barlow Twins plus a mixed-sample cross-correlation regulariser.

Bandara et al., "Guarding Barlow Twins Against Overfitting with Mixed Samples", arXiv
2312.02151 (wgcban/mix-bt). The mixed input is ``x_m = alpha x_a + (1 - alpha) x_b[perm]``
(alpha ~ Beta(1, 1) once per step, perm a random batch permutation; :func:`mix_views`), embedded
by a third forward pass. Because the projector is roughly linear around the mix, the
cross-correlations of z_m with z_a and z_b should equal the same mix of the views'
cross-correlations. Defaults are the CIFAR recipe: lambda_BT = 1/128, mixup_loss_scale 4
(lambda_reg = scale * lambda_BT).

Standardisation is the Barlow Twins one (biased variance + eps); the reference code divides by
the unbiased std, which scales C by (B - 1) / B.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from geo3d.registry import MODELS

from ..distributed import gather_cat, rank
from ._checks import check_embeddings, check_min_batch, check_nonnegative, check_same_shape
from .barlow_twins import redundancy_reduction, standardize


def mix_views(x_a: Tensor, x_b: Tensor, alpha: float | Tensor, perm: Tensor) -> Tensor:
    """Mixed inputs ``alpha * x_a + (1 - alpha) * x_b[perm]``.

    Args:
        x_a: (B, ...) images of view A; x_b: (B, ...) images of view B.
        alpha: a float or a (B,) tensor of per-sample weights in [0, 1].
        perm: (B,) long permutation of the batch.

    Returns:
        (B, ...) mixed inputs.
    """
    if x_a.shape != x_b.shape:
        raise ValueError(f'mix_views: x_a {tuple(x_a.shape)} and x_b {tuple(x_b.shape)} differ')
    alpha_t = torch.as_tensor(alpha, dtype=x_a.dtype, device=x_a.device)
    if alpha_t.ndim == 1:
        alpha_t = alpha_t.view(-1, *([1] * (x_a.ndim - 1)))
    return alpha_t * x_a + (1.0 - alpha_t) * x_b[perm]


@MODELS.register_module()
class MixedBarlowTwinsLoss(nn.Module):
    r"""Barlow Twins loss plus the mixed-sample regulariser.

    .. math:: L = L_{BT}(z_A, z_B) + \lambda_{reg} \big(\|C^{MA} - C^{MA}_{gt}\|_F^2
              + \|C^{MB} - C^{MB}_{gt}\|_F^2\big)

    with :math:`C^{MV} = \tilde z_M^\top \tilde z_V / N` and
    :math:`C^{MV}_{gt} = \tfrac{1}{N} \sum_b (\alpha_b \tilde z_A[b]
    + (1 - \alpha_b) \tilde z_B[\pi(b)]) \tilde z_V[b]^\top` for V in {A, B}
    (the paper's single alpha is the case of equal :math:`\alpha_b`).

    Args:
        lambda_offdiag: Barlow Twins' :math:`\lambda`.
        mixup_loss_scale: :math:`\lambda_{reg} / \lambda` (the paper's "lambda_reg" column).
        eps: added to the batch variance.
        gather_distributed: all statistics over the batch of all ranks; each rank passes its
            local ``perm`` (a permutation of its own batch) and its own ``alpha``.
    """

    def __init__(self, lambda_offdiag: float = 0.0078125, mixup_loss_scale: float = 4.0,
                 eps: float = 1e-5, gather_distributed: bool = False) -> None:
        super().__init__()
        owner = 'MixedBarlowTwinsLoss'
        self.lambda_offdiag = check_nonnegative(owner, 'lambda_offdiag', lambda_offdiag)
        self.mixup_loss_scale = check_nonnegative(owner, 'mixup_loss_scale', mixup_loss_scale)
        self.eps = check_nonnegative(owner, 'eps', eps)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, z_a: Tensor, z_b: Tensor, z_m: Tensor, alpha: float | Tensor,
                perm: Tensor) -> Tensor:
        """Loss of two views and their mix.

        Args:
            z_a: (B, D) embeddings of view A.
            z_b: (B, D) embeddings of view B.
            z_m: (B, D) embeddings of ``mix_views(x_a, x_b, alpha, perm)``.
            alpha: float or (B,) mixing weights in [0, 1] used for ``z_m``.
            perm: (B,) long permutation used for ``z_m``.

        Returns:
            scalar.
        """
        owner = 'MixedBarlowTwinsLoss'
        for name, z in (('z_a', z_a), ('z_b', z_b), ('z_m', z_m)):
            check_embeddings(owner, name, z)
        check_same_shape(owner, 'z_a', z_a, 'z_b', z_b)
        check_same_shape(owner, 'z_a', z_a, 'z_m', z_m)
        n_local = z_a.shape[0]
        alpha_t = torch.as_tensor(alpha, dtype=z_a.dtype, device=z_a.device)
        if alpha_t.ndim == 0:
            alpha_t = alpha_t.expand(n_local)
        if alpha_t.shape != (n_local,):
            raise ValueError(f'{owner}: alpha must be a float or have shape ({n_local},), got '
                             f'{tuple(alpha_t.shape)}')
        if bool(((alpha_t < 0) | (alpha_t > 1)).any()):
            raise ValueError(f'{owner}: alpha must lie in [0, 1]')
        if not isinstance(perm, Tensor) or perm.dtype != torch.long or perm.shape != (n_local,):
            raise ValueError(f'{owner}: perm must be a ({n_local},) long tensor')
        if not torch.equal(torch.sort(perm).values, torch.arange(n_local, device=perm.device)):
            raise ValueError(f'{owner}: perm must be a permutation of 0..{n_local - 1}')
        if self.gather_distributed:
            perm = gather_cat(perm + rank() * n_local, 'perm')
            alpha_t = gather_cat(alpha_t.detach().contiguous(), 'alpha')
            z_a, z_b, z_m = (gather_cat(z_a, 'z_a'), gather_cat(z_b, 'z_b'),
                             gather_cat(z_m, 'z_m'))
        n = z_a.shape[0]
        check_min_batch(owner, 'z_a', n, 2, 'standardisation is over the batch')
        t_a, t_b, t_m = (standardize(z_a, self.eps), standardize(z_b, self.eps),
                         standardize(z_m, self.eps))
        loss_bt = redundancy_reduction(t_a.T @ t_b / n, self.lambda_offdiag)
        mixed_target = alpha_t[:, None] * t_a + (1.0 - alpha_t[:, None]) * t_b[perm]
        reg = ((t_m - mixed_target).T @ t_a / n).pow(2).sum() \
            + ((t_m - mixed_target).T @ t_b / n).pow(2).sum()
        return loss_bt + self.mixup_loss_scale * self.lambda_offdiag * reg
