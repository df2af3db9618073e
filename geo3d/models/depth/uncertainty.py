"""Self-supervised training of a single-frame depth network's uncertainty head.

ProDepth (Woo et al., ECCV 2024) models the single-frame teacher's depth as a Gaussian over the
cost-volume bins whose width comes from an "uncertainty" decoder (``mono_uncert``: Monodepth2's
decoder with a 1-channel sigmoid output, times ``mono_var_scale`` = 20). Its released code only
*loads* that head from the authors' checkpoints; how it was trained is not published. geo3d
trains it as a heteroscedastic likelihood of the teacher's own photometric error, the "Log"
(log-likelihood) self-supervised uncertainty of Poggi et al., "On the uncertainty of
self-supervised monocular depth estimation", CVPR 2020 (after Klodt & Vedaldi, ECCV 2018)::

    laplace:  L = mean( e / sigma + log sigma )            minimiser sigma = e
    gaussian: L = mean( e**2 / (2 sigma**2) + log sigma )   minimiser sigma = e

with ``e`` the teacher's per-pixel minimum reprojection error (detached; the teacher is frozen)
and ``sigma`` the head's sigmoid output, floored at ``min_sigma``. Pixels the teacher explains
badly (moving objects, occlusions, texture-less regions) get a large sigma, i.e. a wide
single-frame distribution that PCVM trusts less.
"""
from __future__ import annotations

from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from geo3d.registry import MODELS

__all__ = ['uncertainty_nll', 'PhotometricUncertaintyLoss']

DISTRIBUTIONS = ('laplace', 'gaussian')


def uncertainty_nll(error: Tensor, sigma: Tensor, distribution: str = 'laplace',
                    min_sigma: float = 1e-3) -> Tensor:
    """Per-pixel negative log-likelihood (up to a constant) of ``error`` under scale ``sigma``.

    Args:
        error: (B, 1, H, W) non-negative residual (treated as a constant).
        sigma: (B, 1, H, W) predicted scale, > 0.
        distribution: ``'laplace'`` (``e / s + log s``) or ``'gaussian'``
            (``e^2 / (2 s^2) + log s``).
        min_sigma: floor of ``sigma`` (numerical safety).

    Returns:
        (B, 1, H, W).
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f'uncertainty_nll: distribution must be one of {DISTRIBUTIONS}, got '
                         f'{distribution!r}')
    if error.shape != sigma.shape:
        raise ValueError(f'uncertainty_nll: error {tuple(error.shape)} and sigma '
                         f'{tuple(sigma.shape)} must have the same shape')
    s = sigma.clamp(min=min_sigma)
    e = error.detach()
    if distribution == 'laplace':
        return e / s + s.log()
    return e * e / (2 * s * s) + s.log()


@MODELS.register_module()
class PhotometricUncertaintyLoss(nn.Module):
    """Mean :func:`uncertainty_nll` of a photometric error map under the predicted sigma.

    Args:
        distribution: ``'laplace'`` (default) or ``'gaussian'``.
        min_sigma: floor of sigma.
        loss_weight: multiplies the loss (Adam is scale invariant; kept for logging scale).

    Call ``loss(sigma (B, 1, H, W), error (B, 1, H, W)) -> scalar``; ``sigma`` is resized to
    ``error``'s size (bilinear) when they differ.
    """

    def __init__(self, distribution: Literal['laplace', 'gaussian'] = 'laplace',
                 min_sigma: float = 1e-3, loss_weight: float = 1.0) -> None:
        super().__init__()
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f'PhotometricUncertaintyLoss: distribution must be one of '
                             f'{DISTRIBUTIONS}, got {distribution!r}')
        if min_sigma <= 0:
            raise ValueError(f'PhotometricUncertaintyLoss: min_sigma must be > 0, got '
                             f'{min_sigma}')
        self.distribution = distribution
        self.min_sigma = float(min_sigma)
        self.loss_weight = float(loss_weight)

    def forward(self, sigma: Tensor, error: Tensor) -> Tensor:
        if sigma.ndim != 4 or sigma.shape[1] != 1 or error.ndim != 4 or error.shape[1] != 1 \
                or sigma.shape[0] != error.shape[0]:
            raise ValueError(f'PhotometricUncertaintyLoss: sigma and error must be (B, 1, H, W), '
                             f'got {tuple(sigma.shape)} and {tuple(error.shape)}')
        if sigma.shape != error.shape:
            sigma = F.interpolate(sigma, error.shape[-2:], mode='bilinear', align_corners=False)
        nll = uncertainty_nll(error, sigma, self.distribution, self.min_sigma)
        return self.loss_weight * nll.mean()
