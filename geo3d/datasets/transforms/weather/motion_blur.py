"""Motion blur along the direction of travel: radial zoom blur or a linear kernel.

``mode='zoom'`` (default): a camera driving forward sees the scene expand from the focus of
expansion (the principal point for straight driving); during the exposure a pixel at ``p``
integrates the scene along the segment from ``c + (p - c) * (1 - a)`` to ``p``, with
``a = zoom`` (severity) times, when depth is given, ``min(1, reference_depth / depth)``
(the optical flow of forward motion falls with 1/depth). Sampled with ``grid_sample`` at
enough points to leave no gaps (ImageNet-C's ``zoom_blur``, Hendrycks & Dietterich, ICLR 2019,
averages zoomed copies the same way, without depth).

``mode='linear'``: kornia's ``motion_blur``, a line kernel of ``2 * severity * s + 1`` pixels
(``s = max(1, round(H / 192))``) at a random angle per image (camera shake, panning);
Robust-Depth's ``blur`` used Automold's linear "speed" blur.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from kornia.filters import motion_blur
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, rand, severity_value

__all__ = ['MotionBlurCorruption', 'zoom_blur']


def zoom_blur(image: Tensor, strength: Tensor | float, center: Sequence[float] = (0.5, 0.5),
              max_samples: int = 32) -> Tensor:
    """Radial blur towards ``center`` (x, y as fractions of W, H).

    Args:
        image: (B, C, H, W).
        strength: the fraction ``a`` of the distance to the centre covered by the blur, a
            number or (B, 1, H, W) per pixel.
        center: the focus of expansion.
        max_samples: cap on the number of samples along each segment.

    Returns:
        (B, C, H, W).
    """
    b, _, h, w = image.shape
    a_max = float(strength.max()) if isinstance(strength, Tensor) else float(strength)
    if a_max <= 0:
        return image
    reach = a_max * 0.5 * math.hypot(h, w)  # pixels covered at the corners
    n = int(min(max_samples, max(2, math.ceil(reach) + 1)))
    ys = (torch.arange(h, device=image.device, dtype=image.dtype) + 0.5) / h * 2 - 1
    xs = (torch.arange(w, device=image.device, dtype=image.dtype) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)[None]  # (1, H, W, 2)
    c = grid.new_tensor([2 * center[0] - 1, 2 * center[1] - 1])
    a = strength.permute(0, 2, 3, 1) if isinstance(strength, Tensor) else strength
    acc = torch.zeros_like(image)
    for k in range(n):
        g = c + (grid - c) * (1.0 - a * (k / (n - 1)))
        g = g.expand(b, h, w, 2)
        acc = acc + F.grid_sample(image, g, mode='bilinear', padding_mode='border',
                                  align_corners=False)
    return acc / n


@TRANSFORMS.register_module()
class MotionBlurCorruption(Corruption):
    """Forward-motion zoom blur or linear motion blur (see the module doc).

    Args:
        mode: ``'zoom'`` or ``'linear'``.
        zoom: zoom fraction per severity 1..5 (``'zoom'``).
        center: focus of expansion (x, y) as fractions of (W, H) (``'zoom'``).
        reference_depth: with depth, pixels nearer than this get the full zoom, farther ones
            ``reference_depth / depth`` of it (``'zoom'``).

    ``depth`` (B, 1, H, W) in metres is optional (``'zoom'`` only).
    """

    name = 'motion_blur'
    uses_depth = True

    def __init__(self, mode: str = 'zoom',
                 zoom: Sequence[float] = (0.02, 0.04, 0.06, 0.09, 0.12),
                 center: Sequence[float] = (0.5, 0.5), reference_depth: float = 10.0) -> None:
        if mode not in ('zoom', 'linear'):
            raise ValueError(f"MotionBlurCorruption: mode must be 'zoom' or 'linear', got "
                             f'{mode!r}')
        if len(zoom) != 5 or any(z <= 0 or z >= 1 for z in zoom):
            raise ValueError(f'MotionBlurCorruption: zoom needs 5 fractions in (0, 1), got '
                             f'{zoom}')
        if len(center) != 2:
            raise ValueError(f'MotionBlurCorruption: center must be (x, y), got {center}')
        if reference_depth <= 0:
            raise ValueError(f'MotionBlurCorruption: reference_depth must be > 0, got '
                             f'{reference_depth}')
        self.mode = mode
        self.zoom = tuple(zoom)
        self.center = tuple(float(c) for c in center)
        self.reference_depth = float(reference_depth)
        self.uses_depth = mode == 'zoom'

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        if self.mode == 'linear':
            b, _, h, _ = image.shape
            ksize = 2 * severity * max(1, round(h / 192)) + 1
            angle = 180.0 * rand((b,), generator, image)
            return motion_blur(image, ksize, angle, torch.zeros_like(angle))
        strength: Tensor | float = severity_value(self.zoom, severity)
        if depth is not None:
            strength = strength * (self.reference_depth / depth).clamp(max=1.0)
        return zoom_blur(image, strength, self.center)
