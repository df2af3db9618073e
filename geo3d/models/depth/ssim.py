"""SSIM dissimilarity as used by self-supervised depth (Monodepth2, Godard et al., ICCV 2019).

Differs from the "textbook" SSIM (Wang et al. 2004; kornia's ``kornia.metrics.ssim`` /
``kornia.losses.ssim_loss``) in the window: Monodepth2 takes local statistics over a 3x3 *box*
(average pooling) after *reflection* padding, whereas kornia uses a Gaussian window
(typically 11x11, sigma 1.5) with its own border handling. The 3x3 box keeps the term local enough
for per-pixel minimum reprojection; the two are not interchangeable numerically.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def ssim_distance(x: Tensor, y: Tensor) -> Tensor:
    """Per-pixel, per-channel ``clamp((1 - SSIM(x, y)) / 2, 0, 1)`` with 3x3 box statistics.

    ``mu`` = 3x3 mean, ``sigma_x^2 = mean(x^2) - mu_x^2``, ``sigma_xy = mean(xy) - mu_x mu_y``
    (population statistics), ``C1 = 0.01^2``, ``C2 = 0.03^2`` (images in [0, 1]); borders by
    reflection padding of 1 pixel.

    Args:
        x, y: (B, C, H, W) images, H and W >= 2 (reflection padding).

    Returns:
        (B, C, H, W) in [0, 1]; 0 where the images agree.
    """
    if x.ndim != 4 or x.shape != y.shape:
        raise ValueError(f'ssim_distance needs two (B, C, H, W) images of the same shape, got '
                         f'{tuple(x.shape)} and {tuple(y.shape)}')
    if min(x.shape[-2:]) < 2:
        raise ValueError(f'ssim_distance needs H, W >= 2 for reflection padding, got '
                         f'{tuple(x.shape[-2:])}')
    x = F.pad(x, (1, 1, 1, 1), mode='reflect')
    y = F.pad(y, (1, 1, 1, 1), mode='reflect')

    def box(t: Tensor) -> Tensor:
        return F.avg_pool2d(t, 3, stride=1)

    mu_x, mu_y = box(x), box(y)
    sigma_x = box(x * x) - mu_x ** 2
    sigma_y = box(y * y) - mu_y ** 2
    sigma_xy = box(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * sigma_xy + SSIM_C2)
    den = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return ((1 - num / den) / 2).clamp(0, 1)
