"""Greyscale: colour removed (Robust-Depth's ``greyscale`` augmentation at severity 5)."""
from __future__ import annotations

from typing import Sequence

import torch
from kornia.color import rgb_to_grayscale
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, severity_value

__all__ = ['GreyscaleCorruption']


@TRANSFORMS.register_module()
class GreyscaleCorruption(Corruption):
    """Blend towards the luma image (kornia's ``rgb_to_grayscale``, ITU-R 601 weights).

    Args:
        amount: share of the colour removed per severity 1..5 (severity 5: fully grey).
    """

    name = 'greyscale'

    def __init__(self, amount: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0)) -> None:
        if len(amount) != 5 or any(not 0 <= a <= 1 for a in amount):
            raise ValueError(f'GreyscaleCorruption: amount needs 5 values in [0, 1], got '
                             f'{amount}')
        self.amount = tuple(amount)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        grey = rgb_to_grayscale(image).expand_as(image)
        return torch.lerp(image, grey, severity_value(self.amount, severity))
