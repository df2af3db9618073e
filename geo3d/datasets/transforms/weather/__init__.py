"""Weather and image corruptions computed on the fly, batched, seeded (Robust-Depth's
augmentations, Saunders et al., ICCV 2023, as registered ``TRANSFORMS``).

Every corruption is called as ``corruption(image (B, 3, H, W) in [0, 1], depth (B, 1, H, W)
metres or None, severity 1..5, generator) -> (B, 3, H, W) in [0, 1]``; see :mod:`.base`.
"""
from .base import SEVERITIES, Corruption, smooth_noise
from .channel_drop import ChannelDropCorruption
from .compose import (CORRUPTION_ALIASES, ComposeCorruptions, RandomCorruption,
                      build_corruption, parse_corruption_spec)
from .dusk import DuskCorruption
from .fog import FogCorruption, koschmieder, visibility_to_beta
from .greyscale import GreyscaleCorruption
from .motion_blur import MotionBlurCorruption, zoom_blur
from .night import NightCorruption
from .noise import GaussianNoiseCorruption
from .rain import RainCorruption
from .snow import SnowCorruption

__all__ = [
    'Corruption', 'SEVERITIES', 'smooth_noise', 'FogCorruption', 'koschmieder',
    'visibility_to_beta', 'RainCorruption', 'SnowCorruption', 'NightCorruption',
    'DuskCorruption', 'MotionBlurCorruption', 'zoom_blur', 'GreyscaleCorruption',
    'ChannelDropCorruption', 'GaussianNoiseCorruption', 'ComposeCorruptions',
    'RandomCorruption', 'CORRUPTION_ALIASES', 'build_corruption', 'parse_corruption_spec',
]
