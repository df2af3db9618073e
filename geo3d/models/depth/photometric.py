"""Photometric reprojection error, per-pixel minimum over sources and auto-masking.

Follows Monodepth2 (Godard et al., "Digging Into Self-Supervised Monocular Depth Estimation",
ICCV 2019): ``pe = 0.85 * (1 - SSIM) / 2 + 0.15 * L1``; the per-pixel *minimum* over source
frames handles occlusions; auto-masking compares against the errors of the *unwarped* sources
(identity reprojection) so that pixels which do not move (static camera, objects moving with the
camera) are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .ssim import ssim_distance

IDENTITY_NOISE = 1e-5  # Monodepth2: Gaussian noise on the identity errors breaks ties


def photometric_error(pred: Tensor, target: Tensor, ssim_weight: float = 0.85) -> Tensor:
    """``ssim_weight * SSIM term + (1 - ssim_weight) * L1``, both averaged over channels.

    Args:
        pred, target: (B, C, H, W) images in [0, 1].
        ssim_weight: weight of :func:`ssim_distance`; 0 gives plain L1.

    Returns:
        (B, 1, H, W).
    """
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(f'photometric_error needs pred and target of the same (B, C, H, W) '
                         f'shape, got {tuple(pred.shape)} and {tuple(target.shape)}')
    if not 0.0 <= ssim_weight <= 1.0:
        raise ValueError(f'ssim_weight must be in [0, 1], got {ssim_weight}')
    l1 = (pred - target).abs().mean(1, keepdim=True)
    if ssim_weight == 0:
        return l1
    ssim = ssim_distance(pred, target).mean(1, keepdim=True)
    return ssim_weight * ssim + (1.0 - ssim_weight) * l1


@dataclass
class Reprojection:
    """Result of :func:`min_reprojection`.

    Attributes:
        loss_map: (B, 1, H, W) per-pixel error that is optimised (mean it for the loss).
        automask: (B, 1, H, W) bool, True where a warped source wins over every identity
            error (the pixel is used); all True without auto-masking.
        source_index: (B, 1, H, W) long, index of the winning term: ``< n_identity`` means an
            identity term won, otherwise ``n_identity + k`` for warped source ``k``.
    """

    loss_map: Tensor
    automask: Tensor
    source_index: Tensor


def min_reprojection(reprojection_errors: Tensor, identity_errors: Tensor | None = None,
                     avg_reprojection: bool = False, noise: float = IDENTITY_NOISE,
                     generator: torch.Generator | None = None) -> Reprojection:
    """Per-pixel minimum reprojection with optional auto-masking (Monodepth2).

    Args:
        reprojection_errors: (B, S, H, W) :func:`photometric_error` of each warped source.
        identity_errors: (B, S, H, W) errors of the unwarped sources against the target, or
            None to disable auto-masking.
        avg_reprojection: average over sources instead of the minimum (Monodepth2's
            ``--avg_reprojection``; the identity errors are averaged too).
        noise: std of the Gaussian noise added to the identity errors (ties go either way
            instead of always to the identity).
        generator: random generator for that noise.

    Returns:
        :class:`Reprojection`.
    """
    if reprojection_errors.ndim != 4 or reprojection_errors.shape[1] < 1:
        raise ValueError(f'reprojection_errors must be (B, S, H, W) with S >= 1, got '
                         f'{tuple(reprojection_errors.shape)}')
    if identity_errors is not None and identity_errors.shape != reprojection_errors.shape:
        raise ValueError(f'identity_errors {tuple(identity_errors.shape)} must have the shape of '
                         f'reprojection_errors {tuple(reprojection_errors.shape)}')
    reproj = reprojection_errors.mean(1, keepdim=True) if avg_reprojection else reprojection_errors
    n_identity = 0
    combined = reproj
    if identity_errors is not None:
        ident = identity_errors.mean(1, keepdim=True) if avg_reprojection else identity_errors
        if noise > 0:
            device = generator.device if generator is not None else ident.device
            ident = ident + noise * torch.randn(ident.shape, generator=generator,
                                                dtype=ident.dtype, device=device).to(ident.device)
        n_identity = ident.shape[1]
        combined = torch.cat([ident, reproj], 1)
    loss_map, index = combined.min(1, keepdim=True)
    return Reprojection(loss_map=loss_map, automask=index >= n_identity, source_index=index)
