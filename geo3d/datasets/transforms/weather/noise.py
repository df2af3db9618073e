"""Additive Gaussian noise with ImageNet-C's standard deviations (Hendrycks & Dietterich,
ICLR 2019; one of Robust-Depth's augmentations)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, randn, severity_value

__all__ = ['GaussianNoiseCorruption']


@TRANSFORMS.register_module()
class GaussianNoiseCorruption(Corruption):
    """``clip(image + sigma * N(0, 1))``, independent per pixel and channel.

    Args:
        sigma: standard deviation per severity 1..5 (ImageNet-C: 0.08 ... 0.38).
    """

    name = 'gaussian_noise'

    def __init__(self, sigma: Sequence[float] = (0.08, 0.12, 0.18, 0.26, 0.38)) -> None:
        if len(sigma) != 5 or any(s < 0 for s in sigma):
            raise ValueError(f'GaussianNoiseCorruption: sigma needs 5 values >= 0, got {sigma}')
        self.sigma = tuple(sigma)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        return image + severity_value(self.sigma, severity) * randn(image.shape, generator, image)
