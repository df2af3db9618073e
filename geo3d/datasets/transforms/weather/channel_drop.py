"""Channel drop: one colour channel lost (a faulty sensor / cable), or only one kept
(Robust-Depth's ``R``, ``G``, ``B`` channel-isolation augmentations)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from geo3d.registry import TRANSFORMS

from .base import Corruption, rand, severity_value

__all__ = ['ChannelDropCorruption']

_CHANNELS = {'r': 0, 'g': 1, 'b': 2, 0: 0, 1: 1, 2: 2}


@TRANSFORMS.register_module()
class ChannelDropCorruption(Corruption):
    """Attenuate one channel (``mode='drop'``) or all but one (``mode='keep'``).

    Args:
        channel: ``'r'``, ``'g'``, ``'b'`` (or 0, 1, 2); None draws one per image from the
            generator.
        mode: ``'drop'`` or ``'keep'``.
        attenuation: share of the signal removed per severity 1..5 (severity 5: channel(s)
            zeroed).
    """

    name = 'channel_drop'

    def __init__(self, channel: str | int | None = None, mode: str = 'drop',
                 attenuation: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0)) -> None:
        if channel is not None and channel not in _CHANNELS:
            raise ValueError(f"ChannelDropCorruption: channel must be 'r', 'g', 'b', 0, 1, 2 "
                             f'or None, got {channel!r}')
        if mode not in ('drop', 'keep'):
            raise ValueError(f"ChannelDropCorruption: mode must be 'drop' or 'keep', got "
                             f'{mode!r}')
        if len(attenuation) != 5 or any(not 0 <= a <= 1 for a in attenuation):
            raise ValueError(f'ChannelDropCorruption: attenuation needs 5 values in [0, 1], '
                             f'got {attenuation}')
        self.channel = channel
        self.mode = mode
        self.attenuation = tuple(attenuation)

    def apply(self, image: Tensor, depth: Tensor | None, severity: int,
              generator: torch.Generator) -> Tensor:
        b = image.shape[0]
        if self.channel is None:
            idx = (rand((b,), generator, image) * 3).long().clamp(max=2)
        else:
            idx = torch.full((b,), _CHANNELS[self.channel], device=image.device)
        onehot = torch.nn.functional.one_hot(idx, 3).to(image.dtype).view(b, 3, 1, 1)
        hit = onehot if self.mode == 'drop' else 1.0 - onehot
        return image * (1.0 - severity_value(self.attenuation, severity) * hit)
